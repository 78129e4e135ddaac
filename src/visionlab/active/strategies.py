"""Query strategies: which unlabelled images a person should label next.

Every strategy is ``fn(probs, embeddings, k, rng, labelled_embeddings=None, mc_probs=None) -> indices``:
``probs`` N x C class probabilities of the N candidates, ``embeddings`` N x D their features,
``labelled_embeddings`` M x D those of the images already labelled, ``mc_probs`` T x N x C stochastic
(MC dropout) probability samples. It returns ``min(k, N)`` distinct indices into the candidates, the most
wanted first. Meta ``needs`` tells the caller what to compute: ``probs``, ``embeddings`` and/or ``mc``.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..errors import ConfigError
from ..registry import Registry

Strategy = Callable[..., np.ndarray]
STRATEGIES: Registry[Strategy] = Registry("query strategy")

EPS = 1e-12


def _top(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the k largest scores; ties broken at random (so equal scores do not favour file order)."""
    k = min(int(k), len(scores))
    perm = rng.permutation(len(scores))
    order = np.argsort(-scores[perm], kind="stable")
    return perm[order[:k]].astype(np.int64)


def entropy_of(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, EPS, 1.0))).sum(-1)


def least_confidence_scores(probs: np.ndarray) -> np.ndarray:
    # binary: 1 - max(p, 1-p), largest at p = 0.5 -- the dissertation's "closest to 0.5"
    return 1.0 - probs.max(1)


def margin_scores(probs: np.ndarray) -> np.ndarray:
    if probs.shape[1] < 2:
        return np.zeros(len(probs))
    part = np.sort(probs, axis=1)
    return -(part[:, -1] - part[:, -2])  # small margin between the two best classes = high score


def _need(x, what: str, name: str):
    if x is None:
        raise ConfigError(f"strategy {name!r} needs {what}")
    return np.asarray(x)


@STRATEGIES.register("random", needs=())
def random(probs, embeddings, k, rng, labelled_embeddings=None, mc_probs=None) -> np.ndarray:
    n = len(probs) if probs is not None else len(embeddings)
    return rng.choice(n, size=min(int(k), n), replace=False).astype(np.int64)


@STRATEGIES.register("least_confidence", needs=("probs",))
def least_confidence(probs, embeddings, k, rng, labelled_embeddings=None, mc_probs=None) -> np.ndarray:
    return _top(least_confidence_scores(_need(probs, "probs", "least_confidence")), k, rng)


@STRATEGIES.register("margin", needs=("probs",))
def margin(probs, embeddings, k, rng, labelled_embeddings=None, mc_probs=None) -> np.ndarray:
    return _top(margin_scores(_need(probs, "probs", "margin")), k, rng)


@STRATEGIES.register("entropy", needs=("probs",))
def entropy(probs, embeddings, k, rng, labelled_embeddings=None, mc_probs=None) -> np.ndarray:
    return _top(entropy_of(_need(probs, "probs", "entropy")), k, rng)


def bald_scores(mc_probs: np.ndarray) -> np.ndarray:
    """Mutual information between the label and the weights (Houlsby et al. 2011; Gal et al. 2017): entropy
    of the mean prediction minus the mean entropy of the T dropout samples."""
    return entropy_of(mc_probs.mean(0)) - entropy_of(mc_probs).mean(0)


@STRATEGIES.register("bald", needs=("mc",))
def bald(probs, embeddings, k, rng, labelled_embeddings=None, mc_probs=None) -> np.ndarray:
    mc = _need(mc_probs, "mc_probs (T MC-dropout samples)", "bald")
    return _top(bald_scores(mc), k, rng)


