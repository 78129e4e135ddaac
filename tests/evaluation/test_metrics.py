import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from visionlab.evaluation.metrics import choose_threshold, compute, expected_calibration_error, positive_index


def test_binary_metrics_match_definitions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p1 = np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(0, 0.25, 400), 0.01, 0.99)
    probs = np.stack([1 - p1, p1], 1)
    m = compute(y, probs, ["WithMask", "WithoutMask"], positive_class="WithoutMask", threshold=0.5)
    pred = (p1 >= 0.5).astype(int)
    tp = ((pred == 1) & (y == 1)).sum()
    assert m["accuracy"] == pytest.approx((pred == y).mean())
    assert m["precision"] == pytest.approx(tp / (pred == 1).sum())
    assert m["recall"] == pytest.approx(tp / (y == 1).sum())
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p1))
    assert np.array(m["confusion_matrix"]).sum() == 400
    assert m["at_threshold"]["accuracy"] == pytest.approx(m["accuracy"])


def test_multiclass_auc_and_perfect_predictions():
    y = np.repeat(np.arange(3), 10)
    probs = np.eye(3)[y] * 0.9 + 0.1 / 3
    m = compute(y, probs, ["a", "b", "c"])
    assert m["accuracy"] == 1.0 and m["roc_auc"] == 1.0 and m["f1"] == 1.0


def test_ece_zero_for_calibrated_and_large_for_overconfident():
    y = np.array([0, 1] * 50)
    half = np.full((100, 2), 0.5)
    half[:, 0] += 1e-6
    assert expected_calibration_error(y, half)[0] == pytest.approx(0.0, abs=1e-3)
    wrong = np.eye(2)[1 - y] * 0.98 + 0.01
    assert expected_calibration_error(y, wrong)[0] > 0.9


def test_ece_is_the_binned_gap_of_the_reliability_table():
    # torchmetrics' scalar agrees with the table drawn in the reliability diagram: sum over bins of
    # share * |confidence - accuracy|
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 4)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 4, 500)
    ece, t = expected_calibration_error(y, probs)
    by_hand = sum(n / 500 * abs(c - a) for c, a, n in zip(t["confidence"], t["accuracy"], t["count"]))
    assert sum(t["count"]) == 500
    assert ece == pytest.approx(by_hand, abs=1e-6) and 0.2 < ece < 0.9


def test_threshold_and_positive_class():
    assert positive_index(["WithMask", "WithoutMask"], None) == 0
    assert positive_index(["cat", "dog"], None) == 1
    y = np.array([0, 0, 1, 1])
    assert 0.3 < choose_threshold(y, np.array([0.1, 0.3, 0.4, 0.9]), 1) <= 0.4


def test_flip_tta_averages_each_image_with_its_mirror_image():
    import numpy as np
    import torch

    from visionlab.evaluation.metrics import predict_proba

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))  # not mirror-symmetric
    x = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)

    class Float(torch.nn.Module):  # the run's models take raw uint8 pixels
        def forward(self, t):
            return model(t.float() / 255)

    m = Float()
    plain, mirrored = predict_proba(m, x), predict_proba(m, x.flip(-1))
    both = predict_proba(m, x, tta=True)
    assert np.allclose(both, (plain + mirrored) / 2, atol=1e-6)
    assert not np.allclose(both, plain, atol=1e-3)  # the mirror image really changed something
    assert np.allclose(both.sum(1), 1, atol=1e-6)
