"""The bootstrap over photos: COCO's AP worked out by hand, each draw equal to torchmetrics on the drawn photos."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from visionlab.evaluation.bootstrap import (average_precision, bootstrap_intervals, draw_counts, map50,
                                            match_photo)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "facemask_boxes"


def _hand_case():
    """One class. Photo A: two faces, boxes scored 0.9 (on face 1) and 0.8 (on nothing); photo B: one face, a box
    scored 0.7 on it."""
    a = match_photo([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], [0, 0], [[0, 0, 10, 10], [20, 20, 30, 30]],
                    [0, 0], 1)
    b = match_photo([[1, 1, 11, 11]], [0.7], [0], [[0, 0, 10, 10]], [0], 1)
    return a, b


def test_ap_worked_out_by_hand():
    a, b = _hand_case()
    assert a.hits.tolist() == [True, False] and b.hits.tolist() == [True]  # IoU of b's box: 81/119 = 0.68
    # pooled by score: TP, FP, TP of 3 faces -> recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3 -> envelope 1, 2/3, 2/3.
    # Recall points 0..0.33 read 1 (34 points), 0.34..0.66 read 2/3 (33), 0.67..1 read 0 (34).
    assert map50([a, b])[0] == pytest.approx((34 + 33 * 2 / 3) / 101, abs=1e-12)
    # photo A drawn twice, B never: TP, TP, FP, FP of 4 faces -> precision 1 up to recall 1/2 (51 points), then 0
    assert map50([a, b], np.array([2, 0]))[0] == pytest.approx(51 / 101, abs=1e-12)
    # no box at all: AP 0; no annotated face: not a figure (NaN, left out of the mean)
    assert average_precision(np.zeros(0), np.zeros(0, bool), 3) == 0.0
    assert np.isnan(average_precision(np.array([0.5]), np.array([False]), 0))


def test_matching_takes_the_best_free_face_and_never_one_twice():
    # two boxes on one face: the higher-scored one takes it, the other is a false box even though it overlaps
    m = match_photo([[0, 0, 10, 10], [0, 0, 10, 11]], [0.6, 0.9], [0, 0], [[0, 0, 10, 10]], [0], 1)
    assert m.scores.tolist() == [0.9, 0.6] and m.hits.tolist() == [True, False]
    # a box of another class never matches
    m = match_photo([[0, 0, 10, 10]], [0.9], [1], [[0, 0, 10, 10]], [0], 2)
    assert m.hits.tolist() == [False] and m.truths.tolist() == [1, 0]


def test_interval_holds_the_figure_and_narrows_with_more_photos():
    a, b = _hand_case()
    for p in (a, b):
        p.found, p.small_found, p.small = int(p.hits.sum()), 0, 0
    few = bootstrap_intervals([a, b], ["c"], draws=300)
    many = bootstrap_intervals([a, b] * 20, ["c"], draws=300)
    whole = map50([a, b])[0]
    for ci in (few["map50"], many["map50"]):
        assert ci[0] <= whole <= ci[1]
    assert many["map50"][1] - many["map50"][0] < few["map50"][1] - few["map50"][0]
    assert few["recall_under_16"] is None  # no small face: no interval rather than a made-up one
    # the same seed gives the same interval; draws are photo counts that sum to the number of photos
    assert bootstrap_intervals([a, b], ["c"], draws=300) == few
    assert all(c.sum() == 40 for c in draw_counts(40, 5))


@pytest.fixture(scope="module")
def real_detections(tmp_path_factory):
    if not (SHARED / "boxes.csv").is_file():
        pytest.skip(f"{SHARED} is absent (the shared face-mask photos)")
    import json

    from visionlab.data.boxes import read_boxes_csv
    from visionlab.detect import run_detection

    truths = [t for t in read_boxes_csv(SHARED / "boxes.csv") if t.path.is_file()]
    truths = [t for t in truths if len(t.boxes) >= 3][:12]
    out = tmp_path_factory.mktemp("det")
    s = run_detection(SHARED / "images", None, out, files=[t.path for t in truths], quiet=True, min_face_prob=0.05,
                      save_frames=False)
    lines = (Path(s["out_dir"]) / "detections.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if x.strip()], truths


def test_each_draw_equals_torchmetrics_on_the_drawn_photos(real_detections):
    """The bootstrap's mAP of a draw is what torchmetrics (pycocotools) reports when the drawn photos, repeats
    included, are evaluated as a data set of their own."""
    from visionlab.evaluation.detection import evaluate_detections

    records, truths = real_detections
    classes = ["MaskWornIncorrectly", "WithMask", "WithoutMask"]
    m = evaluate_detections(records, truths, classes, draws=0)
    photos = m["_photo_matches"]
    assert map50(photos)[0] == pytest.approx(m["map50"], abs=2e-3)
    for counts in list(draw_counts(len(photos), 3, seed=5)):
        drawn = [r for r, k in zip(records, counts) for _ in range(k)]
        ref = evaluate_detections(drawn, truths, classes, draws=0)["map50"]
        assert map50(photos, counts)[0] == pytest.approx(ref, abs=2e-3)
