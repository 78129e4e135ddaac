"""The runtime's box arithmetic (no torch) against torchvision's, which the full install has."""
from __future__ import annotations

import numpy as np
import pytest

from visionlab.boxes import iou_matrix, nms_merge

torch = pytest.importorskip("torch", reason="the reference implementation is torchvision's")
ops = pytest.importorskip("torchvision.ops", reason="the reference implementation is torchvision's")


def _boxes(rng, n):
    xy = rng.uniform(0, 100, (n, 2))
    return np.c_[xy, xy + rng.uniform(1, 40, (n, 2))]


def test_iou_matrix_matches_torchvision_and_a_hand_case():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    assert np.allclose(iou_matrix(a, b), [[25 / 175, 0.0, 1.0]])
    assert iou_matrix(a, np.zeros((0, 4))).shape == (1, 0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = _boxes(rng, rng.integers(1, 20)), _boxes(rng, rng.integers(1, 20))
        ref = ops.box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        assert np.allclose(iou_matrix(a, b), ref, atol=1e-12)


def test_nms_merge_keeps_what_torchvision_keeps():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        boxes, scores = _boxes(rng, n), rng.uniform(0, 1, n)
        ref = ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.4).tolist()
        assert nms_merge(boxes, scores, 0.4) == ref
    assert nms_merge([], [], 0.4) == []


def test_drop_contained_keeps_one_box_per_face():
    from visionlab.boxes import drop_contained

    face = [100, 100, 140, 150]  # 40 x 50
    loose = [95, 60, 160, 160]  # around the head: holds the whole face, IoU 0.31 (NMS at 0.4 keeps both)
    other = [150, 100, 190, 150]  # the next person, touching: no overlap
    inner = [110, 110, 130, 140]  # inside the face box
    half = [120, 100, 160, 150]  # half of the face's area: two people side by side can overlap so
    assert drop_contained([face, loose, other], [0.9, 0.2, 0.8]) == [0, 2]
    assert drop_contained([loose, face], [0.9, 0.2]) == [0]  # the higher score wins, whichever it is
    assert drop_contained([face, inner], [0.5, 0.6]) == [1]
    assert drop_contained([face, half], [0.9, 0.8]) == [0, 1]
    assert drop_contained([face, half], [0.9, 0.8], share=0.5) == [0]
    assert drop_contained(np.zeros((0, 4)), []) == []


def test_fuse_boxes_against_a_hand_computed_case():
    from visionlab.boxes import fuse_boxes

    def row(x, y, w, h, score, lm=0.0):
        return [x, y, w, h, *([lm] * 10), score]

    rows = np.array([row(2, 0, 10, 10, 0.4, lm=4.0),  # pass 2: the same face, shifted 2 px (IoU 80/120 = 0.667)
                     row(50, 50, 10, 10, 0.9),  # pass 1 only: a face one pass of two found
                     row(0, 0, 10, 10, 0.8, lm=1.0)])
    fused, best = fuse_boxes(rows, passes=2)
    # the shared face: coordinates weighted 0.8 : 0.4, score mean(0.8, 0.4) x 2/2; the lone face 0.9 x 1/2
    assert fused.shape == (2, 15)
    np.testing.assert_allclose(fused[0, :4], [2 * 0.4 / 1.2, 0, 10, 10])
    np.testing.assert_allclose(fused[0, 4:14], (1.0 * 0.8 + 4.0 * 0.4) / 1.2)
    assert fused[0, 14] == pytest.approx(0.6) and fused[1, 14] == pytest.approx(0.45)
    np.testing.assert_allclose(fused[1, :4], [50, 50, 10, 10])
    np.testing.assert_allclose(best, [0.8, 0.9])  # each cluster's best single score, for the box correction
    # below the cluster threshold two boxes stay two faces; nothing in, nothing out
    apart = np.array([row(0, 0, 10, 10, 0.8), row(5, 0, 10, 10, 0.7)])  # IoU 50/150 = 0.33
    assert len(fuse_boxes(apart, passes=2)[0]) == 2
    assert fuse_boxes(np.zeros((0, 15)), passes=2)[0].shape == (0, 15)
