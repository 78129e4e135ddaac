"""Evaluation of a trained classifier on a split: metrics.json entries, plots/*.png and report.html."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch

from ..data.types import ImageData
from ..errors import DataError
from ..io import atomic_write_text
from .. import plots
from ..progress import Steps
from .gradcam import gradcam
from .metrics import choose_threshold, compute, positive_index, predict_proba
from .report import figures, note, page, para, pre, table
from .slices import ALL, crop_tags, plot_misses, slice_members, slice_metrics
from .slices import plot_slices as slice_plot
from .slices import table_html as slice_table

MASK_NOTE = (
    "In face-mask data such as this, many WithMask images are wide shots (streets, product photos) and many "
    "WithoutMask images are tight face crops, so a model can score well by learning framing and image style "
    "instead of masks. The test split shares that bias: a high score here shows the model separates these two "
    "collections, not that it reads masks on real faces. Judge it on face crops from real photos "
    "(`visionlab detect`), and look at the Grad-CAM overlays below."
)


def cpu_ms_per_image(model: torch.nn.Module, image_size: int, batch: int = 16, repeats: int = 3) -> float:
    """Median CPU inference time per image at ``batch`` images per call."""
    model = model.to("cpu").eval()
    x = torch.randint(0, 256, (batch, 3, image_size, image_size), dtype=torch.uint8)
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) / batch * 1000)
    return float(np.median(times))


def write_predictions(path: Path, paths, y: np.ndarray, probs: np.ndarray, classes: list[str]) -> None:
    """Per-image predictions of the evaluated split, so runs can be compared without recomputing."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "true", "pred", *[f"p_{c}" for c in classes]])
    for i in range(len(y)):
        w.writerow([paths[i] if paths else i, classes[y[i]], classes[int(probs[i].argmax())],
                    *[f"{v:.6f}" for v in probs[i]]])
    atomic_write_text(path, buf.getvalue())


def evaluate_model(model: torch.nn.Module, data: ImageData, out_dir: Path, *, history: Optional[list] = None,
                   positive_class: Optional[str] = None, title: str = "", config_yaml: str = "",
                   extra_summary: Union[dict, Callable[[], dict], None] = None, split: str = "test",
                   quiet: bool = False, full: bool = True, tta: bool = False, slices=None) -> dict:
    """Evaluate on ``split`` (default test; val when there is no test); write plots and report; return metrics.
    ``extra_summary`` (or a function returning it, called as the page is written) adds rows to the summary;
    ``tta`` averages the probabilities of each image and its mirror image.

    ``slices`` (a ``slices.TagFile``, read before the data were loaded) adds recall and precision per class on each
    tagged kind of image (``m["slices"]``), with a table, a bar plot and a gallery of each slice's mistakes."""
    out_dir = Path(out_dir)
    target = getattr(data, split) or data.val or data.train
    with Steps("report" if full else "evaluation", 6 if full else 1, quiet) as steps:
        steps.next(f"predicting {len(target)} images")
        m, probs, threshold = _metrics(model, data, target, positive_class, tta)
        tagged = _tagged(slices, data, target) if slices is not None else None
        if tagged is not None:
            idx, values = tagged
            y, pred = target.y.numpy(), probs.argmax(1)
            present = {data.classes[y[i]] for i in idx}
            m["slices"] = slice_metrics([data.classes[y[i]] for i in idx], [data.classes[pred[i]] for i in idx],
                                        values, slices.names, [c for c in data.classes if c in present])
        write_predictions(out_dir / "predictions.csv", target.paths, target.y.numpy(), probs, data.classes)
        if not full:
            m.pop("curves", None)
            return m
        steps.next("CPU speed")
        m["ms_per_image_cpu"] = cpu_ms_per_image(model, data.image_size)
        figs = _figures(model, data, target, m, probs, history, out_dir / "plots", title, steps)
        if tagged is not None:
            figs.update(_slice_figures(m["slices"], data, target, probs, tagged, out_dir / "plots"))
        steps.next("page")
        which = f" ({m['positive_class']})" if "positive_class" in m else " (macro)"
        summary = {"split": split if getattr(data, split) is not None else "val", "images": m["n"],
                   "accuracy": m["accuracy"], "loss": m["loss"], f"precision{which}": m["precision"],
                   f"recall{which}": m["recall"], f"F1{which}": m["f1"], "roc_auc": m.get("roc_auc", "n/a"),
                   "ECE": m["ece"], "parameters": m["parameters"],
                   "ms per image (CPU)": f"{m['ms_per_image_cpu']:.1f}"}
        if tta:
            summary["test-time augmentation"] = "mean of each image and its mirror image"
        if threshold is not None:
            summary[f"threshold on P({m['positive_class']}) (chosen on validation, max F1)"] = threshold
            summary["accuracy at that threshold"] = m["at_threshold"]["accuracy"]
        summary.update((extra_summary() if callable(extra_summary) else extra_summary) or {})
        sections = _sections(data, m, figs, summary, config_yaml)
        atomic_write_text(out_dir / "report.html", page(title or "visionlab report", sections,
                                                        f"generated {time.strftime('%Y-%m-%d %H:%M')}"))
    m.pop("curves", None)
    m["plots"] = {k: str(Path(v).relative_to(out_dir)) for k, v in figs.items()}
    return m


