import pytest

from visionlab.config import RunConfig
from visionlab.errors import ConfigError
from visionlab.registry import Registry


def test_unknown_option_is_named():
    with pytest.raises(ConfigError, match="learning_rate"):
        RunConfig.build(learning_rate=0.1)


def test_bad_value_is_explained():
    with pytest.raises(ConfigError, match="lr"):
        RunConfig.build(lr=-1)


def test_split_ratios_are_normalised():
    assert RunConfig.build(split_ratios=(70, 15, 15)).split_ratios == pytest.approx((0.7, 0.15, 0.15))


def test_yaml_round_trip(tmp_path):
    cfg = RunConfig.build(model="mlp", widths=[32, 16], lr=0.5, split_ratios=(8, 1, 1))
    p = tmp_path / "c.yaml"
    p.write_text(cfg.to_yaml())
    assert RunConfig.load(p) == cfg


def test_registry_lists_choices():
    r = Registry("thing")
    r.register("a")(1)
    with pytest.raises(ConfigError, match="choose one of: a"):
        r.get("b")
    assert "A" in r and r.get("A") == 1


def test_package_level_api_mirrors_the_cli():
    import visionlab

    for verb in ("train", "evaluate", "demo", "list_runs", "load_run", "predict", "compare"):
        assert callable(getattr(visionlab, verb)), verb


def test_api_verbs_survive_importing_every_subpackage():
    import importlib

    import visionlab

    for mod in ("api", "training.trainer", "evaluation", "studies.runner", "detect", "active.loop", "serve.app"):
        importlib.import_module(f"visionlab.{mod}")
    assert callable(visionlab.train) and callable(visionlab.evaluate)
