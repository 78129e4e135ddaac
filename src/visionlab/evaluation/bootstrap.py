"""95% intervals for the detection figures by a bootstrap over photos.

A photo is the unit that was sampled (faces in one photo share its light, camera and crowd), so the interval comes
from resampling photos with replacement: ``B`` times, the figures are computed again on the drawn photos (a photo
drawn twice counts twice) and the 2.5th and 97.5th percentiles are the interval (scipy.stats.bootstrap's percentile
method over a photo index would call the statistic the same way; it is done here directly because the statistic
needs the whole draw, not a column of values).

mAP@0.5 is COCO's (what torchmetrics/pycocotools report): per photo and class, boxes sorted by score (the first 100
kept) are matched greedily to the unmatched annotated face of that class with the highest IoU >= 0.5; per class,
all photos' boxes are sorted by score, precision is made non-increasing from the right and read at the 101 recall
points 0, 0.01, ..., 1. The matching is done once per photo (``match_photo``) and only the accumulation is repeated
per draw: pycocotools would redo the matching on every draw (about a second each, 1,000 draws per figure), and it
cannot count a photo twice. ``tests/evaluation/test_bootstrap.py`` checks the figure equals torchmetrics' on real
detections and a hand-computed case.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..boxes import iou_matrix

RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100  # COCO's limit per photo and class
DEFAULT_DRAWS = 1000


@dataclass
class PhotoMatches:
    """One photo's scored boxes after COCO's matching at one IoU: class, score and hit of each kept box, and the
    annotated faces per class."""

    labels: np.ndarray  # int, one per kept box
    scores: np.ndarray  # float
    hits: np.ndarray  # bool: the box matched an annotated face of its class
    truths: np.ndarray  # int per class: annotated faces of that class in the photo
    found: int = 0  # annotated faces matched by any box (face recall), filled by the caller
    small_found: int = 0
    small: int = 0
    extra: dict = field(default_factory=dict)


def match_photo(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, truth_boxes: np.ndarray,
                truth_labels: np.ndarray, n_classes: int, iou: float = 0.5) -> PhotoMatches:
    """COCO's greedy matching of one photo's boxes (xyxy) to its annotated faces, per class."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores, labels = np.asarray(scores, np.float64).reshape(-1), np.asarray(labels, int).reshape(-1)
    truth_boxes = np.asarray(truth_boxes, np.float64).reshape(-1, 4)
    truth_labels = np.asarray(truth_labels, int).reshape(-1)
    out_l, out_s, out_h = [], [], []
    for c in np.unique(labels):
        d = np.flatnonzero(labels == c)
        d = d[np.argsort(-scores[d], kind="mergesort")][:MAX_DETECTIONS]
        g = np.flatnonzero(truth_labels == c)
        ious = iou_matrix(boxes[d], truth_boxes[g])
        taken = np.zeros(len(g), bool)
        for i in range(len(d)):
            best, m = min(iou, 1 - 1e-10), -1
            for j in range(len(g)):  # COCO keeps the last of equal IoUs: `<` skips, `>=` replaces
                if taken[j] or ious[i, j] < best:
                    continue
                best, m = ious[i, j], j
            if m >= 0:
                taken[m] = True
            out_h.append(m >= 0)
        out_l += [int(c)] * len(d)
        out_s += scores[d].tolist()
    truths = np.bincount(truth_labels, minlength=n_classes)[:n_classes]
    return PhotoMatches(np.array(out_l, int), np.array(out_s, np.float64), np.array(out_h, bool), truths)


def average_precision(scores: np.ndarray, hits: np.ndarray, n_truth: float) -> float:
    """COCO's AP at one IoU from all boxes of one class (any order) and the annotated faces of that class."""
    if n_truth <= 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    h = hits[order]
    tp, fp = np.cumsum(h), np.cumsum(~h)
    recall = tp / n_truth
    precision = tp / (tp + fp + np.spacing(1))
    if not len(precision):
        return 0.0
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # COCO's envelope: non-increasing from the right
    at = np.searchsorted(recall, RECALL_POINTS, side="left")
    q = np.zeros(len(RECALL_POINTS))
    ok = at < len(precision)
    q[ok] = precision[at[ok]]
    return float(np.mean(q))


