import numpy as np
import pytest

from visionlab.active.strategies import STRATEGIES, select


def _inputs(n=60, c=3, d=5, t=8, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    mc = probs[None] * rng.uniform(0.5, 1.5, (t, n, c))
    mc /= mc.sum(-1, keepdims=True)
    return probs, rng.normal(size=(n, d)), rng.normal(size=(7, d)), mc


@pytest.mark.parametrize("name", STRATEGIES.names())
@pytest.mark.parametrize("k", [1, 10, 60, 100])
def test_each_strategy_picks_k_distinct_valid_indices(name, k):
    probs, emb, lab, mc = _inputs()
    idx = select(name, probs, emb, k, np.random.default_rng(1), labelled_embeddings=lab, mc_probs=mc)
    assert len(idx) == min(k, 60) and len(set(idx.tolist())) == len(idx)
    assert idx.min() >= 0 and idx.max() < 60
    again = select(name, probs, emb, k, np.random.default_rng(1), labelled_embeddings=lab, mc_probs=mc)
    assert (idx == again).all()  # the rng makes it reproducible


def test_registry_knows_the_strategies():
    assert set(STRATEGIES.names()) >= {"random", "least_confidence", "margin", "entropy", "bald", "kcenter", "hybrid"}


def test_least_confidence_picks_the_images_closest_to_half():
    p1 = np.array([0.99, 0.52, 0.10, 0.47, 0.80, 0.01, 0.60, 0.95])
    probs = np.stack([1 - p1, p1], 1)
    idx = select("least_confidence", probs, None, 3, np.random.default_rng(0))
    assert set(idx.tolist()) == {1, 3, 6} and idx[0] == 1  # 0.52 first, then 0.47, then 0.60
    assert set(select("margin", probs, None, 3, np.random.default_rng(0)).tolist()) == {1, 3, 6}
    assert set(select("entropy", probs, None, 3, np.random.default_rng(0)).tolist()) == {1, 3, 6}


def test_margin_differs_from_least_confidence_on_three_classes():
    probs = np.array([[0.40, 0.30, 0.30],   # least confident (max 0.40), margin 0.10
                      [0.45, 0.44, 0.11]])  # more confident, but the two best nearly tie
    assert select("least_confidence", probs, None, 1, np.random.default_rng(0))[0] == 0
    assert select("margin", probs, None, 1, np.random.default_rng(0))[0] == 1


def test_bald_prefers_disagreement_over_agreed_uncertainty():
    # image 0: every dropout sample says 50/50 (aleatoric); image 1: samples disagree confidently (epistemic)
    mc = np.array([[[0.5, 0.5], [0.95, 0.05], [0.9, 0.1]],
                   [[0.5, 0.5], [0.05, 0.95], [0.9, 0.1]]])
    probs = mc.mean(0)
    assert select("bald", probs, None, 1, np.random.default_rng(0), mc_probs=mc)[0] == 1


def test_kcenter_covers_spread_points():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [100, 0], [0, 100], [100, 100], [50, 50]], float)
    emb = np.concatenate([c + rng.normal(0, 1, (20, 2)) for c in centres])
    cluster = np.repeat(np.arange(5), 20)
    idx = select("kcenter", None, emb, 5, np.random.default_rng(3))
    assert sorted(cluster[idx].tolist()) == [0, 1, 2, 3, 4]
    # with cluster 0 and 4 already labelled, the next three picks cover the other three
    idx = select("kcenter", None, emb, 3, np.random.default_rng(3), labelled_embeddings=centres[[0, 4]])
    assert sorted(cluster[idx].tolist()) == [1, 2, 3]


def test_hybrid_is_uncertain_and_diverse():
    rng = np.random.default_rng(0)
    # 40 uncertain images in two tight clusters, 60 confident ones far away
    emb = np.concatenate([rng.normal(0, 0.1, (20, 2)), rng.normal(10, 0.1, (20, 2)), rng.normal(50, 5, (60, 2))])
    p1 = np.concatenate([rng.uniform(0.45, 0.55, 40), rng.uniform(0.97, 1.0, 60)])
    probs = np.stack([1 - p1, p1], 1)
    idx = select("hybrid", probs, emb, 2, np.random.default_rng(0))
    assert (idx < 40).all() and (idx < 20).sum() == 1  # one from each uncertain cluster
