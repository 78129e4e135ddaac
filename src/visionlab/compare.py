"""One report over several runs: metric table, overlaid ROC curves, metric bars, a grid of confusion matrices."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from .errors import ModelError  # noqa: E402
from .evaluation import plots  # noqa: E402
from .evaluation.metrics import positive_index  # noqa: E402
from .evaluation.report import figures, page, table  # noqa: E402
from .training.checkpoint import atomic_write_text, write_json  # noqa: E402

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def _load(run: Path) -> dict:
    m_path = run / "metrics.json"
    if not m_path.is_file():
        raise ModelError(f"{run} has no metrics.json: not a finished visionlab run")
    m = json.loads(m_path.read_text())
    if "test" not in m:
        raise ModelError(f"{run} has no test evaluation (status {m.get('status')}); evaluate it first")
    info = json.loads((run / "model.json").read_text())
    import yaml
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    label = cfg.get("name") or run.name
    if cfg.get("model") not in label:
        label = f"{cfg.get('model')} ({run.name})"
    return {"run": run, "label": label, "test": m["test"], "classes": info["classes"], "cfg": cfg, "metrics": m}


def _detection(run: Path) -> dict:
    p = run / "detection.json"
    try:
        return json.loads(p.read_text()) if p.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def compare(runs: Sequence[str | Path], out: str | Path) -> Path:
    """Write ``out/report.html`` (+ PNGs, comparison.csv/json) comparing ``runs`` on their test splits."""
    items = [_load(Path(r)) for r in runs]
    out = Path(out)
    pdir = out / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    from .evaluation import cpu_ms_per_image
    from .runs import load_run

    rows = []
    for it in items:
        t = it["test"]
        # CPU time per image is measured again here, every run in this one process, so the column compares
        # like with like (each run's own figure was taken under whatever load it trained under)
        loaded = load_run(it["run"])
        ms = cpu_ms_per_image(loaded.model, loaded.image_size, repeats=5)
        rows.append([it["label"], t["accuracy"], t["precision"], t["recall"], t["f1"], t.get("roc_auc", float("nan")),
                     t["parameters"], ms, it["metrics"].get("train_seconds", float("nan"))])
    header = ["run", "accuracy", "precision", "recall", "F1", "ROC-AUC", "parameters", "ms/image (CPU)", "train s"]
    order = np.argsort([-r[1] for r in rows])
    rows = [rows[i] for i in order]
    items = [items[i] for i in order]

    # overlaid ROC curves from each run's per-image predictions (binary: positive class; N-class: micro)
    curves = {}
    for it in items:
        pred_path = it["run"] / "predictions.csv"
        if not pred_path.is_file():
            continue
        with open(pred_path) as f:
            recs = list(csv.DictReader(f))
        classes = it["classes"]
        y = np.array([classes.index(r["true"]) for r in recs])
        probs = np.array([[float(r[f"p_{c}"]) for c in classes] for r in recs])
        if len(classes) == 2:
            pos = positive_index(classes, it["cfg"].get("positive_class"))
            fpr, tpr, _ = roc_curve(y == pos, probs[:, pos])
        else:
            fpr, tpr, _ = roc_curve(np.eye(len(classes))[y].ravel(), probs.ravel())
        curves[it["label"]] = (fpr, tpr, it["test"].get("roc_auc"))
    roc_png = plots.roc(curves, pdir / "roc_overlay.png", "ROC curves, test split") if curves else None

    # metric bars
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(items) + 3), 4.2))
    width = 0.8 / len(METRICS)
    xs = np.arange(len(items))
    lo = min(min(r[1:6]) for r in rows if not any(np.isnan(r[1:6])))
    for j, name in enumerate(["accuracy", "precision", "recall", "F1", "ROC-AUC"]):
        vals = [r[1 + j] for r in rows]
        bars = ax.bar(xs + (j - 2) * width, vals, width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=6, rotation=90, padding=2)
    ax.set_xticks(xs, [it["label"] for it in items], rotation=20, ha="right")
    ax.set_ylim(max(0.0, lo - 0.1), 1.04)
    ax.set_ylabel("score on the test split")
    ax.set_title("Test metrics by run (sorted by accuracy)")
    ax.legend(ncol=5, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.08))
    ax.grid(axis="y", alpha=0.3)
    bars_png = plots._save(fig, pdir / "metrics_bars.png")

    # grid of confusion matrices
    n = len(items)
    cols = min(3, n)
    rws = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rws, cols, figsize=(4.2 * cols, 3.9 * rws), squeeze=False)
    for ax, it in zip(axes.flat, items):
        plots.confusion(it["test"]["confusion_matrix"], it["classes"], None, normalize=True,
                        title=f"{it['label']}\nacc {it['test']['accuracy']:.3f}", ax=ax)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    cm_png = plots._save(fig, pdir / "confusion_grid.png")

    # speed vs accuracy
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for r in rows:
        ax.scatter(r[7], r[1], s=40)
        ax.annotate(r[0], (r[7], r[1]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("ms per image on CPU (log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy against CPU inference cost")
    ax.grid(alpha=0.3)
    speed_png = plots._save(fig, pdir / "accuracy_vs_speed.png")

    # face-mask runs: accuracy per class on the test crops and, where `visionlab detect --truth` scored the run on
    # annotated photos, the box-level mAP (RUN/detection.json)
    face_classes = sorted({c for it in items for c in it["classes"] if c != "Background"})
    det_header = ["run", *[f"recall {c}" for c in face_classes], "mAP@0.5 (photos)", "mAP@[.5:.95]", "photos"]
    det_rows = []
    for it in items:
        pc = it["test"].get("per_class", {})
        det = _detection(it["run"])
        det_rows.append([it["label"], *[pc.get(c, {}).get("recall", float("nan")) for c in face_classes],
                         det.get("map50", float("nan")), det.get("map", float("nan")), det.get("subset", "")])
    has_det = any(not np.isnan(r[-3]) for r in det_rows)

    best = rows[0]
    sections = [
        ("Summary", f"<p>{len(items)} runs compared on their test splits. Best accuracy: <b>{best[0]}</b> "
                    f"({best[1]:.4f}). CPU time per image: median of 5 calls at batch 16, all runs measured now, side by side.</p>" +
         table(header, rows)),
        ("Metrics", figures([bars_png])),
        ("ROC curves", figures([roc_png], 520)),
        ("Confusion matrices (row-normalised)", figures([cm_png])),
        ("Accuracy and speed", figures([speed_png], 560)),
    ]
    if has_det or len(face_classes) > 2:
        sections.insert(1, ("Per class, and on annotated photos",
                            "<p>Recall per class on each run's test crops; mAP from <code>visionlab detect --truth"
                            "</code> on annotated photos the run never trained on.</p>" + table(det_header, det_rows)))
    atomic_write_text(out / "report.html", page("visionlab comparison", sections,
                                                f"generated {time.strftime('%Y-%m-%d %H:%M')}"))
    write_json(out / "comparison.json", [{**dict(zip(header, r)), **dict(zip(det_header, d))}
                                         for r, d in zip(rows, det_rows)])
    with open(out / "comparison.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return out / "report.html"
