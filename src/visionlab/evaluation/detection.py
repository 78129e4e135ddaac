"""Box-level evaluation of face-mask detection against annotated photos.

``evaluate_detections(records, truths, classes)`` takes the pipeline's JSON-line records (one per photo) and the
annotations (``data.boxes``) and returns the metrics; ``write_detection_report`` adds plots, a gallery and a page.

- mAP@0.5 and mAP@[.5:.95], overall and per class: torchmetrics' ``MeanAveragePrecision`` (COCO's definition,
  pycocotools behind it; no AP is computed here). Every face box is scored once per class, as detectors with
  per-class scores are evaluated (COCO keeps up to 100 boxes per class and photo): by default with that class's
  probability (``probs``, where the classifier's Background class already took its share) times the face
  detector's score, the two stages' evidence that the box is a face of that class, as two-stage detectors multiply
  objectness and class score (``rank="prob"`` uses the probability alone). ``map50_top1`` scores each box only
  with its best guess, for comparison.
- Face recall by size band of the annotated box's shorter side (<16, 16-31, 32-63, >=64 px) at IoU >= 0.5,
  whatever the class, with one-to-one matching (SciPy's assignment on IoU).
- ``map50_shown``: mAP@0.5 of only the boxes a user sees (face probability >= ``shown_face_prob``: the model
  profile's threshold, else 0.5, ``visionlab detect``'s default).
- ``intervals``: 95% intervals for mAP@0.5 (all boxes and shown), each class's AP@0.5, face recall and recall of
  faces under 16 px, by a bootstrap over photos (evaluation/bootstrap.py).
- The confusion matrix of matched faces (annotated class x best guess), the count of face boxes that match no
  annotated face (false boxes; some are real faces the annotators left out), per-class precision-recall curves.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..data.boxes import AnnotatedImage
from ..errors import DataError
from .bootstrap import DEFAULT_DRAWS, PhotoMatches, bootstrap_intervals, map50, match_photo

SHOWN_FACE_PROB = 0.5  # `visionlab detect`'s default --min-face-prob for a model whose profile chose none
SIZE_BANDS = ((0, 16, "<16"), (16, 32, "16-31"), (32, 64, "32-63"), (64, 10**9, ">=64"))


def _key(path: str | Path) -> str:
    return Path(path).name


def pair_records(records: Sequence[dict], truths: Sequence[AnnotatedImage]) -> list[tuple[dict, AnnotatedImage]]:
    """(record, truth) for every annotated photo that was processed, matched by file name."""
    by_name = {_key(t.path): t for t in truths}
    pairs = [(r, by_name[_key(r["source"])]) for r in records if _key(r["source"]) in by_name]
    if not pairs:
        raise DataError("none of the processed images has annotations: check that --truth describes these photos")
    return pairs


class _Tally:
    """Running counts over the photos of one evaluation: faces and face boxes, recall by size band, the confusion
    matrix of matched faces, false boxes (all, and those a user sees), and the missed and mislabelled faces."""

    def __init__(self, n_classes: int) -> None:
        self.confusion = np.zeros((n_classes, n_classes), np.int64)
        self.band_hits: Counter = Counter()
        self.band_total: Counter = Counter()
        self.false_boxes, self.false_shown, self.n_shown, self.n_pred, self.n_truth = 0, 0, 0, 0, 0
        self.misses: list[dict] = []
        self.mistakes: list[dict] = []
        self.faces: list[dict] = []  # every annotated face's outcome, for slices (evaluation/slices.py)


def _class_scored(faces: list[dict], pb: np.ndarray, idx: dict, rank: str) -> tuple[np.ndarray, ...]:
    """Every face box once per class, scored with that class's probability (times the detector's score for
    ``prob*score``): the prediction for the main mAP, as (boxes, scores, labels, index of the face) arrays."""
    boxes, scores, labels, which = [], [], [], []
    for k, f in enumerate(faces):
        probs = f.get("probs") or {f["guess"]: f["confidence"]}
        w = float(f.get("score", 1.0)) if rank == "prob*score" else 1.0
        for c, p in probs.items():
            if c in idx:
                boxes.append(pb[k]), scores.append(float(p) * w), labels.append(idx[c]), which.append(k)
    return (np.array(boxes, np.float64).reshape(-1, 4), np.array(scores, np.float64), np.array(labels, int),
            np.array(which, int))


def _tensors(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> dict:
    import torch

    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "scores": torch.tensor(scores, dtype=torch.float32),
            "labels": torch.tensor(labels, dtype=torch.long)}


def _top1_scored(faces: list[dict], pb: np.ndarray, idx: dict, rank: str) -> dict:
    """Every face box once, with its best guess only: the prediction for ``map50_top1``."""
    import torch

    top = [(pb[k], f["confidence"] * f.get("face", 1.0) * (f.get("score", 1.0) if rank == "prob*score" else 1.0),
            idx[f["guess"]]) for k, f in enumerate(faces) if f["guess"] in idx]
    return {"boxes": torch.tensor(np.array([t[0] for t in top]).reshape(-1, 4), dtype=torch.float32),
            "scores": torch.tensor([t[1] for t in top], dtype=torch.float32),
            "labels": torch.tensor([t[2] for t in top], dtype=torch.long)}


def _tally_photo(t: _Tally, rec: dict, truth: AnnotatedImage, faces: list[dict], pb: np.ndarray, gt: np.ndarray,
                 gl: list[int], idx: dict, match_iou: float, shown_p: float) -> tuple[int, int, int]:
    """One photo's face boxes matched one-to-one to its annotated faces, counted into ``t``; returns the photo's
    (faces found, faces under 16 px found, faces under 16 px)."""
    from ..boxes import match

    pairs_ = match(pb, gt, match_iou)
    matched_gt = {g: d for d, g, _ in pairs_}
    t.false_boxes += len(faces) - len(pairs_)
    # what a user sees at the default --min-face-prob 0.5
    shown = {k for k, f in enumerate(faces) if f.get("face", 1.0) >= shown_p}
    t.n_shown += len(shown)
    t.false_shown += len(shown - {d for d, _, _ in pairs_})
    for g, b in enumerate(truth.boxes):
        side = min(b.w, b.h)
        band = next(name for lo, hi, name in SIZE_BANDS if lo <= side < hi)
        t.band_total[band] += 1
        f = faces[matched_gt[g]] if g in matched_gt else None
        t.faces.append({"source": rec["source"], "index": g, "truth": b.label, "truth_box": [b.x0, b.y0, b.w, b.h],
                        "side": side, "guess": None if f is None else f["guess"],
                        "confidence": None if f is None else f["confidence"],
                        "shown": g in matched_gt and matched_gt[g] in shown})
        if g in matched_gt:
            t.band_hits[band] += 1
            f = faces[matched_gt[g]]
            if f["guess"] in idx:
                t.confusion[gl[g], idx[f["guess"]]] += 1
                if f["guess"] != b.label:
                    t.mistakes.append({"source": rec["source"], "truth_box": [b.x0, b.y0, b.w, b.h],
                                       "truth": b.label, "guess": f["guess"], "confidence": f["confidence"]})
        else:
            t.misses.append({"source": rec["source"], "truth_box": [b.x0, b.y0, b.w, b.h], "truth": b.label,
                             "side": side})
    small = [g for g, b in enumerate(truth.boxes) if min(b.w, b.h) < SIZE_BANDS[0][1]]
    return len(pairs_), sum(g in matched_gt for g in small), len(small)


def _per_class(res, key: str, classes: list[str]) -> dict:
    vals = res[key].flatten().tolist()
    ids = res["classes"].flatten().tolist()
    return {classes[int(i)]: round(float(v), 4) for i, v in zip(ids, vals)}


def _results(t: _Tally, res_all, res_top, classes: list[str], photos: int, match_iou: float, rank: str) -> dict:
    """The metrics dict of ``evaluate_detections`` from the two computed mAPs and the tally."""
    pr = {}
    prec = res_all["precision"]  # T x R x K x A x M (IoU thresholds, 101 recall points, classes, areas, max dets)
    present = res_all["classes"].flatten().tolist()
    for k, cid in enumerate(present):
        p = prec[0, :, k, 0, -1].numpy()
        pr[classes[int(cid)]] = [round(float(v), 4) for v in p]
    recall = {name: {"found": t.band_hits[name], "faces": t.band_total[name],
                     "recall": round(t.band_hits[name] / t.band_total[name], 4) if t.band_total[name] else None}
              for _, _, name in SIZE_BANDS}
    found = sum(t.band_hits.values())
    return {
        "photos": photos, "faces": t.n_truth, "face_boxes": t.n_pred,
        "map50": round(float(res_all["map_50"]), 4), "map": round(float(res_all["map"]), 4),
        "ap50_per_class": _per_class(_per_class_50(res_all, prec, present), "ap50", classes),
        "ap_per_class": _per_class(res_all, "map_per_class", classes),
        "map50_top1": round(float(res_top["map_50"]), 4), "map_top1": round(float(res_top["map"]), 4),
        "face_recall": round(found / t.n_truth, 4) if t.n_truth else None,
        "recall_by_size": recall,
        "false_boxes": int(t.false_boxes),
        "shown_boxes": int(t.n_shown), "false_boxes_shown": int(t.false_shown),
        "confusion": {"classes": classes, "matrix": t.confusion.tolist()},
        "matched_accuracy": round(float(np.trace(t.confusion) / max(t.confusion.sum(), 1)), 4),
        "pr_curves": pr, "match_iou": match_iou, "rank": rank,
        "_misses": sorted(t.misses, key=lambda d: -d["side"]),
        "_mistakes": sorted(t.mistakes, key=lambda d: -d["confidence"]),
        "_faces": t.faces,
    }


def evaluate_detections(records: Sequence[dict], truths: Sequence[AnnotatedImage], classes: Sequence[str],
                        match_iou: float = 0.5, rank: str = "prob*score", draws: int = DEFAULT_DRAWS,
                        shown_face_prob: float = SHOWN_FACE_PROB) -> dict:
    """The metrics of the module docstring for the pipeline's ``records`` against the annotated ``truths``;
    ``intervals``: 95% intervals from ``draws`` bootstrap draws over photos (0: none); ``shown_face_prob``: the
    face probability from which `visionlab detect` shows a box by default (the model's profile says)."""
    import torch
    from torchmetrics.detection import MeanAveragePrecision

    from ..boxes import xywh_to_xyxy

    if rank not in ("prob*score", "prob"):
        raise DataError(f"unknown ranking {rank!r}; choose prob*score or prob")
    classes = list(classes)
    idx = {c: i for i, c in enumerate(classes)}
    pairs = pair_records(records, truths)
    unknown = sorted({b.label for _, t in pairs for b in t.boxes} - set(classes))
    if unknown:
        raise DataError(f"annotated classes {unknown} are not classes of the model ({classes})")

    def metric():
        # COCO's limit of 100 boxes applies per photo *and class*; torchmetrics warns when a photo has over 100
        # boxes in all (3 classes x 40 faces), which truncates nothing here, so that warning is off
        m = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", class_metrics=True, extended_summary=True,
                                 max_detection_thresholds=[1, 10, 100], backend="pycocotools")
        m.warn_on_many_detections = False
        return m

    m_all, m_top = metric(), metric()
    tally = _Tally(len(classes))
    photos: list[PhotoMatches] = []  # per photo, for the bootstrap intervals
    shown: list[PhotoMatches] = []  # the same with only the boxes a user sees
    for rec, truth in pairs:
        faces = rec.get("faces", [])
        tally.n_pred += len(faces)
        pb = xywh_to_xyxy(np.array([f["box"] for f in faces], np.float64)) if faces else np.zeros((0, 4))
        gt = np.array([[b.x0, b.y0, b.x1, b.y1] for b in truth.boxes], np.float64).reshape(-1, 4)
        gl = [idx[b.label] for b in truth.boxes]
        tally.n_truth += len(gt)
        target = {"boxes": torch.tensor(gt, dtype=torch.float32), "labels": torch.tensor(gl, dtype=torch.long)}
        b, s, lab, which = _class_scored(faces, pb, idx, rank)
        m_all.update([_tensors(b, s, lab)], [target])
        m_top.update([_top1_scored(faces, pb, idx, rank)], [target])
        pm = match_photo(b, s, lab, gt, gl, len(classes))
        pm.found, pm.small_found, pm.small = _tally_photo(tally, rec, truth, faces, pb, gt, gl, idx, match_iou,
                                                          shown_face_prob)
        seen = np.array([faces[k].get("face", 1.0) >= shown_face_prob for k in which], bool)
        photos.append(pm)
        shown.append(match_photo(b[seen], s[seen], lab[seen], gt, gl, len(classes)))
    m = _results(tally, m_all.compute(), m_top.compute(), classes, len(pairs), match_iou, rank)
    m["map50_shown"], m["shown_face_prob"] = round(map50(shown)[0], 4), shown_face_prob
    m["intervals"] = bootstrap_intervals(photos, classes, draws=draws, shown=shown) if draws else {}
    m["_photo_matches"], m["_shown_matches"] = photos, shown  # for pooled and per-fold figures
    return m


