"""Retraining a face project: the bundled ONNX classifier read back into torch exactly, the labels (NotAFace as
Background) plus replayed crops, which layers train, the run PROJECT/model that detect and serve use, and each
round's evaluation on labelled held-back faces."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import visionlab
from visionlab.active import loop
from visionlab.active.facemodel import FaceModel
from visionlab.active.facepool import load_faces
from visionlab.active.faceretrain import from_onnx, replay_crops, training_set
from visionlab.active.session import Project
from visionlab.errors import DataError

from .conftest import PHOTOS

FACE_CLASSES = ["MaskWornIncorrectly", "WithMask", "WithoutMask"]


def test_bundled_onnx_read_back_into_torch_exactly():
    fm = FaceModel(None)
    model, arch = from_onnx(fm)
    x = np.random.default_rng(3).integers(0, 256, (6, 3, 64, 64), dtype=np.uint8)
    with torch.no_grad():
        p = torch.softmax(model(torch.from_numpy(x).float()), 1).numpy()
    assert np.abs(p - fm.first_network(x)[0]).max() < 1e-4  # the file read back (an averaged bundle's first)
    # what trains: the head and the last two units of the body; BatchNorm statistics frozen in train mode
    trainable = {n.split(".")[2] if n.startswith("net.body") else n.split(".")[1]
                 for n, q in model.named_parameters() if q.requires_grad}
    assert trainable == {"blocks", "head_conv", "head"}
    last = len(model.net.body.blocks) - 1  # the last MBConv block, whichever Lite variant is bundled
    assert [n for n, q in model.named_parameters() if q.requires_grad and "blocks" in n][0].startswith(
        f"net.body.blocks.{last}.")
    assert arch in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
    model.train()
    assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def _replay(tmp_path: Path) -> Path:
    """A tiny replay set: class folders named like the model's classes, crops cut from a bundled photo."""
    import cv2

    img = cv2.imread(str(PHOTOS / "pic1.jpeg"))
    for c, (x, y) in {"WithMask": (175, 258), "WithoutMask": (498, 223)}.items():
        (tmp_path / "replay" / c).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(tmp_path / "replay" / c / f"{i}.png"), img[y + i:y + 150 + i, x:x + 150])
    return tmp_path / "replay"


def test_replay_crops_even_per_class(tmp_path):
    rx, ry, counts = replay_crops(_replay(tmp_path), ["Background"] + FACE_CLASSES, 4, 64, 0)
    assert rx.shape == (4, 3, 64, 64) and counts == {"WithMask": 2, "WithoutMask": 2}
    assert sorted(ry.tolist()) == [2, 2, 3, 3]
    with pytest.raises(DataError, match="no class folder"):
        replay_crops(tmp_path, ["Background"] + FACE_CLASSES, 4, 64, 0)


@pytest.fixture(scope="module")
def retrained(face_project_template, tmp_path_factory):
    """One short round: 8 labelled faces (2 NotAFace) + labelled held-back faces, 1 epoch, tiny replay."""
    root = tmp_path_factory.mktemp("retrain")
    proj = root / "proj"
    shutil.copytree(face_project_template, proj, symlinks=True)
    q = loop.query(proj, k=8)
    for i, it in enumerate(q["items"]):
        loop.add_label(proj, proj / "faces" / it["path"], "NotAFace" if i < 2 else it["prediction"])
    held = loop.query(proj, k=100, held_out=True)
    for it in held["items"]:
        loop.add_label(proj, proj / "faces" / it["path"], it["prediction"])
    rec = loop.retrain(proj, epochs=1, replay=_replay(root))
    return proj, rec, q, held


def test_retrain_writes_a_round_and_a_run(retrained):
    proj, rec, q, held = retrained
    p = Project(proj)
    assert rec["round"] == 1 and p.round == 1 and p.model_version == rec["model_version"]
    not_faces = 2 + sum(it["prediction"] == "NotAFace" for it in q["items"][2:])
    assert rec["n_train"] == 8 and rec["n_replay"] == 6 and rec["labels"]["NotAFace"] == not_faces
    assert rec["warm_start"] == "r0" and "head" in rec["trained"]
    assert rec["balanced"] is True and rec["distill"] == 0.0 and rec["lr"] == 1e-4
    assert (proj / "model").resolve() == (proj / "rounds" / "round-001").resolve()
    for f in ("config.yaml", "model.json", "model.safetensors", "model.onnx", "detect.json", "metrics.json"):
        assert (proj / "model" / f).is_file(), f
    info = json.loads((proj / "model" / "model.json").read_text())
    assert info["classes"] == ["Background"] + FACE_CLASSES and info["image_size"] == 64
    last = [json.loads(x) for x in (proj / "rounds.jsonl").read_text().splitlines()][-1]
    assert last["model_version"] == rec["model_version"] and last["run"] == "rounds/round-001"


