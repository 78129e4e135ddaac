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