def _per_class_50(res: dict, prec, present: list) -> dict:
    """Per-class AP at IoU 0.5 from COCO's precision table (torchmetrics reports per-class AP over .5:.95 only):
    the mean of the 101 interpolated precisions, where -1 (no annotated face of that class) stays -1."""
    import torch

    vals = []
    for k in range(len(present)):
        p = prec[0, :, k, 0, -1]
        vals.append(float(p.mean()) if bool((p > -1).all()) else -1.0)
    return {"ap50": torch.tensor(vals), "classes": res["classes"]}


def _context_crop(img: np.ndarray, box) -> tuple[np.ndarray, tuple]:
    """The annotated face ``box`` (x, y, w, h) with 50% context around it, and the face's rectangle in the crop."""
    x, y, w, h = box
    pad = 0.5 * max(w, h)
    x0, y0 = int(max(0, x - pad)), int(max(0, y - pad))
    x1, y1 = int(min(img.shape[1], x + w + pad)), int(min(img.shape[0], y + h + pad))
    return img[y0:y1, x0:x1], (x - x0, y - y0, w, h)


def add_slices(m: dict, tags: dict, tag_names: Sequence[str]) -> dict:
    """``m["slices"]``: the slice figures (evaluation/slices.py) of the annotated faces that ``tags`` tags, keyed by
    (photo name, box index in the photo); the faces themselves go to ``m["_slice_faces"]`` for the gallery."""
    from .slices import slice_metrics

    faces = [f for f in m["_faces"] if (Path(f["source"]).name, f["index"]) in tags]
    if not faces:
        raise DataError("--slices tags none of the evaluated faces: check that it tags faces of these photos")
    values = np.array([tags[(Path(f["source"]).name, f["index"])] for f in faces], bool).reshape(len(faces), -1)
    m["slices"] = slice_metrics([f["truth"] for f in faces], [f["guess"] for f in faces], values, tag_names,
                                m["confusion"]["classes"], shown=[f["shown"] for f in faces])
    m["_slice_faces"] = (faces, values)
    return m