def _pooled(photos: Sequence[PhotoMatches], counts: Optional[np.ndarray]):
    """All boxes of the drawn photos (each repeated as often as its photo was drawn) and the annotated faces."""
    reps = np.ones(len(photos), int) if counts is None else counts
    keep = [k for k in range(len(photos)) if reps[k] > 0]
    if not keep:
        return np.zeros(0, int), np.zeros(0), np.zeros(0, bool), np.zeros(len(photos[0].truths) if photos else 0)
    labels = np.concatenate([np.tile(photos[k].labels, reps[k]) for k in keep])
    scores = np.concatenate([np.tile(photos[k].scores, reps[k]) for k in keep])
    hits = np.concatenate([np.tile(photos[k].hits, reps[k]) for k in keep])
    truths = sum(photos[k].truths * reps[k] for k in keep)
    return labels, scores, hits, truths


def map50(photos: Sequence[PhotoMatches], counts: Optional[np.ndarray] = None) -> tuple[float, np.ndarray]:
    """(mAP, AP per class) over the photos, each counted ``counts[k]`` times (default once); classes without an
    annotated face are NaN in the per-class array and left out of the mean, as in COCO."""
    labels, scores, hits, truths = _pooled(photos, counts)
    aps = np.array([average_precision(scores[labels == c], hits[labels == c], truths[c]) for c in range(len(truths))])
    return (float(np.nanmean(aps)) if np.isfinite(aps).any() else float("nan")), aps


def _ratio(num: np.ndarray, den: np.ndarray, counts: np.ndarray) -> float:
    d = float(den @ counts)
    return float(num @ counts) / d if d else float("nan")


def draw_counts(n: int, draws: int, seed: int = 0):
    """Per draw, how many times each of ``n`` photos was drawn (``n`` draws with replacement)."""
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        yield np.bincount(rng.integers(0, n, n), minlength=n)


def bootstrap_intervals(photos: Sequence[PhotoMatches], classes: Sequence[str], draws: int = DEFAULT_DRAWS,
                        seed: int = 0, shown: Optional[Sequence[PhotoMatches]] = None, level: float = 0.95) -> dict:
    """95% percentile intervals over photos for mAP@0.5, each class's AP@0.5, face recall and recall of faces
    under 16 px (and mAP@0.5 of the shown boxes when ``shown`` holds the same photos' matches with those boxes).
    Every figure is computed on the same draws."""
    n = len(photos)
    found = np.array([p.found for p in photos], float)
    faces = np.array([p.truths.sum() for p in photos], float)
    sf, sn = np.array([p.small_found for p in photos], float), np.array([p.small for p in photos], float)
    rows = []
    for counts in draw_counts(n, draws, seed):
        m, aps = map50(photos, counts)
        row = [m, *aps, _ratio(found, faces, counts), _ratio(sf, sn, counts)]
        if shown is not None:
            row.append(map50(shown, counts)[0])
        rows.append(row)
    a = np.array(rows, float)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2

    def ci(col: np.ndarray) -> Optional[list[float]]:
        col = col[np.isfinite(col)]
        if not len(col):
            return None
        return [round(float(np.percentile(col, lo_q)), 4), round(float(np.percentile(col, hi_q)), 4)]

    k = len(classes)
    out = {"method": f"percentile bootstrap over {n} photos, {draws} draws, seed {seed}", "level": level,
           "map50": ci(a[:, 0]), "ap50_per_class": {c: ci(a[:, 1 + i]) for i, c in enumerate(classes)},
           "face_recall": ci(a[:, 1 + k]), "recall_under_16": ci(a[:, 2 + k])}
    if shown is not None:
        out["map50_shown"] = ci(a[:, 3 + k])
    return out
