"""The classifier that scores a face pool: same probabilities as the pipeline's classifier, plus its own
pooled features as the embedding."""
from __future__ import annotations

import numpy as np

from visionlab.active.facemodel import FaceModel, pixel_embedding
from visionlab.inference.load import load_classifier


def test_probs_match_the_classifier_and_embedding_is_its_features():
    fm = FaceModel(None)
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (7, 3, 64, 64), dtype=np.uint8)
    probs, emb = fm(crops)
    ref = load_classifier(None).predict_proba(crops)
    assert np.abs(probs - ref).max() < 1e-5
    assert emb.shape == (7, 1280) and fm.embedding_from is not None
    assert fm.pool_classes == ["MaskWornIncorrectly", "WithMask", "WithoutMask", "NotAFace"]
    pool = fm.pool_probs(probs)
    assert np.allclose(pool[:, -1], probs[:, fm.classes.index("Background")])
    assert np.allclose(pool.sum(1), 1, atol=1e-5)
    # larger crops are resized as the pipeline resizes them
    big = np.repeat(np.repeat(crops, 2, 2), 2, 3)
    assert np.abs(fm(big)[0] - probs).max() < 0.05


def test_pixel_embedding_shape():
    e = pixel_embedding(np.zeros((3, 3, 64, 64), np.uint8))
    assert e.shape == (3, 54) and np.all(e == 0)
