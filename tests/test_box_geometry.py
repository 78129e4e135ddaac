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