def kcenter_greedy(embeddings: np.ndarray, k: int, rng: np.random.Generator,
                   labelled_embeddings: Optional[np.ndarray] = None) -> np.ndarray:
    """Greedy k-center (Sener & Savarese 2018): repeatedly take the candidate farthest from everything
    labelled or already taken, so the picks cover the embedding space."""
    x = np.asarray(embeddings, dtype=np.float64)
    n = len(x)
    k = min(int(k), n)
    if k == 0:
        return np.zeros(0, np.int64)
    sq = (x * x).sum(1)
    if labelled_embeddings is not None and len(labelled_embeddings):
        lab = np.asarray(labelled_embeddings, dtype=np.float64)
        dist = np.full(n, np.inf)
        for i in range(0, len(lab), 512):  # chunked: M x N distances can be large
            b = lab[i:i + 512]
            d = sq[None, :] + (b * b).sum(1)[:, None] - 2 * b @ x.T
            dist = np.minimum(dist, d.min(0))
        chosen = []
    else:
        first = int(rng.integers(n))
        chosen = [first]
        dist = sq + sq[first] - 2 * x @ x[first]
    dist = np.maximum(dist, 0)
    for i in chosen:
        dist[i] = -1
    while len(chosen) < k:
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, np.maximum(sq + sq[i] - 2 * x @ x[i], 0))
        dist[chosen] = -1
    return np.asarray(chosen, np.int64)


@STRATEGIES.register("kcenter", needs=("embeddings",))
def kcenter(probs, embeddings, k, rng, labelled_embeddings=None, mc_probs=None) -> np.ndarray:
    return kcenter_greedy(_need(embeddings, "embeddings", "kcenter"), k, rng, labelled_embeddings)


HYBRID_POOL_FACTOR = 5


@STRATEGIES.register("hybrid", needs=("probs", "embeddings"), pool_factor=HYBRID_POOL_FACTOR)
def hybrid(probs, embeddings, k, rng, labelled_embeddings=None, mc_probs=None) -> np.ndarray:
    """Uncertainty-weighted diversity: the ``5k`` most uncertain candidates (margin), then k-center among
    them, so a batch is not k near-copies of the same confusing image."""
    p = _need(probs, "probs", "hybrid")
    e = _need(embeddings, "embeddings", "hybrid")
    top = _top(margin_scores(p), HYBRID_POOL_FACTOR * int(k), rng)
    return top[kcenter_greedy(e[top], k, rng, labelled_embeddings)]


def select(name: str, probs, embeddings, k: int, rng: np.random.Generator, labelled_embeddings=None,
           mc_probs=None) -> np.ndarray:
    """Run strategy ``name`` and check its answer: ``min(k, N)`` distinct valid indices."""
    fn = STRATEGIES.get(name)
    n = len(probs) if probs is not None else len(embeddings)
    idx = np.asarray(fn(probs, embeddings, k, rng, labelled_embeddings=labelled_embeddings, mc_probs=mc_probs),
                     dtype=np.int64)
    assert len(idx) == min(k, n) and len(set(idx.tolist())) == len(idx) and (idx >= 0).all() and (idx < n).all(), \
        f"strategy {name} returned invalid indices"
    return idx


# --- face pools ---------------------------------------------------------------------------------------------
# A face pool's probabilities have the classifier's face classes first and "not a face" last (facemodel.py).
FACE_THRESHOLD = 0.5  # the pipeline's default min_face_prob: a box with less face probability is dropped


def face_doubt_scores(probs: np.ndarray, threshold: float = FACE_THRESHOLD) -> np.ndarray:
    """Closeness of the face probability (1 - the last column) to the detector/Background threshold."""
    return -np.abs((1.0 - probs[:, -1]) - threshold)


@STRATEGIES.register("face_doubt", needs=("probs",), faces_only=True)
def face_doubt(probs, embeddings, k, rng, labelled_embeddings=None, mc_probs=None) -> np.ndarray:
    """Face pools: the boxes the classifier is least sure are faces at all (face probability nearest the
    threshold the pipeline drops boxes at)."""
    return _top(face_doubt_scores(_need(probs, "probs", "face_doubt")), k, rng)
