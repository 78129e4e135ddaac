"""Classification metrics from predicted probabilities, by scikit-learn. N-class throughout; binary extras
(ROC/PR curves, a decision threshold chosen on validation) use the configured positive class."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from sklearn import metrics as skm


@torch.no_grad()
def predict_proba(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 256,
                  device: torch.device | str = "cpu", tta: bool = False) -> np.ndarray:
    """Softmax probabilities of ``model`` for uint8 images ``x`` (N x 3 x S x S); ``tta``: the mean of each
    image's and its mirror image's (flip test-time augmentation, the flip training's --augment uses)."""
    model.eval()
    model.to(device)

    def proba(xb: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(model(xb).float(), 1)
        return (p + torch.softmax(model(xb.flip(-1)).float(), 1)) / 2 if tta else p

    out = [proba(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def positive_index(classes: list[str], positive_class: Optional[str]) -> int:
    """Index of the positive class for binary metrics: the configured one, else a 'with'/'pos'/'1' class, else 1."""
    if positive_class is not None:
        if positive_class not in classes:
            from ..errors import ConfigError
            raise ConfigError(f"positive class {positive_class!r} is not one of {classes}")
        return classes.index(positive_class)
    for i, c in enumerate(classes):
        if c.lower().startswith(("withmask", "with_mask", "pos", "1", "yes", "true")):
            return i
    return 1


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, bins: int = 15) -> tuple[float, dict]:
    conf = probs.max(1)
    correct = (probs.argmax(1) == y).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    ece, table = 0.0, {"confidence": [], "accuracy": [], "count": []}
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(conf[m].mean() - correct[m].mean())
            table["confidence"].append(float(conf[m].mean()))
            table["accuracy"].append(float(correct[m].mean()))
            table["count"].append(int(m.sum()))
    return float(ece), table


def choose_threshold(y: np.ndarray, p_pos: np.ndarray, pos: int) -> float:
    """The probability threshold for the positive class that maximises F1 on (validation) data."""
    prec, rec, thr = skm.precision_recall_curve(y == pos, p_pos)
    f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-12)
    return float(thr[int(np.argmax(f1[:-1]))]) if len(thr) else 0.5


def compute(y: np.ndarray, probs: np.ndarray, classes: list[str], positive_class: Optional[str] = None,
            threshold: Optional[float] = None) -> dict:
    """Every metric of one split. Returns plain JSON-able values."""
    y = np.asarray(y)
    n_cls = len(classes)
    pred = probs.argmax(1)
    labels = list(range(n_cls))
    out: dict = {
        "n": int(len(y)),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "loss": float(skm.log_loss(y, np.clip(probs, 1e-7, 1), labels=labels)),
        "confusion_matrix": skm.confusion_matrix(y, pred, labels=labels).tolist(),
        "per_class": {k: v for k, v in skm.classification_report(
            y, pred, labels=labels, target_names=classes, output_dict=True, zero_division=0).items()},
        "precision_macro": float(skm.precision_score(y, pred, average="macro", zero_division=0)),
        "recall_macro": float(skm.recall_score(y, pred, average="macro", zero_division=0)),
        "f1_macro": float(skm.f1_score(y, pred, average="macro", zero_division=0)),
    }
    out["ece"], out["reliability"] = expected_calibration_error(y, probs)
    present = np.unique(y)
    if n_cls == 2:
        pos = positive_index(classes, positive_class)
        p_pos = probs[:, pos]
        out["positive_class"] = classes[pos]
        out["precision"] = float(skm.precision_score(y == pos, pred == pos, zero_division=0))
        out["recall"] = float(skm.recall_score(y == pos, pred == pos, zero_division=0))
        out["f1"] = float(skm.f1_score(y == pos, pred == pos, zero_division=0))
        if len(present) == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y == pos, p_pos))
            fpr, tpr, _ = skm.roc_curve(y == pos, p_pos)
            prec, rec, _ = skm.precision_recall_curve(y == pos, p_pos)
            out["curves"] = {"roc": [fpr.tolist(), tpr.tolist()], "pr": [rec.tolist(), prec.tolist()]}
            out["average_precision"] = float(skm.average_precision_score(y == pos, p_pos))
        if threshold is not None:
            tp = p_pos >= threshold
            out["threshold"] = float(threshold)
            out["at_threshold"] = {
                "accuracy": float(((tp & (y == pos)) | (~tp & (y != pos))).mean()),
                "precision": float(skm.precision_score(y == pos, tp, zero_division=0)),
                "recall": float(skm.recall_score(y == pos, tp, zero_division=0)),
                "f1": float(skm.f1_score(y == pos, tp, zero_division=0)),
            }
    else:
        out["precision"], out["recall"], out["f1"] = out["precision_macro"], out["recall_macro"], out["f1_macro"]
        if len(present) == n_cls:
            out["roc_auc"] = float(skm.roc_auc_score(y, probs, multi_class="ovr", labels=labels))
            curves = {}
            for c in labels:
                fpr, tpr, _ = skm.roc_curve(y == c, probs[:, c])
                curves[classes[c]] = [fpr[:: max(1, len(fpr) // 200)].tolist(), tpr[:: max(1, len(tpr) // 200)].tolist()]
            out["curves"] = {"roc_ovr": curves}
    return out
