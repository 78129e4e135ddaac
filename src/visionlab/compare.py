"""One report over several runs: metric table, overlaid ROC curves, metric bars, a grid of confusion matrices."""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.metrics import roc_curve

from .errors import ModelError
from . import plots
from .evaluation.metrics import positive_index
from .evaluation.report import figures, page, para, table
from .io import atomic_write_text, write_csv, write_json

# the scores drawn as bars, as (column header, RunRow field)
SCORES = (("accuracy", "accuracy"), ("precision", "precision"), ("recall", "recall"), ("F1", "f1"),
          ("ROC-AUC", "roc_auc"))
# comparison.csv / the summary table, in order
COLUMNS = (("run", "label"), *SCORES, ("parameters", "parameters"), ("ms/image (CPU)", "ms_per_image"),
           ("setup s", "setup_seconds"), ("train s", "train_seconds"), ("eval s", "evaluation_seconds"),
           ("total s", "total_seconds"))
TIMES = ("ms_per_image", "setup_seconds", "train_seconds", "evaluation_seconds", "total_seconds")


@dataclass
class RunRow:
    """One run's line of the summary table (test split)."""
    label: str
    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float
    parameters: int
    ms_per_image: float
    train_seconds: float
    setup_seconds: float = math.nan
    evaluation_seconds: float = math.nan
    total_seconds: float = math.nan

    def cells(self) -> list:
        """The row's values; times rounded to 0.1 (s or ms): a timing's fourth decimal is noise."""
        return [round(v, 1) if name in TIMES and isinstance(v, float) and math.isfinite(v) else v
                for v, name in ((getattr(self, name), name) for _, name in COLUMNS)]

    def shown(self) -> list:
        """``cells()`` for the page: times as text with one decimal (the page's tables print floats to 4)."""
        return [f"{v:.1f}" if name in TIMES and isinstance(v, float) and math.isfinite(v) else v
                for v, (_, name) in zip(self.cells(), COLUMNS)]

    def scores(self) -> list[float]:
        return [getattr(self, name) for _, name in SCORES]


@dataclass
class DetectionRow:
    """One run's line of the per-class table: test-crop recall per face class and, where ``visionlab detect
    --truth`` scored the run on annotated photos (RUN/detection.json), the box-level mAP."""
    label: str
    recall: dict[str, float] = field(default_factory=dict)
    map50: float = math.nan
    map: float = math.nan
    subset: str = ""

    @staticmethod
    def header(classes: Sequence[str]) -> list[str]:
        return ["run", *[f"recall {c}" for c in classes], "mAP@0.5 (photos)", "mAP@[.5:.95]", "photos"]

    def cells(self, classes: Sequence[str]) -> list:
        return [self.label, *[self.recall.get(c, math.nan) for c in classes], self.map50, self.map, self.subset]


def _load(run: Path) -> dict:
    from .runs import RunFolder

    folder = RunFolder(run)
    if not folder.metrics.is_file():
        raise ModelError(f"{run} has no {folder.METRICS}: not a finished visionlab run")
    m = json.loads(folder.metrics.read_text())
    if "test" not in m:
        raise ModelError(f"{run} has no test evaluation (status {m.get('status')}); evaluate it first")
    info = json.loads(folder.info.read_text())
    import yaml
    cfg = yaml.safe_load(folder.config.read_text())  # a dict: runs of older versions compare too
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


