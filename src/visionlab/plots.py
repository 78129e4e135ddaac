"""The run's figures, with matplotlib (Agg). Every function writes one PNG and returns its path."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io import write_via  # noqa: E402

DPI = 110


def _save(fig, path: Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    try:
        write_via(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    finally:
        plt.close(fig)
    return path


def learning_curves(history: list[dict], path: Path, title: str = "") -> Path:
    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in ((axes[0], "loss", "loss (cross-entropy)"), (axes[1], "acc", "accuracy")):
        ax.plot(ep, [h[f"train_{key}"] for h in history], "o-", ms=3, label="train")
        val = [h[f"val_{key}"] for h in history]
        if not all(np.isnan(v) for v in val):
            ax.plot(ep, val, "s-", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or "Learning curves")
    return _save(fig, path)


def confusion(cm: Sequence[Sequence[int]], classes: list[str], path: Path, normalize: bool = False,
              title: Optional[str] = None, ax=None) -> Path | None:
    cm = np.asarray(cm, dtype=float)
    shown = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    own = ax is None
    if own:
        size = max(3.8, 0.55 * len(classes) + 2.2)
        fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(shown.max(), 1))
    ax.set_xticks(range(len(classes)), classes, rotation=45 if len(classes) > 3 else 0, ha="right" if len(classes) > 3 else "center")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("Confusion matrix (row-normalised)" if normalize else "Confusion matrix (counts)"))
    thresh = shown.max() / 2 if shown.size else 0
    fs = 10 if len(classes) <= 5 else 7
    for i in range(len(classes)):
        for j in range(len(classes)):
            txt = f"{shown[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
            ax.text(j, i, txt, ha="center", va="center", fontsize=fs, color="white" if shown[i, j] > thresh else "black")
    if own:
        fig.colorbar(im, ax=ax, fraction=0.046)
        return _save(fig, path)
    return None


def roc(curves: dict[str, tuple[list, list, float | None]], path: Path, title: str = "ROC curve") -> Path:
    """``curves``: label -> (fpr, tpr, auc)."""
    fig, ax = plt.subplots(figsize=(5.2, 4.8))
    for label, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, lw=1.8, label=f"{label} (AUC {auc:.3f})" if auc is not None else label)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def metric_bars(labels: Sequence[str], scores: Sequence[Sequence[float]], metrics: Sequence[str], path: Path,
                title: str = "Test metrics by run", ylabel: str = "score on the test split") -> Path:
    """Grouped bars: one group per label, one bar per metric; ``scores[i][j]`` is metric ``j`` of label ``i``.
    The y axis starts 0.1 below the lowest score of the rows without a NaN."""
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(labels) + 3), 4.2))
    width = 0.8 / len(metrics)
    xs = np.arange(len(labels))
    lo = min(min(s) for s in scores if not any(np.isnan(s)))
    for j, name in enumerate(metrics):
        bars = ax.bar(xs + (j - (len(metrics) - 1) / 2) * width, [s[j] for s in scores], width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=6, rotation=90, padding=2)
    ax.set_xticks(xs, list(labels), rotation=20, ha="right")
    ax.set_ylim(max(0.0, lo - 0.1), 1.04)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(ncol=len(metrics), fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.08))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def confusion_grid(panels: Sequence[tuple[Sequence[Sequence[int]], list[str], str]], path: Path,
                   cols: int = 3) -> Path:
    """Row-normalised confusion matrices side by side, ``cols`` to a row; ``panels``: (matrix, classes, title)."""
    n = len(panels)
    cols = min(cols, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.9 * rows), squeeze=False)
    for ax, (cm, classes, title) in zip(axes.flat, panels):
        confusion(cm, classes, None, normalize=True, title=title, ax=ax)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return _save(fig, path)


def accuracy_vs_speed(points: Sequence[tuple[str, float, float]], path: Path,
                      title: str = "Accuracy against CPU inference cost") -> Path:
    """One labelled dot per (label, ms per image, accuracy), the time on a log axis."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for label, ms, acc in points:
        ax.scatter(ms, acc, s=40)
        ax.annotate(label, (ms, acc), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("ms per image on CPU (log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def precision_recall(rec: list, prec: list, ap: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.2, 4.8))
    ax.plot(rec, prec, lw=1.8, label=f"AP {ap:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall curve")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def reliability(table: dict, ece: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.2, 4.8))
    conf, acc, cnt = table["confidence"], table["accuracy"], table["count"]
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect calibration")
    ax.bar(conf, acc, width=0.05, alpha=0.7, edgecolor="k", label="accuracy per confidence bin")
    for c, a, n in zip(conf, acc, cnt):
        ax.text(c, a + 0.01, str(n), ha="center", fontsize=7)
    ax.set_xlabel("mean confidence in bin")
    ax.set_ylabel("accuracy in bin")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.08)
    ax.set_title(f"Reliability diagram (ECE {ece:.3f}; numbers = images)")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def image_grid(images: np.ndarray, captions: list[str], path: Path, title: str, cols: int = 6,
               overlays: Optional[np.ndarray] = None) -> Path:
    """uint8 images N x 3 x H x W with a caption each; ``overlays`` (N x H x W in 0..1) drawn as a heat map."""
    n = len(images)
    cols = max(1, min(cols, n))
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.8 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(np.transpose(images[i], (1, 2, 0)))
            if overlays is not None:
                ax.imshow(overlays[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.set_title(captions[i], fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)
