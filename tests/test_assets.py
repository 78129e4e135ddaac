"""The bundled classifier and face detector: they match their card, work with no arguments, and a damaged or
missing file is one clear line."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from visionlab import assets
from visionlab.errors import ModelError

from conftest import shared_path

VISIONLAB = [sys.executable, "-m", "visionlab"]


def test_bundled_files_match_the_card():
    from visionlab.inference.export import onnx_metadata

    card = assets.card()
    meta = onnx_metadata(assets.default_classifier())
    # an averaged bundle (card["members"] networks): the first file names the others, each in the card
    members = json.loads(meta.get("visionlab.average_with", "[]"))
    assert len(members) == card.get("members", 1) - 1
    assert set(card["files"]) == {assets.CLASSIFIER, assets.FACE_MODEL, *members}
    assert json.loads(meta["visionlab.classes"]) == card["classes"]
    assert int(meta["visionlab.image_size"]) == card["image_size"]
    assert "MaskWornIncorrectly" in card["face_classes"] and "Background" not in card["face_classes"]
    prof = json.loads(meta["visionlab.detect_profile"])
    assert prof["upscale"] > 1 and prof["box_correction"]["pairs"] > 100
    for name in members:  # each network of the same classes and size, checked against the card
        m = onnx_metadata(assets.asset(name))
        assert json.loads(m["visionlab.classes"]) == card["classes"] and "visionlab.average_with" not in m
    total = sum(f["bytes"] for f in card["files"].values())
    assert total < (21 * len(members) + 25) * 2**20  # 20.5 MB per averaged network, the rest under 25 MB
    assert assets.default_face_model().stat().st_size == 229738
    for split in ("Validation", "Test"):
        d = card["detection"][split]
        assert 0 < d["map"] < d["map50"] <= 1 and d["photos"] > 50
    assert (assets.ROOT / "MODEL_CARD.md").read_text().count("visionlab ") >= 4  # the commands that made it
    assert (assets.ROOT / "LICENSE-YuNet.txt").read_text().startswith("face_detection_yunet")


def test_pic1_with_no_arguments_gives_two_masked_faces(tmp_path):
    pic1 = shared_path("data", "scenes", "pic1.jpeg")
    env = {k: v for k, v in os.environ.items() if k != "VISIONLAB_FACE_MODEL"}
    p = subprocess.run(VISIONLAB + ["detect", str(pic1)], cwd=tmp_path, capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0].startswith("model: bundled face-mask classifier facemask_classifier.onnx")
    out = [d for d in tmp_path.iterdir() if d.name.startswith("detections-")]
    assert len(out) == 1 and (out[0] / "pic1.jpeg").is_file()
    faces = json.loads((out[0] / "detections.jsonl").read_text())["faces"]
    assert [f["label"] for f in faces] == ["WithMask", "WithMask"]
    assert all(f["probs"]["WithMask"] > 0.5 for f in faces)


def test_python_api_mirrors_the_cli():
    import visionlab

    faces = visionlab.detect(str(shared_path("data", "scenes", "pic1.jpeg")))
    assert [f.label for f in faces] == ["WithMask", "WithMask"]
    assert all(set(f.probs) == {"WithMask", "WithoutMask", "MaskWornIncorrectly"} and len(f.box) == 4
               for f in faces)


@pytest.fixture
def copied_assets(tmp_path, monkeypatch):
    root = tmp_path / "assets"
    shutil.copytree(assets.ROOT, root, ignore=shutil.ignore_patterns("__pycache__", "photos"))
    monkeypatch.setattr(assets, "ROOT", root)
    assets.card.cache_clear()
    assets.asset.cache_clear()
    yield root
    assets.card.cache_clear()
    assets.asset.cache_clear()


def test_a_damaged_or_missing_bundled_file_is_one_clear_line(copied_assets):
    f = copied_assets / assets.CLASSIFIER
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ModelError) as e:
        assets.default_classifier()
    msg = str(e.value)
    assert str(f) in msg and "damaged" in msg and "reinstall" in msg and "\n" not in msg
    (copied_assets / assets.FACE_MODEL).unlink()
    with pytest.raises(ModelError, match=r"face_detection_yunet_2026may.onnx is missing; reinstall"):
        assets.default_face_model()
    (copied_assets / assets.CARD).write_text("{broken")
    assets.card.cache_clear()
    assets.asset.cache_clear()
    with pytest.raises(ModelError, match="model card .* is damaged"):
        assets.default_classifier()


def test_the_cli_says_the_damage_in_one_line(tmp_path):
    # a copy of the installed package with a truncated classifier, run as a user would run it
    pkg = Path(assets.__file__).resolve().parents[1]
    site = tmp_path / "site"
    shutil.copytree(pkg, site / "visionlab", ignore=shutil.ignore_patterns("__pycache__"))
    bad = site / "visionlab" / "assets" / assets.CLASSIFIER
    bad.write_bytes(bad.read_bytes()[:1000])
    env = {**os.environ, "PYTHONPATH": str(site)}
    p = subprocess.run(VISIONLAB + ["detect", str(shared_path("data", "scenes", "pic1.jpeg")), "--out",
                                    str(tmp_path / "o")], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 2
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and "damaged" in lines[0] and "Traceback" not in p.stderr
    assert not (tmp_path / "o").exists()


def test_predict_with_no_run_uses_the_bundled_classifier(tmp_path):
    folder = shared_path("data", "facemask", "Test", "WithoutMask")
    files = sorted(folder.glob("*.jpg"))[:12]
    p = subprocess.run(VISIONLAB + ["predict", *map(str, files)], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("model: bundled face-mask classifier")
    out = next(tmp_path.glob("predictions-*"))
    res = json.loads((out / "predictions.json").read_text())
    assert res["run"].startswith("bundled:") and len(res["predictions"]) == 12
    assert sum(r["label"] == "WithoutMask" for r in res["predictions"]) >= 10
