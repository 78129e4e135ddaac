"""tools/ensemble_folds.py: the averaging classifier it scores fold models with, on the shipped classifier."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_tool  # tests/conftest.py (rootdir conftest, on sys.path)


@pytest.fixture(scope="module")
def tool():
    return load_tool("ensemble_folds")


def test_the_mean_of_a_model_and_its_flipped_twin_is_their_average(tool):
    """Two real classifiers (the bundled ONNX model, and the same on mirrored crops): the ensemble's probabilities
    are the mean of theirs, still sum to 1, and the ensemble says the members' classes and size."""
    from visionlab.inference.load import load_classifier

    one = load_classifier(None, "onnx", 1)

    class Mirrored:  # the same network seeing each crop mirrored: a second, different member
        classes, image_size, profile, backend, source = one.classes, one.image_size, None, "onnx", "mirrored"

        def predict_proba(self, batch):
            return one.predict_proba(np.ascontiguousarray(batch[..., ::-1]))

    crops = np.random.default_rng(0).integers(0, 256, (5, 3, one.image_size, one.image_size), dtype=np.uint8)
    ens = tool.MeanClassifier([one, Mirrored()])
    p = ens.predict_proba(crops)
    np.testing.assert_allclose(p, (one.predict_proba(crops) + Mirrored().predict_proba(crops)) / 2, rtol=1e-6)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
    assert not np.allclose(p, one.predict_proba(crops))  # the members differ, so the mean is neither
    assert (ens.classes, ens.image_size, ens.profile) == (one.classes, one.image_size, one.profile)


def test_members_of_other_classes_or_sizes_are_one_line(tool):
    from visionlab.inference.load import load_classifier

    one = load_classifier(None, "onnx", 1)

    class Other:
        classes, image_size, profile, backend, source = ["a", "b"], one.image_size, None, "onnx", "other.onnx"

    with pytest.raises(SystemExit, match="other.onnx has classes"):
        tool.MeanClassifier([one, Other()])