def _tagged(tags, data: ImageData, target) -> tuple[list[int], np.ndarray]:
    """(indices into ``target``, their tag rows) of the evaluated images the tag file tags."""
    if not target.paths:
        raise DataError(f"--slices {tags.path}: the evaluated images have no file paths to match tags to")
    every = [p for s in data.splits().values() for p in (s.paths or [])]
    per = crop_tags(tags, target.paths, every, data.location)
    idx = [i for i, v in enumerate(per) if v is not None]
    if not idx:
        raise DataError(f"--slices {tags.path} tags none of the {len(target)} evaluated images (it tags images of "
                        f"other splits only)")
    return idx, np.array([per[i] for i in idx], bool).reshape(len(idx), -1)


def _slice_figures(sm: dict, data: ImageData, target, probs: np.ndarray, tagged, pdir: Path) -> dict[str, Path]:
    """The slice bar plot and a gallery row per slice of its mislabelled images."""
    idx, values = tagged
    y, pred = target.y.numpy(), probs.argmax(1)
    figs = {"slices": slice_plot(sm, pdir / "slices.png")}
    rows = []
    for name, sel in slice_members(values, sm["tags"]).items():
        if name == ALL:
            continue
        wrong = [i for i, s in zip(idx, sel) if s and pred[i] != y[i]]
        rows.append((f"{name} ({len(wrong)})", [(target.x[i].permute(1, 2, 0).numpy(),
                                                 f"{data.classes[y[i]]}\nsaid {data.classes[pred[i]]}", None)
                                                for i in wrong[:8]]))
    gallery = plot_misses(rows, pdir / "gallery_slices.png")
    if gallery is not None:
        figs["slice_misses"] = gallery
    return figs


def _metrics(model: torch.nn.Module, data: ImageData, target, positive_class: Optional[str], tta: bool = False):
    """(metrics, probabilities, threshold): a binary model's threshold is chosen on validation (max F1)."""
    classes = data.classes
    probs = predict_proba(model, target.x, tta=tta)
    y = target.y.numpy()
    threshold = None
    if len(classes) == 2 and data.val is not None and target is not data.val and len(np.unique(data.val.y.numpy())) == 2:
        pos = positive_index(classes, positive_class)
        threshold = choose_threshold(data.val.y.numpy(), predict_proba(model, data.val.x, tta=tta)[:, pos], pos)
    m = compute(y, probs, classes, positive_class, threshold)
    m["tta"] = tta
    m["parameters"] = int(sum(p.numel() for p in model.parameters()))
    return m, probs, threshold