def _slice_gallery(m: dict, path: Path) -> Optional[Path]:
    """A row per slice of its missed or mislabelled faces (largest first), cut from the photos."""
    from ..images import decode_array
    from .slices import ALL, plot_misses, slice_members

    faces, values = m["_slice_faces"]
    cache: dict = {}
    rows = []
    for name, sel in slice_members(values, m["slices"]["tags"]).items():
        if name == ALL:
            continue
        wrong = sorted((f for f, s in zip(faces, sel) if s and f["guess"] != f["truth"]), key=lambda f: -f["side"])
        items = []
        for f in wrong[:8]:
            if f["source"] not in cache:
                try:
                    cache[f["source"]] = decode_array(f["source"])
                except DataError:
                    cache[f["source"]] = None
            if cache[f["source"]] is None:
                continue
            crop, rect = _context_crop(cache[f["source"]], f["truth_box"])
            said = "missed" if f["guess"] is None else f"said {f['guess']}"
            items.append((crop, f"{f['truth']}\n{said}", rect))
        rows.append((f"{name} ({len(wrong)})", items))
    return plot_misses(rows, path)


def _gallery(items: list[dict], title: str, path: Path, n: int = 24) -> Optional[Path]:
    """A grid of crops (with 50% context) around the worst items, each captioned."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..images import decode_array
    from ..plots import _save as save_figure

    items = items[:n]
    if not items:
        return None
    cols = 6
    rows = (len(items) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.9, rows * 2.2), squeeze=False)
    cache: dict = {}
    for ax, it in zip(axes.ravel(), items):
        if it["source"] not in cache:  # RGB, decoded as detection decoded it
            try:
                cache[it["source"]] = decode_array(it["source"])
            except DataError:
                cache[it["source"]] = None
        img = cache[it["source"]]
        if img is None:
            ax.axis("off")
            continue
        crop, rect = _context_crop(img, it["truth_box"])
        ax.imshow(crop, interpolation="nearest")
        ax.add_patch(plt.Rectangle(rect[:2], rect[2], rect[3], fill=False, color="yellow", lw=1))
        w, h = it["truth_box"][2:]
        cap = (f"{it['truth']}\n{int(min(w, h))} px, missed" if it.get("guess") is None
               else f"truth {it['truth']}\nsaid {it['guess']} {int(it['confidence'] * 100)}%")
        ax.set_title(cap, fontsize=6.5)
        ax.axis("off")
    for ax in axes.ravel()[len(items):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_detection_metrics(m: dict, plots: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plots import _save as save_figure

    out: dict[str, Path] = {}
    fig, ax = plt.subplots(figsize=(5.5, 4))
    rec = np.linspace(0, 1, 101)
    colors = {"WithMask": "tab:green", "WithoutMask": "tab:red", "MaskWornIncorrectly": "tab:orange"}
    for c, p in m["pr_curves"].items():
        p = np.array(p)
        ok = p >= 0
        ax.plot(rec[ok], p[ok], label=f"{c} (AP50 {m['ap50_per_class'].get(c, float('nan')):.2f})",
                color=colors.get(c))
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=f"Precision-recall at IoU 0.5 (mAP@0.5 {m['map50']:.3f})")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    out["pr_curves"] = save_figure(fig, plots / "pr_curves.png")

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    bands = list(m["recall_by_size"].items())
    vals = [(b["recall"] or 0) * 100 for _, b in bands]
    bars = ax.bar([k for k, _ in bands], vals, color="tab:blue")
    for bar, (_, b) in zip(bars, bands):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 1, f"{b['found']}/{b['faces']}",
                ha="center", fontsize=8)
    ax.set(ylim=(0, 110), ylabel="faces found (%)", xlabel="annotated face's shorter side (px)",
           title=f"Face recall by size at IoU 0.5 (all: {100 * (m['face_recall'] or 0):.1f}%)")
    out["recall_by_size"] = save_figure(fig, plots / "recall_by_size.png")

    cm = np.array(m["confusion"]["matrix"])
    names = m["confusion"]["classes"]
    fig, ax = plt.subplots(figsize=(4.8, 4))
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black")
    short = [n.replace("MaskWornIncorrectly", "Incorrect") for n in names]
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=short, yticklabels=short,
           xlabel="best guess", ylabel="annotated", title="Matched faces")
    out["confusion"] = save_figure(fig, plots / "confusion_matched.png")
    return out


def write_detection_report(m: dict, out_dir: Path, title: str = "Face-mask detection against annotations") -> Path:
    """metrics.json, plots/, gallery PNGs and report.html (template detection.html.j2) in ``out_dir``; returns
    the report's path."""
    from ..io import atomic_write_text, write_json
    from .report import render

    plots = out_dir / "plots"
    figs = plot_detection_metrics(m, plots)
    g1 = _gallery(m["_misses"], "Largest annotated faces that were missed", plots / "gallery_misses.png")
    g2 = _gallery(m["_mistakes"], "Most confident wrong labels on found faces", plots / "gallery_mistakes.png")
    from markupsafe import Markup

    slices_html = Markup("")  # composed of Markup pieces only: a plain str added to Markup would be escaped
    if "slices" in m:  # --slices: the slice table, its bar plot and each slice's misses
        from .slices import plot_slices, table_html

        shown = [plot_slices(m["slices"], plots / "slices.png"), _slice_gallery(m, plots / "gallery_slices.png")]
        figure = Markup('<figure><img src="plots/{}" alt="{}" style="max-width:100%"></figure>')
        slices_html = (Markup("<h2>Slices: kinds of face</h2><div style=\"overflow-x:auto\">") + table_html(m["slices"])
                       + Markup("</div>") + Markup("").join(figure.format(p.name, p.stem) for p in shown if p))
    public = {k: v for k, v in m.items() if not k.startswith("_")}
    public["worst_misses"] = m["_misses"][:50]
    public["worst_mistakes"] = m["_mistakes"][:50]
    write_json(out_dir / "metrics.json", public)
    page = render("detection.html.j2", title=title, m=m, nan=float("nan"), slices_html=slices_html,
                  images=[p for p in [*figs.values(), g1, g2] if p is not None])
    report = out_dir / "report.html"
    atomic_write_text(report, page)
    return report
