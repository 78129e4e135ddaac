"""Three classes end to end on real crowd photos: cut face crops (split by photo), train, detect, score the boxes."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from visionlab.data.boxes import read_boxes_csv
from visionlab.detect.facecrops import BACKGROUND, cut_faces, photo_groups, split_photos

from .conftest import shared_file

N_PHOTOS = 36


@pytest.fixture(scope="module")
def few_photos(tmp_path_factory) -> tuple[Path, Path]:
    """boxes.csv of the first photos that hold all three classes between them, and the shared photo folder."""
    src = shared_file("data", "facemask_boxes", "boxes.csv")
    rows = list(csv.DictReader(open(src, newline="")))
    inc = [r["image"] for r in rows if r["label"] == "mask_weared_incorrect"]
    names = list(dict.fromkeys(inc[:12] + [r["image"] for r in rows]))[:N_PHOTOS]
    out = tmp_path_factory.mktemp("boxes") / "boxes.csv"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=rows[0].keys())
        w.writeheader()
        w.writerows(r for r in rows if r["image"] in names)
    return out, src.parent / "images"


@pytest.fixture(scope="module")
def crops(few_photos, yunet_path, tmp_path_factory) -> Path:
    boxes, images = few_photos
    out = tmp_path_factory.mktemp("crops") / "faces"
    cut_faces([boxes], out, images=images, face_model=yunet_path, size=48, split_ratios=(0.6, 0.2, 0.2), seed=3,
              show_progress=False)
    return out


def test_photos_never_straddle_splits_and_the_split_is_recorded(crops, few_photos):
    manifest = json.loads((crops / "faces.json").read_text())
    split_of = {name: s for s, names in manifest["photos"].items() for name in names}
    assert len(split_of) == N_PHOTOS and set(manifest["photos"]) == {"Train", "Validation", "Test"}
    seen: dict[str, set] = {}
    for f in crops.glob("*/*/*.jpg"):
        photo = f.name.split("_")[0] + ".jpg"
        seen.setdefault(photo, set()).add(f.parts[-3])
    assert all(len(s) == 1 for s in seen.values())  # every crop of a photo is in one split ...
    assert all(split_of[p] in s for p, s in seen.items())  # ... the one faces.json names
    # every annotated face of a validation/test photo has exactly one crop; train gets jittered extras
    recs = {r.name: r for r in read_boxes_csv(few_photos[0], few_photos[1])}
    for split in ("Validation", "Test"):
        n = sum(len(recs[p].boxes) for p in manifest["photos"][split])
        got = sum(1 for f in (crops / split).glob("*/*.jpg") if f.parent.name != BACKGROUND)
        assert got == n
    assert manifest["jitter_copies"]["MaskWornIncorrectly"] > 0 and manifest["jitter_copies"]["WithMask"] == 0
    prof = json.loads((crops / "detect.json").read_text())
    assert prof["upscale"] == 3.0 and prof["box_correction"]["pairs"] >= 20


def test_the_same_seed_gives_the_same_split_and_another_seed_another(few_photos):
    recs = read_boxes_csv(*few_photos)
    groups = photo_groups(recs)
    a = split_photos(recs, (0.6, 0.2, 0.2), 3, groups)
    assert a == split_photos(recs, (0.6, 0.2, 0.2), 3, groups)
    assert a != split_photos(recs, (0.6, 0.2, 0.2), 4, groups)
    # a group never straddles
    for g in set(groups):
        assert len({s for s, gg in zip(a, groups) if gg == g}) == 1


def test_train_detect_and_score_three_classes(crops, few_photos, yunet_path, tmp_path):
    from visionlab.cli import main

    boxes, images = few_photos
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main(["train", "--data", str(crops), "--model", "small_cnn", "--image-size", "32", "--epochs", "2",
              "--optimizer", "adam", "--lr", "0.003", "--out", str(run), "--quiet", "--report", "metrics"])
    assert e.value.code in (0, None)
    info = json.loads((run / "model.json").read_text())
    assert info["classes"] == [BACKGROUND, "MaskWornIncorrectly", "WithMask", "WithoutMask"]
    assert (run / "detect.json").is_file()  # the crops' detection profile travels with the run
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as e:
        main(["detect", str(images), "--model", str(run), "--out", str(out), "--face-model", str(yunet_path),
              "--truth", str(boxes), "--subset", f"{crops / 'faces.json'}:Validation"])
    assert e.value.code in (0, None)
    m = json.loads((out / "metrics.json").read_text())
    val = json.loads((crops / "faces.json").read_text())["photos"]["Validation"]
    assert m["photos"] == len(val)
    assert 0.0 <= m["map"] <= m["map50"] <= 1.0
    assert set(m["ap_per_class"]) <= {"WithMask", "WithoutMask", "MaskWornIncorrectly"}
    assert m["face_recall"] > 0.5  # YuNet at 3x with the box correction finds most faces even with a weak model
    assert sum(b["faces"] for b in m["recall_by_size"].values()) == m["faces"]
    lines = [json.loads(x) for x in (out / "detections.jsonl").read_text().splitlines()]
    assert len(lines) == len(val)
    faces = [f for ln in lines for f in ln["faces"]]
    assert faces and all(set(f["probs"]) == {"WithMask", "WithoutMask", "MaskWornIncorrectly"} for f in faces)
    assert all(abs(sum(f["probs"].values()) - f["face"]) < 1e-3 for f in faces)
    assert all(f["guess"] in f["probs"] and isinstance(f["unsure"], bool) for f in faces)
    assert (out / "report.html").read_text().count("<img") >= 4
    # the annotated photos are written under their own names, originals untouched
    assert {p.name for p in out.glob("*.jpg")} == set(val)
    assert np.isfinite(m["map50_top1"])


def test_score_with_the_bundled_model_needs_no_model_flag(few_photos, tmp_path):
    """`visionlab detect PHOTOS --truth boxes.csv` with no --model scores the bundled classifier (it crashed on
    `None.classes` before)."""
    from visionlab.cli import main

    boxes, images = few_photos
    names = sorted({r["image"] for r in csv.DictReader(open(boxes, newline=""))})[:3]
    subset = tmp_path / "three.txt"
    subset.write_text("\n".join(names) + "\n")
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as e:
        main(["detect", str(images), "--out", str(out), "--truth", str(boxes), "--subset", str(subset)])
    assert e.value.code in (0, None)
    m = json.loads((out / "metrics.json").read_text())
    assert m["photos"] == 3 and 0.0 <= m["map"] <= m["map50"] <= 1.0
    assert set(m["ap_per_class"]) <= {"WithMask", "WithoutMask", "MaskWornIncorrectly"}
