"""Hard examples of turned faces: the turn measure on landmarks whose answer is known, and the writer on real
annotated faces (tagged side faces are picked, frontal ones are not; only copies are written)."""
from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from visionlab.detect.cropnames import is_jitter_copy, turned_name
from visionlab.detect.turned import TURN_THRESHOLD, repeat_turned, turn
from visionlab.errors import DataError

SHARED = Path(os.environ.get("VISIONLAB_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
BOXES = SHARED / "data" / "facemask_boxes"

# right eye, left eye, nose tip, right and left mouth corner of a frontal 128 px face
LM = np.array([[44, 50], [84, 50], [64, 72], [48, 92], [80, 92]], np.float32)


def test_turn_is_the_nose_offset_in_eye_distances():
    assert turn(LM) == 0.0
    right = LM.copy()
    right[2, 0] = 84  # nose tip in line with one eye: half an eye distance
    assert turn(right) == pytest.approx(0.5)
    left = LM.copy()
    left[2, 0] = 54
    assert turn(left) == pytest.approx(-0.25)
    assert turn(LM * 2) == 0.0 and turn(right * 3) == pytest.approx(0.5)  # scale does not matter
    same = LM.copy()
    same[1] = same[0]
    with pytest.raises(ValueError, match="eyes"):
        turn(same)


def _crop(img: np.ndarray, r: dict, size: int = 128, margin: float = 0.2) -> np.ndarray:
    x0, y0, x1, y1 = (int(r[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
    mx, my = int((x1 - x0) * margin), int((y1 - y0) * margin)
    h, w = img.shape[:2]
    face = img[max(0, y0 - my):min(h, y1 + my), max(0, x0 - mx):min(w, x1 + mx)]
    return cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.jpg"))}


def test_repeat_turned_copies_the_tagged_side_faces_and_leaves_the_rest(tmp_path):
    tags = BOXES / "special_cases.csv"
    if not tags.is_file():
        pytest.skip(f"{tags} is absent (set VISIONLAB_SHARED to the folder holding data/)")
    rows = [r for r in csv.DictReader(open(tags)) if int(r["xmax"]) - int(r["xmin"]) >= 30]
    side = [r for r in rows if r["side_face"] == "1"][:12]
    plain = [r for r in rows if not any(r[t] == "1" for t in ("side_face", "child", "low_light"))][:20]
    crops = tmp_path / "crops"
    for split in ("Train", "Validation"):
        for cls in ("WithoutMask", "Background"):
            (crops / split / cls).mkdir(parents=True)
    names = {}
    for i, r in enumerate(side + plain):
        name = f"{'side' if i < len(side) else 'plain'}_{i:02d}.jpg"
        cv2.imwrite(str(crops / "Train" / "WithoutMask" / name), _crop(cv2.imread(str(BOXES / "images" / r["image"])), r))
        names[name] = r
    for split, cls in (("Train", "Background"), ("Validation", "WithoutMask")):  # never read: not Train faces
        for name in list(names)[:3]:
            (crops / split / cls / name).write_bytes((crops / "Train" / "WithoutMask" / name).read_bytes())
    before = _digest(crops)

    counts = repeat_turned(crops, 2)["WithoutMask"]
    listed = {r["file"].split("/")[1]: float(r["turn"]) for r in csv.DictReader(open(crops / "turned.csv"))}
    assert counts["crops"] == len(names) and counts["turned"] == len(listed) and counts["written"] == 2 * len(listed)
    assert all(abs(t) >= TURN_THRESHOLD for t in listed.values())
    picked_side = sum(n.startswith("side") for n in listed)
    picked_plain = sum(n.startswith("plain") for n in listed)
    assert picked_side >= len(side) // 2, listed  # most side faces (tagged by eye) are picked by landmarks alone
    assert picked_plain <= len(plain) // 5, listed  # few frontal faces are
    after = _digest(crops)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing there before changed
    new = sorted(set(after) - set(before))
    assert new == sorted(f"Train/WithoutMask/{turned_name(n, k)}" for n in listed for k in range(2))
    assert all(is_jitter_copy(n) for n in new)
    for n in listed:  # the copies are the crop itself: augmentation makes each pass differ
        assert after[f"Train/WithoutMask/{turned_name(n, 0)}"] == before[f"Train/WithoutMask/{n}"]

    again = repeat_turned(crops, 1)["WithoutMask"]  # copies are never copied again
    assert again["crops"] == len(names) and again["turned"] == len(listed)


def test_repeat_turned_refuses_a_folder_without_train_or_no_copies(tmp_path):
    with pytest.raises(DataError, match="no Train split"):
        repeat_turned(tmp_path, 2)
    (tmp_path / "Train").mkdir()
    with pytest.raises(DataError, match="at least 1"):
        repeat_turned(tmp_path, 0)
