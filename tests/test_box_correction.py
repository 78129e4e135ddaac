"""The box correction's record (boxes.py): what it was fitted on travels with it, and old records read as before."""
from __future__ import annotations

import numpy as np
import pytest

from visionlab.boxes import BoxCorrection
from visionlab.errors import ModelError


def _fitted(merge: str) -> BoxCorrection:
    rng = np.random.default_rng(0)
    xywh = np.c_[rng.uniform(0, 200, (40, 2)), rng.uniform(10, 60, (40, 2))]
    lm = np.repeat(xywh[:, :2], 5, axis=0).reshape(40, 10) + rng.uniform(0, 10, (40, 10))
    truth = np.c_[xywh[:, :2] - 2, xywh[:, :2] + xywh[:, 2:] * 1.1]  # annotators draw a little larger
    return BoxCorrection.fit(xywh, lm, rng.uniform(0.2, 1, 40), truth, merge=merge)


def test_a_correction_fitted_on_fused_boxes_says_so_and_reads_back():
    wbf = _fitted("wbf")
    d = wbf.to_dict()
    assert d["merge"] == "wbf"
    back = BoxCorrection.from_dict(d)
    assert back.merge == "wbf" and back.pairs == 40
    np.testing.assert_allclose(back.coef, wbf.coef, atol=1e-6)


def test_a_correction_on_single_boxes_writes_what_older_versions_wrote():
    d = _fitted("nms").to_dict()
    assert "merge" not in d and set(d) == {"features", "coef", "intercept", "pairs"}  # shipped profiles unchanged
    assert BoxCorrection.from_dict(d).merge == "nms"


def test_an_unknown_merge_is_one_clear_error():
    d = _fitted("nms").to_dict() | {"merge": "soft"}
    with pytest.raises(ModelError, match="merged by 'soft'"):
        BoxCorrection.from_dict(d)
    with pytest.raises(ModelError, match="unknown box merge"):
        _fitted("soft")


def _bent(n: int, seed: int):
    """Detector boxes of 6 to 80 px whose annotated boxes are larger by a factor that bends with size (small faces
    drawn relatively larger, as annotators of tiny faces do) and shifted by how far the nose sits off centre (a
    turned head): offsets no straight line in log width can follow."""
    rng = np.random.default_rng(seed)
    w = np.exp(rng.uniform(np.log(6), np.log(80), n))
    xywh = np.c_[rng.uniform(0, 500, (n, 2)), w, w * rng.uniform(1.0, 1.2, n)]
    lm = rng.uniform(0.3, 0.7, (n, 5, 2))
    lm = np.stack([xywh[:, None, 0] + lm[..., 0] * xywh[:, None, 2], xywh[:, None, 1] + lm[..., 1] * xywh[:, None, 3]],
                  -1).reshape(n, 10)
    lw = np.log(w)
    scale = np.exp(0.06 * (lw - np.log(20)) ** 2)  # smallest and largest drawn larger
    nose = (lm[:, 4] - xywh[:, 0]) / xywh[:, 2] - 0.5
    cx = xywh[:, 0] + xywh[:, 2] / 2 + 0.6 * nose * np.abs(nose) * xywh[:, 2] * 4
    cy = xywh[:, 1] + xywh[:, 3] / 2
    gw, gh = xywh[:, 2] * scale, xywh[:, 3] * scale
    return xywh, lm, rng.uniform(0.3, 1, n), np.c_[cx - gw / 2, cy - gh / 2, cx + gw / 2, cy + gh / 2]


def test_the_quadratic_inputs_follow_offsets_that_bend_with_size_and_pose():
    from visionlab.boxes import iou_matrix, xywh_to_xyxy

    fit_on, check = _bent(600, 0), _bent(300, 1)
    ious = {}
    for kind in ("linear", "quadratic"):
        c = BoxCorrection.fit(*fit_on, kind=kind)
        got = xywh_to_xyxy(c(*check[:3]))
        ious[kind] = np.diag(iou_matrix(got, check[3]))
    assert ious["quadratic"].mean() > ious["linear"].mean() + 0.01
    assert (ious["quadratic"] >= 0.5).mean() >= (ious["linear"] >= 0.5).mean()
    assert ious["quadratic"].mean() > 0.95  # the bend is within its reach: near-exact boxes


def test_a_quadratic_correction_names_its_inputs_and_reads_back_the_same_boxes():
    data = _bent(200, 2)
    q = BoxCorrection.fit(*data, kind="quadratic")
    d = q.to_dict()
    assert d["features"] == "landmarks-rel-quad-v1" and np.asarray(d["coef"]).shape == (4, 39)
    back = BoxCorrection.from_dict(d)
    np.testing.assert_allclose(back(*data[:3]), q(*data[:3]), atol=1e-6)
    assert BoxCorrection.from_dict(_fitted("nms").to_dict()).features == "landmarks-rel-v1"  # shipped ones read on


def test_a_correction_of_unknown_inputs_or_the_wrong_width_is_one_clear_error():
    from visionlab.errors import ConfigError

    d = _fitted("nms").to_dict()
    with pytest.raises(ModelError, match="features 'landmarks-rel-v9'; this visionlab reads 'landmarks-rel-v1', "
                                         "'landmarks-rel-quad-v1'"):
        BoxCorrection.from_dict(d | {"features": "landmarks-rel-v9"})
    with pytest.raises(ModelError, match=r"expected \(4, 39\)"):
        BoxCorrection.from_dict(d | {"features": "landmarks-rel-quad-v1"})
    with pytest.raises(ConfigError, match="unknown box correction 'cubic'"):
        BoxCorrection.fit(*_bent(40, 3), kind="cubic")
