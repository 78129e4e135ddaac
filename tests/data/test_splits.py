"""Splits: seeded, stratified, sorted; unstratified only with a warning; limit_per_class deterministic."""
from __future__ import annotations

import numpy as np
import pytest

from visionlab.data import splits as sp


def test_holdout_is_stratified_seeded_and_disjoint():
    y = np.repeat([0, 1, 2], [100, 50, 30])
    kept, held = sp.holdout(np.arange(len(y)), y, 0.2, seed=0)
    assert len(held) == 36 and len(kept) == 144
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(180))
    assert np.bincount(y[held]).tolist() == [20, 10, 6]  # class balance kept
    assert (np.diff(kept) > 0).all() and (np.diff(held) > 0).all()  # sorted
    again = sp.holdout(np.arange(len(y)), y, 0.2, seed=0)
    other = sp.holdout(np.arange(len(y)), y, 0.2, seed=1)
    assert np.array_equal(again[1], held) and not np.array_equal(other[1], held)


def test_zero_fraction_and_too_big_fraction():
    y = np.array([0, 1] * 5)
    kept, held = sp.holdout(np.arange(10), y, 0.0, 0)
    assert len(kept) == 10 and len(held) == 0
    with pytest.raises(ValueError, match="leaves none"):
        sp.holdout(np.arange(2), y[:2], 0.99, 0)


def test_tiny_class_falls_back_to_unstratified_and_says_so():
    y = np.array([0] * 20 + [1])  # one image of class 1 cannot be stratified
    with pytest.warns(sp.SplitWarning, match="not stratified .a class has only 1 image"):
        kept, held = sp.holdout(np.arange(21), y, 0.2, 0)
    assert len(held) == 4 and len(kept) == 17
    with pytest.warns(sp.SplitWarning, match="1 held-out image.s. cannot cover 2 classes"):
        sp.holdout(np.arange(10), np.array([0, 1] * 5), 0.1, 0)


def test_three_way_and_ratios():
    y = np.repeat([0, 1], [200, 200])
    tr, va, te = sp.three_way(y, 0.1, 0.15, seed=3)
    assert (len(tr), len(va), len(te)) == (300, 40, 60)
    assert set(tr) | set(va) | set(te) == set(range(400)) and not (set(tr) & set(va) or set(va) & set(te))
    assert np.bincount(y[va]).tolist() == [20, 20]
    tr, va, te = sp.by_ratios(y, (0.5, 0.25, 0.25), seed=0)
    assert (len(tr), len(va), len(te)) == (200, 100, 100)
    tr, va, te = sp.by_ratios(y, (8, 2, 0), seed=0)
    assert (len(tr), len(va), len(te)) == (320, 80, 0)


def test_limit_per_class_is_deterministic_and_per_class():
    y = np.repeat([0, 1, 2], [50, 5, 30])
    idx = np.arange(len(y))
    a = sp.limit_per_class(idx, y, 10, seed=0)
    assert np.bincount(y[a]).tolist() == [10, 5, 10]
    assert np.array_equal(a, sp.limit_per_class(idx, y, 10, seed=0))
    assert not np.array_equal(a, sp.limit_per_class(idx, y, 10, seed=1))
    assert np.array_equal(sp.limit_per_class(idx, y, None, 0), idx)
