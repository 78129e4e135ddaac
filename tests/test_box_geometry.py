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
