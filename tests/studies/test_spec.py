"""Spec loading, validation and grid expansion, for every built-in study."""
from __future__ import annotations

import pytest

from visionlab.config import RunConfig
from visionlab.errors import ConfigError
from visionlab.studies.spec import builtin_names, load_spec, parse_spec

EXPECTED = {  # configurations, default seeds, quick seeds
    "baseline": (3, 3, 2), "density": (2, 3, 2), "activations": (7, 3, 3), "epochs": (2, 3, 2),
    "initializers": (7, 3, 2), "splits": (9, 3, 2), "optimizers": (54, 1, 1), "regularization": (6, 3, 2),
    "precision": (2, 3, 2),
}


def test_every_builtin_is_listed():
    assert set(builtin_names()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_expands_to_valid_trials(name):
    spec = load_spec(name)
    spec.check_names()  # model/optimizer/activation/initialiser names exist in the registries
    arms, seeds, quick_seeds = EXPECTED[name]
    assert len(spec.arms()) == arms
    trials = spec.trials()
    assert len(trials) == arms * seeds
    assert len({t.trial_id for t in trials}) == len(trials)
    quick = spec.trials(quick=True)
    assert len(quick) == arms * quick_seeds
    for t in trials + quick:
        cfg = RunConfig.build(t.config)
        assert cfg.seed == t.seed and cfg.data == "cifar10"
    for label in spec.reported:
        assert label in {a.label for a in spec.arms()}, f"reported figure for unknown arm {label}"
    for q in spec.settle:
        assert set(q.candidates) <= {a.label for a in spec.arms()}
    # quick shrinks every trial
    full = {t.trial_id: RunConfig.build(t.config) for t in trials}
    for t in quick:
        q = RunConfig.build(t.config)
        assert q.epochs <= full[t.trial_id].epochs
        assert q.limit_per_class is not None


def test_dissertation_settings():
    base = {a.label: a.overrides for a in load_spec("baseline").arms()}
    assert base["ANN, full-batch GD"] == {"model": "ann_baseline", "optimizer": "gd", "epochs": 30}
    assert base["ANN, mini-batch 32"]["batch_size"] == 32
    cnn = RunConfig.build({**load_spec("baseline").base, **base["CNN, mini-batch 64"]})
    assert (cnn.model, cnn.optimizer, cnn.lr, cnn.batch_size, cnn.epochs) == \
        ("cnn_baseline", "minibatch_sgd", 0.01, 64, 15)
    assert load_spec("baseline").reported_value("CNN, mini-batch 64") == pytest.approx(0.597)
    opt = load_spec("optimizers")
    assert opt.grid["optimizer"] == ["gd", "sgd", "minibatch_sgd", "momentum", "rmsprop", "adam"]
    assert opt.grid["lr"] == [0.001, 0.003, 0.006, 0.01, 0.03, 0.06, 0.1, 0.3, 0.6]
    assert opt.heatmap == ("optimizer", "lr")
    splits = [RunConfig.build({**t.config}).split_ratios for t in load_spec("splits").trials(seeds=[0])]
    assert splits[0] == pytest.approx((0.7, 0.15, 0.15)) and len(set(splits)) == 9
    ep = load_spec("epochs")
    assert ep.plateau and ep.reported_value("ANN", "plateau_epoch") == 80


def test_grid_crossed_with_configs_and_labels():
    spec = parse_spec("""
name: t
base: {data: synthetic}
configs: [{label: small, widths: [8]}, {label: big, widths: [64]}]
grid: {optimizer: [sgd, adam], lr: [0.1, 0.01]}
seeds: [3, 4]
""")
    labels = [a.label for a in spec.arms()]
    assert len(labels) == 8 and labels[0] == "small, sgd, lr=0.1" and labels[-1] == "big, adam, lr=0.01"
    trials = spec.trials()
    assert len(trials) == 16 and {t.seed for t in trials} == {3, 4}
    assert trials[0].config == {"data": "synthetic", "widths": [8], "optimizer": "sgd", "lr": 0.1, "seed": 3}
    assert spec.arm_fields() == ["widths", "optimizer", "lr"]
    assert [t.seed for t in spec.trials(seeds=spec.resolved_seeds(n=5))][:5] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("text, msg", [
    ("name: t\nbase: {lrr: 0.1}", "unknown RunConfig field"),
    ("name: t\ngrid: {lr: []}", "no values"),
    ("name: t\nbase: {seed: 3}", "set by the study runner"),
    ("name: t\ngrid: {epochs: [1, 2]}\nquick: {epochs: 1}", "arms would be identical"),
    ("name: t\ngrid: {lr: [0.1]}\nheatmap: [optimizer, lr]", "heatmap fields"),
    ("name: t\nbase: {lr: -1}", "lr"),
    ("name: t\nconfigs: [{label: a}, {label: a}]", "labels repeat"),
    ("- just a list", "mapping"),
])
def test_bad_specs_say_what_is_wrong(text, msg):
    with pytest.raises(ConfigError, match=msg):
        spec = parse_spec(text)
        spec.trials()


def test_unknown_study_lists_builtins(tmp_path):
    with pytest.raises(ConfigError, match="activations"):
        load_spec("nope")
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="unknown optimizer"):
        parse_spec("name: t\ngrid: {optimizer: [adamm]}").check_names()


def test_with_base_changes_every_trial_and_names_the_variant():
    spec = load_spec("baseline").with_base({"normalize": "scale"})
    assert spec.name == "baseline-normalize-scale"
    trials = spec.trials(seeds=[0])
    assert len(trials) == 3 and all(t.config["normalize"] == "scale" for t in trials)
    assert [t.config["optimizer"] for t in trials] == ["gd", "minibatch_sgd", "minibatch_sgd"]  # arms still win
    assert "normalize: scale" in spec.notes[-1] and spec.reported == load_spec("baseline").reported
    assert load_spec("baseline").with_base({}).name == "baseline"
    with pytest.raises(ConfigError, match="sets activation per configuration"):
        load_spec("activations").with_base({"activation": "relu"})
    with pytest.raises(ConfigError, match="unknown RunConfig field.*normalise"):
        load_spec("baseline").with_base({"normalise": "scale"})
    with pytest.raises(ConfigError, match="normalize"):
        load_spec("baseline").with_base({"normalize": "by255"}).trials(seeds=[0])
