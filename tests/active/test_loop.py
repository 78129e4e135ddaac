"""The loop through its Python API, on pixel features (fast): init, query, label, retrain, status, export."""
import json

import numpy as np
import pytest

from visionlab.active import loop
from visionlab.active.session import Project
from visionlab.active.store import DuplicateLabelError, read_jsonl
from visionlab.errors import ConfigError

from .conftest import snapshot, write_image


@pytest.fixture
def project(folders, tmp_path):
    pool, labelled = folders
    loop.init(pool, tmp_path / "proj", labelled=labelled, model="pixels")
    return tmp_path / "proj"


def test_init_trains_round_zero_and_writes_state(project, folders):
    st = json.loads((project / "state.json").read_text())
    assert st["classes"] == ["mask", "nomask"] and st["featurizer"]["kind"] == "pixels" and st["round"] == 0
    s = loop.status(project)
    assert s["pool_images"] == 24 and s["pool_unlabelled"] == 24 and s["labelled_folder"] == 6
    assert s["rounds"][0]["train_acc"] == 1.0
    assert (project / "models" / "round-000.safetensors").is_file()
    with pytest.raises(ConfigError, match="already an active-learning project"):
        loop.init(folders[0], project, labelled=folders[1], model="pixels")
    with pytest.raises(ConfigError, match="must not contain"):
        loop.init(folders[0], folders[0] / "proj", labelled=folders[1], model="pixels")


def test_query_label_retrain_round_trip(project, folders):
    pool, labelled = folders
    before = snapshot(pool), snapshot(labelled)
    q = loop.query(project, k=5)
    assert len(q["items"]) == 5 and q["model_version"].startswith("r0-")
    assert json.loads((project / "queue.json").read_text())["items"] == q["items"]
    # least_confidence: the queued images are the least confident of the pool
    conf = [it["confidence"] for it in q["items"]]
    for it in q["items"]:
        truth = "mask" if int(it["path"].split("_")[-1][:3]) % 2 == 0 else "nomask"
        loop.add_label(project, it["path"], truth)
    with pytest.raises(DuplicateLabelError):
        loop.add_label(project, q["items"][0]["path"], "mask")
    r = loop.retrain(project)
    assert r["round"] == 1 and r["n_train"] == 11 and r["warm_start"].startswith("r0-")
    assert r["store"]["human"] == 5
    q2 = loop.query(project, k=30, strategy="entropy")
    assert len(q2["items"]) == 19 and not {it["sha256"] for it in q2["items"]} & {it["sha256"] for it in q["items"]}
    assert max(conf) <= 1.0
    s = loop.status(project)
    assert s["round"] == 1 and s["pool_unlabelled"] == 19 and s["store"]["human"] == 5
    assert (snapshot(pool), snapshot(labelled)) == before


@pytest.mark.parametrize("strategy", ["random", "margin", "bald", "kcenter", "hybrid"])
def test_every_strategy_queries(project, strategy):
    q = loop.query(project, k=4, strategy=strategy)
    assert len({it["sha256"] for it in q["items"]}) == 4 and q["strategy"] == strategy


def test_pseudo_labels_only_on_opt_in_and_marked(project):
    loop.query(project, k=3)
    assert loop.status(project)["store"]["pseudo"] == 0
    q = loop.query(project, k=3, pseudo_threshold=0.9)
    recs = read_jsonl(project / "labels.jsonl")
    assert q["pseudo_labelled"] == len(recs) > 0 and {r["source"] for r in recs} == {"pseudo"}
    assert not {r["sha256"] for r in recs} & {it["sha256"] for it in q["items"]}
    assert loop.retrain(project, include_pseudo=False)["n_train"] == 6
    assert loop.retrain(project)["n_train"] == 6 + len(recs)


def test_export_copies_everything_labelled(project, folders, tmp_path):
    pool, labelled = folders
    before = snapshot(pool), snapshot(labelled)
    loop.add_label(project, "img_000.png", "mask")
    loop.add_label(project, "batch2/img_019.png", "nomask")
    counts = loop.export(project, tmp_path / "exported")
    assert counts == {"mask": 4, "nomask": 4}
    assert (tmp_path / "exported" / "nomask" / "img_019.png").is_file()
    assert (snapshot(pool), snapshot(labelled)) == before


