"""What a user sees by default, chosen on photos the model never trained on: the face probability below which a box
is not shown, and per-class weights on the label a shown face gets.

``choose_shown(records, truths, classes)`` takes the pipeline's JSON lines (run with a low ``min_face_prob`` so every
box is there, e.g. ``detect --truth``'s 0.05) of validation or out-of-fold photos and their annotations, and returns

- ``min_face_prob``: the highest threshold on P(face) = 1 - P(Background) whose shown boxes lose at most
  ``MAP_LOSS`` (0.01) mAP@0.5 against all boxes: the boxes a user sees score as well as the full list, with as few
  false boxes as that allows. (F1 of shown boxes, tried first, chose 0.85 on the 4-fold out-of-fold detections and
  cost 0.09 mAP: it trades away the many small, low-probability faces that count for mAP.) F1 of the shown boxes
  at the chosen threshold and at 0.5 is reported beside it.
- ``class_weights``: factors on each class's probability before the label is taken (weights 1 = the argmax),
  chosen on a grid to maximise the balanced accuracy (mean per-class recall) of the labels of matched faces: a
  rare class (masks worn below the nose) that the classifier under-calls gets a weight above 1. The class-scored
  mAP is unchanged by them (a factor per class keeps each class's ranking); the label a user reads changes.

Both go into the detection profile (inference/profile.py), which the pipeline applies by default.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from ..boxes import match, xywh_to_xyxy
from ..data.boxes import AnnotatedImage
from .detection import _class_scored, pair_records

THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)
MAP_LOSS = 0.01
WEIGHTS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)


def _prepare(records: Sequence[dict], truths: Sequence[AnnotatedImage]) -> list[tuple]:
    """Per annotated photo (paired by file name, as ``detect --truth`` pairs them): its faces, their boxes (xyxy),
    the annotated boxes and labels."""
    out = []
    for r, t in pair_records(records, truths):
        faces = r.get("faces", [])
        pb = xywh_to_xyxy(np.array([f["box"] for f in faces], np.float64)) if faces else np.zeros((0, 4))
        gt = np.array([[b.x0, b.y0, b.x1, b.y1] for b in t.boxes], np.float64).reshape(-1, 4)
        out.append((faces, pb, gt, [b.label for b in t.boxes]))
    return out


def _matched(photos: list[tuple], iou: float = 0.5):
    """Per box: P(face), whether it matches an annotated face; per matched face: its class and the box's probs."""
    face_p, hit, pairs, n_faces = [], [], [], 0
    for faces, pb, gt, labels in photos:
        n_faces += len(gt)
        m = {d: g for d, g, _ in match(pb, gt, iou)}
        for k, f in enumerate(faces):
            face_p.append(float(f.get("face", 1.0)))
            hit.append(k in m)
            if k in m:
                pairs.append((labels[m[k]], f.get("probs") or {f["guess"]: 1.0}, float(f.get("face", 1.0))))
    return np.array(face_p), np.array(hit, bool), pairs, n_faces


def shown_f1(face_p: np.ndarray, hit: np.ndarray, n_faces: int, threshold: float) -> tuple[float, float, float]:
    """(F1, precision, recall) of the boxes with P(face) >= threshold against the annotated faces."""
    shown = face_p >= threshold
    tp = int((shown & hit).sum())
    fp = int((shown & ~hit).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / n_faces if n_faces else 0.0
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


def shown_map50(records: Sequence[dict], truths: Sequence[AnnotatedImage], classes: Sequence[str],
                threshold: float) -> float:
    """mAP@0.5 (COCO's, evaluation/bootstrap.py) of the boxes with P(face) >= ``threshold``, each scored per class
    with that class's probability times the detector's score, as ``detect --truth`` scores them."""
    return _shown_map50(_prepare(records, truths), classes, threshold)


def _shown_map50(photos: list[tuple], classes: Sequence[str], threshold: float) -> float:
    from .bootstrap import map50, match_photo

    idx = {c: i for i, c in enumerate(classes)}
    matched = []
    for faces, pb, gt, labels in photos:
        b, s, lab, which = _class_scored(faces, pb, idx, "prob*score")
        keep = np.array([faces[k].get("face", 1.0) >= threshold for k in which], bool)
        matched.append(match_photo(b[keep], s[keep], lab[keep], gt, np.array([idx[c] for c in labels], int),
                                   len(classes)))
    return map50(matched)[0] if matched else float("nan")


def balanced_accuracy(truth: Sequence[str], probs: Sequence[dict], classes: Sequence[str],
                      weights: dict[str, float]) -> float:
    """Mean over classes (those with faces) of the share of its faces whose weighted argmax is that class."""
    w = np.array([weights.get(c, 1.0) for c in classes])
    p = np.array([[pr.get(c, 0.0) for c in classes] for pr in probs], np.float64).reshape(-1, len(classes))
    guess = np.asarray(classes)[np.argmax(p * w, axis=1)] if len(p) else np.array([])
    truth = np.asarray(truth)
    recalls = [float(np.mean(guess[truth == c] == c)) for c in classes if np.any(truth == c)]
    return float(np.mean(recalls)) if recalls else float("nan")


def choose_shown(records: Sequence[dict], truths: Sequence[AnnotatedImage], classes: Sequence[str],
                 iou: float = 0.5) -> dict:
    """The profile's ``min_face_prob`` and ``class_weights`` (module docstring), with the figures that chose them."""
    photos = _prepare(records, truths)
    face_p, hit, pairs, n_faces = _matched(photos, iou)
    full = _shown_map50(photos, classes, 0.0)
    maps = {float(t): _shown_map50(photos, classes, float(t)) for t in THRESHOLDS}
    best_t = max([t for t, m in maps.items() if m >= full - MAP_LOSS] or [float(THRESHOLDS[0])])
    f1, prec, rec = shown_f1(face_p, hit, n_faces, best_t)
    shown = [(c, pr) for c, pr, fp in pairs if fp >= best_t]
    truth, probs = [c for c, _ in shown], [pr for _, pr in shown]
    classes = list(classes)
    base = balanced_accuracy(truth, probs, classes, {})
    best_w, best_b = {c: 1.0 for c in classes}, base
    for combo in itertools.product(WEIGHTS, repeat=len(classes) - 1):  # the first class's weight stays 1
        w = dict(zip(classes, (1.0, *combo)))
        b = balanced_accuracy(truth, probs, classes, w)
        if b > best_b + 1e-9:
            best_w, best_b = w, b
    return {"min_face_prob": best_t, "class_weights": best_w,
            "chosen_on": {"photos": len({r["source"] for r in records}), "faces": n_faces, "boxes": int(len(face_p)),
                          "map50_all": round(full, 4), "map50_shown": round(maps[best_t], 4),
                          "map50_shown_at_0.5": round(maps[0.5], 4), "f1": round(f1, 4), "precision": round(prec, 4), "recall": round(rec, 4),
                          "f1_at_0.5": round(shown_f1(face_p, hit, n_faces, 0.5)[0], 4),
                          "balanced_accuracy": round(best_b, 4), "balanced_accuracy_unweighted": round(base, 4),
                          "matched_faces": len(shown)}}
