"""Seeded, stratified splits on label arrays (indices only: nothing is decoded before we know what is needed).

Stratification keeps each split's class balance equal to the whole's; where a class is too small to stratify
we fall back to a plain seeded shuffle and warn with ``SplitWarning``.
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np


class SplitWarning(UserWarning):
    """A split could not be stratified (a class too small) and was drawn unstratified."""


def holdout(idx: np.ndarray, labels: np.ndarray, fraction: float, seed: int,
            what: str = "held-out split") -> tuple[np.ndarray, np.ndarray]:
    """Split positions ``idx`` into (kept, held) with ``fraction`` of them held out, stratified by ``labels[idx]``.

    Both outputs are sorted, so the order of images inside a split never depends on the seed.
    """
    idx = np.asarray(idx, dtype=np.int64)
    n_held = int(round(fraction * len(idx)))
    if fraction <= 0 or n_held == 0:
        return np.sort(idx), idx[:0]
    if n_held >= len(idx):
        raise ValueError(f"{what}: holding out {fraction:.0%} of {len(idx)} images leaves none to train on")
    from sklearn.model_selection import train_test_split  # imported here: sklearn costs ~1 s at startup

    y = np.asarray(labels)[idx]
    try:
        kept, held = train_test_split(idx, test_size=n_held, stratify=y, random_state=seed)
    except ValueError:  # a class with one image, or fewer held-out slots than classes
        counts = np.bincount(y)
        counts = counts[counts > 0]
        why = (f"a class has only {counts.min()} image" if counts.min() < 2 else
               f"{n_held} held-out image(s) cannot cover {len(counts)} classes" if n_held < len(counts) else
               f"{len(idx) - n_held} remaining image(s) cannot cover {len(counts)} classes")
        warnings.warn(f"{what} is not stratified ({why}): drawn by a seeded shuffle instead; add images or "
                      f"raise the split share", SplitWarning, stacklevel=3)
        kept, held = train_test_split(idx, test_size=n_held, random_state=seed)
    return np.sort(kept), np.sort(held)


def three_way(labels: np.ndarray, val: float, test: float, seed: int,
              idx: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) positions with ``val`` and ``test`` as shares of all of ``idx`` (default: every label)."""
    idx = np.arange(len(labels)) if idx is None else np.asarray(idx, dtype=np.int64)
    rest, te = holdout(idx, labels, test, seed, "test split")
    # val is a share of the whole, so scale it to the remainder
    tr, va = holdout(rest, labels, val / (1.0 - test) if test < 1 else 0.0, seed, "validation split")
    return tr, va, te


def by_ratios(labels: np.ndarray, ratios: tuple[float, float, float], seed: int,
              idx: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pool ``idx`` and re-split it train:val:test by ``ratios`` (normalised), stratified and seeded."""
    r = np.asarray(ratios, dtype=float)
    r = r / r.sum()
    return three_way(labels, float(r[1]), float(r[2]), seed, idx)


def limit_per_class(idx: np.ndarray, labels: np.ndarray, n: Optional[int], seed: int) -> np.ndarray:
    """At most ``n`` positions of each class from ``idx``, the same ones for the same seed (sorted)."""
    idx = np.asarray(idx, dtype=np.int64)
    if n is None:
        return idx
    rng = np.random.default_rng([seed, 7])  # its own stream: the choice must not shift when other draws change
    y = np.asarray(labels)[idx]
    keep = [rng.permutation(idx[y == c])[:n] for c in np.unique(y)]
    return np.sort(np.concatenate(keep)) if keep else idx
