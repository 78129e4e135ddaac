"""tools/compare_folds.py: the paired comparison of two recipes' out-of-fold figures on the same faces."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_tool  # tests/conftest.py (rootdir conftest, on sys.path)

@pytest.fixture(scope="module")
def tool():
    return load_tool("compare_folds")


def test_paired_faces_hand_case(tool):
    """Four faces: A right on 1 and 2, B right on 1, 3 and 4: 2/4 -> 3/4, +0.25, two fixed and one broken; the
    bootstrap interval holds the difference and stays within what a resample can give: the per-face
    differences are 0, -1, +1, +1, so a draw's mean lies in [-1, +1]."""
    a = np.array([1, 1, 0, 0], bool)
    b = np.array([1, 0, 1, 1], bool)
    r = tool.paired_faces(a, b)
    assert (r["a"]["k"], r["b"]["k"], r["n"]) == (2, 3, 4)
    assert r["diff"] == pytest.approx(0.25) and (r["fixed"], r["broken"]) == (2, 1)
    assert -1 <= r["ci"][0] < 0.25 < r["ci"][1] <= 1
    lo, hi = r["a"]["ci"]
    assert lo < 0.5 < hi  # Wilson around 2/4


def test_paired_faces_identical_recipes_differ_by_nothing(tool):
    a = np.array([1, 0, 1, 1, 0, 1], bool)
    r = tool.paired_faces(a, a.copy())
    assert r["diff"] == 0 and r["ci"] == [0.0, 0.0] and r["fixed"] == r["broken"] == 0


def test_each_recipe_is_shown_at_its_own_calibrated_threshold(tool, tmp_path):
    """shown.json of `--calibrate` names the face probability from which a recipe's boxes are shown; without it,
    detect's default 0.5."""
    import json

    assert tool.shown_threshold(tmp_path) == 0.5
    (tmp_path / "shown.json").write_text(json.dumps({"min_face_prob": 0.2, "class_weights": {}}))
    assert tool.shown_threshold(tmp_path) == 0.2
