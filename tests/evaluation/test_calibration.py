"""Choosing what a user sees on unseen photos: the F1-best face-probability threshold and class weights."""
from __future__ import annotations

from pathlib import Path

import pytest

from visionlab.data.boxes import AnnotatedImage, Box
from visionlab.evaluation.calibration import balanced_accuracy, choose_shown, shown_f1, shown_map50

CLASSES = ["MaskWornIncorrectly", "WithMask", "WithoutMask"]


def _face(x, face_p, probs):
    guess = max(probs, key=probs.get)
    return {"box": [x, 0, 10, 10], "face": face_p, "probs": probs, "guess": guess, "confidence": probs[guess]}


def _case():
    """One photo, 4 annotated faces at x = 0, 20, 40, 60 (two WithMask, two worn incorrectly) and two boxes on
    nothing (x = 100, 120). Face probabilities: the faces 0.9, 0.8, 0.35, 0.3; the false boxes 0.6 and 0.2."""
    truth = AnnotatedImage(Path("p.jpg"), 200, 20, [Box(0, 0, 10, 10, "WithMask"), Box(20, 0, 30, 10, "WithMask"),
                                                    Box(40, 0, 50, 10, "MaskWornIncorrectly"),
                                                    Box(60, 0, 70, 10, "MaskWornIncorrectly")])
    wm = {"WithMask": 0.7, "MaskWornIncorrectly": 0.2, "WithoutMask": 0.1}
    mwi = {"WithMask": 0.5, "MaskWornIncorrectly": 0.4, "WithoutMask": 0.1}  # under-called: argmax says WithMask
    faces = [_face(0, 0.9, wm), _face(20, 0.8, wm), _face(40, 0.35, mwi), _face(60, 0.3, mwi),
             _face(100, 0.6, wm), _face(120, 0.2, wm)]
    return [{"source": "p.jpg", "faces": faces}], [truth]


def test_threshold_is_the_highest_that_keeps_the_map():
    records, truths = _case()
    # by hand: at 0.5 two hits, one false box, two misses: P 2/3, R 2/4, F1 0.571; at 0.3 four hits, one false:
    # P 4/5, R 1, F1 0.889; at 0.2 four hits, two false: P 4/6, F1 0.8
    import numpy as np

    face_p = np.array([0.9, 0.8, 0.35, 0.3, 0.6, 0.2])
    hit = np.array([True, True, True, True, False, False])
    assert shown_f1(face_p, hit, 4, 0.5)[0] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert shown_f1(face_p, hit, 4, 0.3)[0] == pytest.approx(2 * 0.8 * 1 / 1.8)
    got = choose_shown(records, truths, CLASSES)
    # the highest threshold that keeps mAP: above 0.3 the worn-incorrectly faces (0.35, 0.3) go and their AP with
    # them; at 0.3 only the false box at 0.2 goes, which cannot lower an AP
    assert got["min_face_prob"] == 0.3
    assert shown_map50(records, truths, CLASSES, 0.3) >= shown_map50(records, truths, CLASSES, 0.0)
    assert shown_map50(records, truths, CLASSES, 0.35) < shown_map50(records, truths, CLASSES, 0.0) - 0.2
    assert got["chosen_on"]["map50_shown"] >= got["chosen_on"]["map50_all"]
    assert got["chosen_on"]["f1"] == pytest.approx(0.8889, abs=1e-4)
    assert got["chosen_on"]["f1_at_0.5"] == pytest.approx(0.5714, abs=1e-4)


def test_class_weights_lift_an_under_called_class():
    records, truths = _case()
    got = choose_shown(records, truths, CLASSES)
    w = got["class_weights"]
    # plain argmax calls both incorrectly worn masks WithMask: balanced accuracy (1 + 0) / 2; a weight on
    # MaskWornIncorrectly over 1.25 (0.4 w > 0.5) and under 3.5 (0.2 w < 0.7) gets all four right
    assert got["chosen_on"]["balanced_accuracy_unweighted"] == pytest.approx(0.5)
    assert got["chosen_on"]["balanced_accuracy"] == pytest.approx(1.0)
    assert 1.25 < w["MaskWornIncorrectly"] / w["WithMask"] < 3.5
    assert balanced_accuracy(["WithMask"], [{"WithMask": 0.6, "WithoutMask": 0.4}], ["WithMask", "WithoutMask"],
                             {"WithoutMask": 2.0}) == 0.0