def test_training_set_maps_not_a_face_to_background_and_leaves_held_out(retrained):
    proj, rec, q, held = retrained
    p = Project(proj)
    faces = load_faces(proj)
    paths, y, counts = training_set(p, faces, ["Background"] + FACE_CLASSES)
    assert len(y) == 8 and (y == 0).sum() == rec["labels"]["NotAFace"] >= 2
    held_paths = {proj / "faces" / it["path"] for it in held["items"]}
    assert not set(paths) & held_paths


def test_evaluation_per_class_with_intervals_and_the_round_before(retrained):
    proj, rec, q, held = retrained
    ev = rec["evaluation"]
    assert ev["n"] == len(held["items"]) > 0
    assert ev["previous"]["round"] == 0 and ev["this"]["round"] == 1
    # held-back faces were labelled with round 0's guesses: round 0 is right on all of them
    assert ev["previous"]["accuracy"] == 1.0
    for key in ("this", "previous"):
        for c, d in ev[key]["per_class"].items():
            assert 0 <= d["low"] <= d["recall"] <= d["high"] <= 1 and d["k"] <= d["n"]
            assert d["recall"] == pytest.approx(d["k"] / d["n"], abs=1e-4)
    assert sum(d["n"] for d in ev["this"]["per_class"].values()) == ev["n"]


def test_detect_and_serve_take_the_project_as_model(retrained):
    proj, rec, q, held = retrained
    photo = PHOTOS / "pic1.jpeg"
    via_project = visionlab.detect(photo, model=str(proj))
    via_run = visionlab.detect(photo, model=str(proj / "model"))
    bundled = visionlab.detect(photo)
    assert [f.probs for f in via_project] == [f.probs for f in via_run]
    assert [f.probs for f in via_project] != [f.probs for f in bundled]
    from visionlab.inference.load import load_classifier
    from visionlab.runs import load_run
    from visionlab.serve.engine import Engine
    clf = load_classifier(str(proj))
    assert Path(clf.source).resolve() == (proj / "rounds" / "round-001" / "model.onnx").resolve()
    assert load_run(proj).path == proj / "model"
    engine = Engine(str(proj))  # what `visionlab serve PROJECT` builds
    assert Path(engine.classifier.source).resolve() == Path(clf.source).resolve()


def test_the_next_query_uses_the_new_round(retrained, tmp_path):
    proj, rec, q, held = retrained
    q2 = loop.query(proj, k=4)
    assert q2["model_version"] == rec["model_version"]
    assert (proj / "scores" / f"{rec['model_version']}.npz").is_file()
    labelled = {it["sha256"] for it in q["items"]}
    assert not labelled & {it["sha256"] for it in q2["items"]}


def test_train_balanced_and_distill_change_the_loss():
    """Class weights and the distillation term are real parts of the loss: with a teacher that disagrees with
    the labels, a distilled run ends nearer the teacher than a plain one."""
    from visionlab.active.faceretrain import train

    fm = FaceModel(None)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 3, 64, 64), dtype=np.uint8)
    y = np.array([2] * 10 + [3] * 2)
    teacher = np.tile(np.array([[0.7, 0.1, 0.1, 0.1]], np.float32), (12, 1))
    runs = {}
    for name, kw in {"plain": {}, "distill": {"teacher": teacher, "distill": 5.0}}.items():
        model, arch = from_onnx(fm)
        train(model, x, y, 2, 1e-3, 0, **kw)
        with torch.no_grad():
            runs[name] = torch.softmax(model(torch.from_numpy(x).float()), 1).numpy()
    assert runs["distill"][:, 0].mean() > runs["plain"][:, 0].mean()
    model, arch = from_onnx(fm)
    h = train(model, x, y, 1, 1e-3, 0, balanced=True)
    assert h[0]["loss"] > 0


def test_a_larger_lite_classifier_is_read_back_as_its_own_variant(tmp_path):
    """A face model exported from EfficientNet-Lite1 (as the bundled one may be) is read back into Lite1, not
    forced into Lite0's shapes, and matches ONNX Runtime."""
    from visionlab.active.faceretrain import _run_config, write_run
    from visionlab.models import build

    fm = FaceModel(None)
    torch.manual_seed(0)
    cfg = _run_config("efficientnet_lite1", fm.image_size, 1, 1e-3, 0)
    model = build(cfg, len(fm.classes), fm.image_size).eval()
    run = write_run(tmp_path / "lite1", model, fm, cfg, {}, [])
    assert json.loads((run / "model.json").read_text())["model"] == "efficientnet_lite1"
    back, arch = from_onnx(FaceModel(run / "model.onnx"))
    assert arch == "efficientnet_lite1" and len(back.net.body.blocks) == 21
    x = np.random.default_rng(5).integers(0, 256, (3, 3, fm.image_size, fm.image_size), dtype=np.uint8)
    with torch.no_grad():
        mine = torch.softmax(back(torch.from_numpy(x).float()), 1).numpy()
        ref = torch.softmax(model(torch.from_numpy(x).float()), 1).numpy()
    assert np.abs(mine - ref).max() < 1e-4