def test_no_labelled_folder_needs_classes_and_a_first_labelled_round(folders, tmp_path):
    pool, _ = folders
    with pytest.raises(ConfigError, match="two classes"):
        loop.init(pool, tmp_path / "p0", model="pixels")
    loop.init(pool, tmp_path / "p", classes=["mask", "nomask"], model="pixels")
    with pytest.raises(ConfigError, match="needs a model"):
        loop.query(tmp_path / "p", k=4)
    q = loop.query(tmp_path / "p", k=4, strategy="kcenter")  # diversity needs no model: a cold start
    for it in q["items"]:
        loop.add_label(tmp_path / "p", it["path"], "mask" if int(it["path"][-7:-4]) % 2 == 0 else "nomask")
    assert loop.retrain(tmp_path / "p")["round"] == 0


def test_a_round_counts_only_once_rounds_jsonl_has_it(project):
    proj = Project(project)
    # a kill after the model file was written but before rounds.jsonl: the orphan is simply replaced
    (project / "models" / "round-001.safetensors").write_bytes(b"half a file")
    assert Project(project).round == 0
    r = loop.retrain(project)
    assert r["round"] == 1 and Project(project).head_state() is not None
    # a kill after rounds.jsonl but before state.json: state catches up on the next read
    st = json.loads((project / "state.json").read_text())
    st.update(round=0, model_version=proj.model_version)
    (project / "state.json").write_text(json.dumps(st))
    assert Project(project).round == 1
    assert json.loads((project / "state.json").read_text())["round"] == 1


def test_unreadable_pool_image_is_skipped_not_fatal(project, folders):
    (folders[0] / "broken.jpg").write_bytes(b"not an image")
    q = loop.query(project, k=50)
    assert "broken.jpg" not in {it["path"] for it in q["items"]} and len(q["items"]) == 24


def test_default_backbone_features(tmp_path):
    """efficientnet_lite0 ImageNet features when its weights are installed (the default featurizer)."""
    from visionlab.active.features import FeatureCache, default_spec, load_featurizer

    spec, note = default_spec()
    if note:
        pytest.skip(note)
    f = load_featurizer(spec)
    paths = [write_image(tmp_path / f"{i}.png", i % 2, i, size=40) for i in range(2)]
    x, bad = FeatureCache(f, tmp_path / "cache").get(paths)
    assert x.shape == (2, 1280) and not bad and np.isfinite(x).all()
    assert list((tmp_path / "cache" / "active").iterdir())[0].name.startswith("efficientnet_lite0-")


def test_a_frozen_backbone_run_seeds_round_zero(folders, tmp_path):
    """--model RUN: the run's body gives the features and its head is round 0's starting point."""
    import torch
    from safetensors.torch import save_file

    from visionlab.config import RunConfig
    from visionlab.models import build

    cfg = RunConfig.build(model="mobilenet_v2", weights="none", mode="frozen", image_size=32)
    model = build(cfg, 2, 32)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(cfg.to_yaml())
    (run / "model.json").write_text(json.dumps({"model": cfg.model, "classes": ["mask", "nomask"], "image_size": 32}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(run / "model.safetensors"))
    pool, labelled = folders
    s = loop.init(pool, tmp_path / "proj", labelled=labelled, model=str(run), train=False)
    assert s["featurizer"]["kind"] == "run" and s["round"] == -1
    proj = Project(tmp_path / "proj")
    assert torch.equal(proj.featurizer.head_state["3.weight"], model.net.head[3].weight)
    r = loop.retrain(tmp_path / "proj", epochs=1)
    assert r["round"] == 0 and r["n_train"] == 6
    head = Project(tmp_path / "proj").head_state()
    step = (head["3.weight"] - model.net.head[3].weight).abs().max().item()
    assert 0 < step < 0.01  # one small step away from the run's head: warm-started, not re-initialised
    assert len(loop.query(tmp_path / "proj", k=3)["items"]) == 3
    with pytest.raises(ConfigError, match="classes"):
        loop.init(pool, tmp_path / "other", classes=["a", "b"], model=str(run))