def _figures(model: torch.nn.Module, data: ImageData, target, m: dict, probs: np.ndarray,
             history: Optional[list], pdir: Path, title: str, steps: Steps) -> dict[str, Path]:
    """Learning curves, confusion matrices, ROC/PR, reliability, confident mistakes and Grad-CAM."""
    classes, y = data.classes, target.y.numpy()
    figs: dict[str, Path] = {}
    steps.next("plots")
    if history:
        figs["curves"] = plots.learning_curves(history, pdir / "learning_curves.png", title)
    figs["cm"] = plots.confusion(m["confusion_matrix"], classes, pdir / "confusion_matrix.png")
    figs["cm_norm"] = plots.confusion(m["confusion_matrix"], classes, pdir / "confusion_matrix_normalized.png", normalize=True)
    if "curves" in m and "roc" in m["curves"]:
        fpr, tpr = m["curves"]["roc"]
        figs["roc"] = plots.roc({title or "model": (fpr, tpr, m.get("roc_auc"))}, pdir / "roc.png")
        rec, prec = m["curves"]["pr"]
        figs["pr"] = plots.precision_recall(rec, prec, m["average_precision"], pdir / "precision_recall.png")
    elif "curves" in m and "roc_ovr" in m["curves"]:
        figs["roc"] = plots.roc({c: (f, t, None) for c, (f, t) in m["curves"]["roc_ovr"].items()},
                                pdir / "roc.png", f"One-vs-rest ROC (macro AUC {m.get('roc_auc', float('nan')):.3f})")
    figs["rel"] = plots.reliability(m["reliability"], m["ece"], pdir / "reliability.png")

    steps.next("confident mistakes")
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != y)
    if len(wrong):
        worst = wrong[np.argsort(-probs[wrong].max(1))][:12]
        caps = [f"true {classes[y[i]]}\npred {classes[pred[i]]} {probs[i].max():.2f}" for i in worst]
        figs["mistakes"] = plots.image_grid(target.x[worst].numpy(), caps, pdir / "confident_mistakes.png",
                                            "Most confident mistakes")
    steps.next("Grad-CAM")
    sample = np.random.default_rng(0).choice(len(y), size=min(8, len(y)), replace=False)
    cams = gradcam(model, target.x[sample])
    if cams is not None:
        caps = [f"true {classes[y[i]]}\npred {classes[pred[i]]} {probs[i].max():.2f}" for i in sample]
        figs["gradcam"] = plots.image_grid(target.x[sample].numpy(), caps, pdir / "gradcam.png",
                                           "Grad-CAM: where the model looks (red = most)", cols=4, overlays=cams)
    return figs


def _sections(data: ImageData, m: dict, figs: dict[str, Path], summary: dict, config_yaml: str) -> list:
    """The report's sections, in order, as (title, HTML from report.py's template macros)."""
    classes, per = data.classes, m["per_class"]
    sections = [("Summary", table(["metric", "value"], summary.items()))]
    if any(c.lower().replace("_", "") in ("withmask", "withoutmask") for c in classes):
        sections.append(("What this test split can and cannot show", note(MASK_NOTE)))
    counts = [(k, len(s), *[int((s.y == i).sum()) for i in range(len(classes))]) for k, s in data.splits().items()]
    sections.append(("Data", table(["split", "images", *classes], counts) +
                     para(f"{data.location or data.source}; {len(data.skipped)} unreadable files skipped"
                          f"{' (listed in skipped.txt)' if data.skipped else ''}.", "muted")))
    if "curves" in figs:
        sections.append(("Learning curves", figures([figs["curves"]])))
    sections.append(("Classification report", table(
        ["class", "precision", "recall", "f1", "support"],
        [(c, per[c]["precision"], per[c]["recall"], per[c]["f1-score"], int(per[c]["support"])) for c in classes])))
    sections.append(("Confusion matrices", figures([figs["cm"], figs["cm_norm"]], 440)))
    sections.append(("ROC, precision-recall and calibration",
                     figures([figs.get("roc"), figs.get("pr"), figs["rel"]], 400)))
    if "slices" in m:
        sections.append(("Slices: kinds of image", slice_table(m["slices"]) +
                         figures([figs.get("slices"), figs.get("slice_misses")])))
    if "mistakes" in figs:
        sections.append(("Most confident mistakes", figures([figs["mistakes"]])))
    if "gradcam" in figs:
        sections.append(("Grad-CAM", figures([figs["gradcam"]])))
    if config_yaml:
        sections.append(("Configuration", pre(config_yaml)))
    return sections
