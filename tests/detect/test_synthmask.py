"""Synthetic incorrectly-worn masks: the geometry on hand-made faces whose answer is known, and the writer on real
one-face photos (sources read, never changed; every file listed with its two sources)."""
from __future__ import annotations

import csv
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from visionlab.detect.synthmask import compose, synthesize
from visionlab.errors import DataError

SHARED = Path(os.environ.get("VISIONLAB_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
FACEMASK = SHARED / "data" / "facemask" / "Train"

# right eye, left eye, nose tip, right and left mouth corner of a 128 px face
LM = np.array([[44, 50], [84, 50], [64, 72], [48, 92], [80, 92]], np.float32)


@pytest.mark.parametrize("seed", range(8))
def test_compose_keeps_the_nose_and_covers_the_mouth(seed):
    wearer = np.full((128, 128, 3), 100, np.uint8)
    donor = np.full((128, 128, 3), 250, np.uint8)
    out = compose(wearer, LM, donor, LM, np.random.default_rng(seed))
    assert out is not None and out.shape == wearer.shape
    assert (out[:73, :, :] == 100).all()  # eyes and nose tip: the wearer's own
    assert (out[:, :20] == 100).all() and (out[:, 108:] == 100).all()  # outside the cheeks: untouched
    assert (out[112, 64] == 250).all()  # below the mouth, on the chin: the donor's mask, whatever the height drawn
    top = int(np.argmax(out[:, 64, 0] > 175))
    assert 72 <= top <= 101  # the mask's top edge: between the nose tip and just below the mouth


def test_compose_refuses_a_face_without_room_between_nose_and_mouth():
    flat = LM.copy()
    flat[3:, 1] = flat[2, 1] + 1
    img = np.zeros((128, 128, 3), np.uint8)
    assert compose(img, flat, img, LM, np.random.default_rng(0)) is None


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.jpg"))}


def test_synthesize_on_real_faces(tmp_path):
    if not FACEMASK.is_dir():
        pytest.skip(f"{FACEMASK} is absent (set VISIONLAB_SHARED to the folder holding data/)")
    crops = tmp_path / "crops"
    for cls in ("WithoutMask", "WithMask"):
        (crops / "Train" / cls).mkdir(parents=True)
        for p in sorted((FACEMASK / cls).glob("*.jpg"))[:12]:
            shutil.copy(p, crops / "Train" / cls / p.name)
    before = _digest(crops / "Train")
    res = synthesize(crops, 6, seed=0)
    assert res["written"] == 6 and res["wearers"] >= 3 and res["donors"] >= 3
    made = sorted((crops / "Train" / "MaskWornIncorrectly").glob("synth_*.jpg"))
    rows = list(csv.DictReader(open(crops / "synthetic.csv")))
    assert [r["file"] for r in rows] == [p.name for p in made]
    for r in rows:
        assert (crops / "Train" / "WithoutMask" / r["wearer"]).is_file()
        assert (crops / "Train" / "WithMask" / r["donor"]).is_file()
    after = _digest(crops / "Train")
    assert {k: v for k, v in after.items() if not k.startswith("synth_")} == before
    again = tmp_path / "again"
    shutil.copytree(crops, again, ignore=shutil.ignore_patterns("MaskWornIncorrectly", "synthetic.csv"))
    synthesize(again, 6, seed=0)
    assert _digest(again / "Train" / "MaskWornIncorrectly") == _digest(crops / "Train" / "MaskWornIncorrectly")


def test_synthesize_needs_the_two_classes(tmp_path):
    (tmp_path / "Train" / "WithMask").mkdir(parents=True)
    with pytest.raises(DataError, match="WithoutMask"):
        synthesize(tmp_path, 3)