def compare(runs: Sequence[str | Path], out: str | Path = "comparison") -> Path:
    """Write ``out/report.html`` (+ PNGs, comparison.csv/json) comparing ``runs`` on their test splits."""
    from .outdir import claim_out

    items = [_load(Path(r)) for r in runs]
    out = claim_out(out, "compare")  # an existing folder's files are never replaced: a new sub-folder
    pdir = out / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    rows = _run_rows(items)
    header = [h for h, _ in COLUMNS]
    order = np.argsort([-r.accuracy for r in rows])
    rows = [rows[i] for i in order]
    items = [items[i] for i in order]

    curves = _roc_curves(items)
    roc_png = plots.roc(curves, pdir / "roc_overlay.png", "ROC curves, test split") if curves else None
    bars_png = plots.metric_bars([r.label for r in rows], [r.scores() for r in rows], [h for h, _ in SCORES],
                                 pdir / "metrics_bars.png", "Test metrics by run (sorted by accuracy)")
    cm_png = plots.confusion_grid([(it["test"]["confusion_matrix"], it["classes"],
                                    f"{it['label']}\nacc {it['test']['accuracy']:.3f}") for it in items],
                                  pdir / "confusion_grid.png")
    speed_png = plots.accuracy_vs_speed([(r.label, r.ms_per_image, r.accuracy) for r in rows],
                                        pdir / "accuracy_vs_speed.png")

    face_classes, det_rows = _detection_rows(items)
    det_header = DetectionRow.header(face_classes)
    has_det = any(not np.isnan(d.map50) for d in det_rows)

    best = rows[0]
    sections = [
        ("Summary", para(f"{len(items)} runs compared on their test splits. Best accuracy: **{best.label}** "
                         f"({best.accuracy:.4f}). CPU time per image: median of 5 calls at batch 16, all runs measured "
                         f"now, side by side. Precision, recall and F1 are the positive class's in a two-class run "
                         f"(its `--positive-class`), macro averages otherwise. Times are each run's wall time by "
                         f"phase (setup: data and frozen features; eval: evaluation and report); total is their sum.") +
         table(header, [r.shown() for r in rows])),
        ("Metrics", figures([bars_png])),
        ("ROC curves", figures([roc_png], 520)),
        ("Confusion matrices (row-normalised)", figures([cm_png])),
        ("Accuracy and speed", figures([speed_png], 560)),
    ]
    if has_det or len(face_classes) > 2:
        sections.insert(1, ("Per class, and on annotated photos",
                            para("Recall per class on each run's test crops; mAP from `visionlab detect --truth` "
                                 "on annotated photos the run never trained on.") +
                            table(det_header, [d.cells(face_classes) for d in det_rows])))
    atomic_write_text(out / "report.html", page("visionlab comparison", sections,
                                                f"generated {time.strftime('%Y-%m-%d %H:%M')}"))
    write_json(out / "comparison.json", [{**dict(zip(header, r.cells())), **dict(zip(det_header, d.cells(face_classes)))}
                                         for r, d in zip(rows, det_rows)])
    write_csv(out / "comparison.csv", [dict(zip(header, r.cells())) for r in rows])
    return out / "report.html"


def _run_rows(items: list[dict]) -> list[RunRow]:
    """The summary table's rows, in the order of ``items``."""
    from .evaluation import cpu_ms_per_image
    from .runs import load_run

    rows = []
    for it in items:
        t = it["test"]
        # CPU time per image is measured again here, every run in this one process, so the column compares
        # like with like (each run's own figure was taken under whatever load it trained under)
        loaded = load_run(it["run"])
        ms = cpu_ms_per_image(loaded.model, loaded.image_size, repeats=5)
        m = it["metrics"]
        rows.append(RunRow(it["label"], t["accuracy"], t["precision"], t["recall"], t["f1"],
                           t.get("roc_auc", float("nan")), t["parameters"], ms,
                           *[float(m.get(k) if m.get(k) is not None else math.nan)
                             for k in ("train_seconds", "setup_seconds", "evaluation_seconds", "total_seconds")]))
    return rows


def _roc_curves(items: list[dict]) -> dict:
    """Label -> (fpr, tpr, AUC) from each run's per-image predictions (binary: positive class; N-class:
    micro); runs without predictions.csv are left out."""
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
    return curves


def _detection_rows(items: list[dict]) -> tuple[list[str], list[DetectionRow]]:
    """Face-mask runs: recall per class on the test crops and, where `visionlab detect --truth` scored the run
    on annotated photos, the box-level mAP (RUN/detection.json). The face classes and one row per item."""
    face_classes = sorted({c for it in items for c in it["classes"] if c != "Background"})
    det_rows = []
    for it in items:
        pc = it["test"].get("per_class", {})
        det = _detection(it["run"])
        recall = {c: pc.get(c, {}).get("recall", math.nan) for c in face_classes}
        det_rows.append(DetectionRow(it["label"], recall, det.get("map50", math.nan), det.get("map", math.nan),
                                     det.get("subset", "")))
    return face_classes, det_rows


from .verbs import make_callable  # noqa: E402

make_callable(__name__, compare)  # visionlab.compare stays the verb even once this module is imported (verbs.py)
