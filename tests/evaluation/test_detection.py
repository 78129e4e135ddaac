"""Box-level evaluation against a small case worked out by hand."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from visionlab.data.boxes import AnnotatedImage, Box
from visionlab.evaluation.detection import evaluate_detections, write_detection_report

CLASSES = ["MaskWornIncorrectly", "WithMask", "WithoutMask"]


def _face(x, y, w, h, probs):
    guess = max(probs, key=probs.get)
    total = sum(probs.values())
    return {"box": [x, y, w, h], "label": guess, "guess": guess, "confidence": probs[guess] / total,
            "score": 0.9, "probs": probs, "face": total}


@pytest.fixture
def case(tmp_path):
    """Photo a: two WithMask faces (40 px and 12 px), one WithoutMask face (20 px).
    Photo b: one WithMask face (70 px), one MaskWornIncorrectly face (35 px)."""
    for n in ("a.jpg", "b.jpg"):
        Image.new("RGB", (200, 200), (90, 90, 90)).save(tmp_path / n)
    truths = [
        AnnotatedImage(tmp_path / "a.jpg", 200, 200, [Box(10, 10, 50, 50, "WithMask"), Box(100, 100, 112, 112, "WithMask"),
                                                      Box(150, 10, 170, 30, "WithoutMask")]),
        AnnotatedImage(tmp_path / "b.jpg", 200, 200, [Box(0, 100, 70, 170, "WithMask"),
                                                      Box(120, 120, 155, 155, "MaskWornIncorrectly")]),
    ]
    records = [
        {"source": str(tmp_path / "a.jpg"), "frame": None, "faces": [
            _face(10, 10, 40, 40, {"WithMask": 0.9, "WithoutMask": 0.05, "MaskWornIncorrectly": 0.05}),   # TP
            _face(150, 10, 20, 20, {"WithMask": 0.6, "WithoutMask": 0.3, "MaskWornIncorrectly": 0.1}),    # wrong class
            _face(60, 150, 30, 30, {"WithMask": 0.8, "WithoutMask": 0.1, "MaskWornIncorrectly": 0.1}),    # no face
        ]},  # the 12-px face is missed
        {"source": str(tmp_path / "b.jpg"), "frame": None, "faces": [
            _face(0, 100, 70, 70, {"WithMask": 0.7, "WithoutMask": 0.2, "MaskWornIncorrectly": 0.1}),     # TP
            _face(120, 120, 35, 35, {"WithMask": 0.2, "WithoutMask": 0.1, "MaskWornIncorrectly": 0.7}),   # TP
        ]},
    ]
    return records, truths


def test_map_recall_confusion_and_false_boxes_match_a_hand_computed_case(case, tmp_path):
    records, truths = case
    m = evaluate_detections(records, truths, CLASSES)
    # WithMask, 3 faces. Scores: 0.9 TP (a, 40 px), 0.8 FP (no face), 0.7 TP (b), 0.6 FP (it is WithoutMask),
    # 0.2 FP (b's incorrect face scored as WithMask). Recall 1/3 at precision 1, then 2/3 at 2/3; the 12-px face
    # never. AP = (34 points * 1 + 33 points * 2/3) / 101 = 56/101.
    assert m["ap50_per_class"]["WithMask"] == pytest.approx(56 / 101, abs=1e-4)
    # WithoutMask, 1 face: its own box scores 0.3 as WithoutMask, above every other box's WithoutMask score
    # (0.2, 0.1, 0.1, 0.05): AP 1, although its best guess is WithMask
    assert m["ap50_per_class"]["WithoutMask"] == pytest.approx(1.0)
    # MaskWornIncorrectly: 0.7 TP first: AP 1
    assert m["ap50_per_class"]["MaskWornIncorrectly"] == pytest.approx(1.0)
    assert m["map50"] == pytest.approx((56 / 101 + 1 + 1) / 3, abs=1e-4)
    # face recall by size (shorter side): 12 px missed; 20, 35, 40, 70 px found
    assert m["recall_by_size"]["<16"] == {"found": 0, "faces": 1, "recall": 0.0}
    assert m["recall_by_size"]["16-31"]["found"] == 1 and m["recall_by_size"][">=64"]["found"] == 1
    assert m["recall_by_size"]["32-63"] == {"found": 2, "faces": 2, "recall": 1.0}
    assert m["face_recall"] == pytest.approx(4 / 5)
    assert m["false_boxes"] == 1 and m["face_boxes"] == 5
    assert m["shown_boxes"] == 5 and m["false_boxes_shown"] == 1  # every face probability is 1 here
    cm = np.array(m["confusion"]["matrix"])  # rows annotated, columns best guess, order CLASSES
    assert cm.tolist() == [[1, 0, 0], [0, 2, 0], [0, 1, 0]]
    assert m["matched_accuracy"] == pytest.approx(3 / 4)
    # scored with the best guess only, the WithoutMask face is never a WithoutMask detection: AP 0
    assert m["map50_top1"] < m["map50"]
    assert [d["truth"] for d in m["_misses"]] == ["WithMask"]
    # every annotated face's outcome says whether a user sees its box (found, face probability >= the threshold)
    assert [f["shown"] for f in m["_faces"]] == [True, False, True, True, True]
    records[0]["faces"][1]["face"] = 0.3  # the WithoutMask face's box: the classifier's Background took 70%
    hidden = evaluate_detections(records, truths, CLASSES, draws=0)
    assert [f["shown"] for f in hidden["_faces"]] == [True, False, False, True, True]
    assert [f["guess"] for f in hidden["_faces"]] == [f["guess"] for f in m["_faces"]]  # still found and labelled
    assert m["_mistakes"][0]["truth"] == "WithoutMask" and m["_mistakes"][0]["guess"] == "WithMask"

    report = write_detection_report(m, tmp_path / "eval")
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["map50"] == m["map50"] and "_misses" not in saved and saved["worst_misses"]
    html = report.read_text()
    assert "mAP@0.5 <b>" in html and "pr_curves.png" in html and "gallery_misses.png" in html
    for name in ("pr_curves", "recall_by_size", "confusion_matched", "gallery_misses", "gallery_mistakes"):
        assert (tmp_path / "eval" / "plots" / f"{name}.png").stat().st_size > 2000


def test_a_shifted_box_below_iou_half_is_a_miss(case):
    records, truths = case
    records[1]["faces"][0]["box"] = [35, 100, 70, 70]  # IoU with (0,100,70,70) is 35*70 / (2*4900 - 35*70) = 1/3
    records[0]["faces"][2]["face"] = 0.3  # the no-face box: the classifier's Background took 70%
    m = evaluate_detections(records, truths, CLASSES)
    assert m["recall_by_size"][">=64"]["found"] == 0 and m["false_boxes"] == 2
    assert m["shown_boxes"] == 4 and m["false_boxes_shown"] == 1


def test_unannotated_photos_and_unknown_classes_are_errors(case):
    from visionlab.errors import DataError

    records, truths = case
    with pytest.raises(DataError, match="none of the processed images"):
        evaluate_detections([{"source": "/x/other.jpg", "faces": []}], truths, CLASSES)
    with pytest.raises(DataError, match="not classes of the model"):
        evaluate_detections(records, truths, ["WithMask", "WithoutMask"])


def test_boxes_rank_by_class_probability_times_detector_score(case):
    records, truths = case
    records[0]["faces"][2]["score"] = 0.1  # the no-face box: the detector barely believed it
    m = evaluate_detections(records, truths, CLASSES)
    # WithMask ranked by p * score: 0.81 TP, 0.63 TP, 0.54 FP, 0.18 FP, 0.08 FP -> precision 1 up to recall 2/3
    assert m["ap50_per_class"]["WithMask"] == pytest.approx(67 / 101, abs=1e-4) and m["rank"] == "prob*score"
    plain = evaluate_detections(records, truths, CLASSES, rank="prob")
    assert plain["ap50_per_class"]["WithMask"] == pytest.approx(56 / 101, abs=1e-4)
