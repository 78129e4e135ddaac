"""Box geometry (IoU, one-to-one matching, NMS) and a learned correction from a face detector's boxes to the
annotators' boxes. Torch-free, at the ground floor: detection, evaluation and the face-crop cutter all use it.

YuNet's boxes run about 10% taller than those of the face-mask box sets and sit about 15% of a face higher, so
many faces it finds overlap their annotation by IoU 0.3-0.5 only and count as misses. ``BoxCorrection`` is a
ridge regression (scikit-learn) from the detector's box shape and five landmarks (relative to the box) to the
shift and log-scale that turn the box into the annotated one, fitted on the training photos' matched pairs. On the
first 300 photos of ``facemask_boxes`` (fitted on 200, checked on 100, YuNet at 3x) it lifts the share of faces
matched at IoU >= 0.5 from 85% to 96%. Its inputs are a family (``BOX_FEATURES``): ``linear``, the 13 features
above, and ``quadratic``, those with their squares and their products with the box's log width (measured on the
folds: no more faces found once boxes are whole pixels, so linear stays the default; docs/detection.md); a stored
correction names its own set.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Literal, Optional, Sequence, get_args

import numpy as np

from .errors import ModelError
from .registry import Registry

FEATURES = "landmarks-rel-v1"  # the linear set's record name; a stored correction names what it expects


def features(xywh: np.ndarray, landmarks: Optional[np.ndarray], score: np.ndarray) -> np.ndarray:
    """N x 13: landmarks relative to the box (x then y, 0..1), log width, log aspect, detector score."""
    x, y, w, h = (xywh[:, i] for i in range(4))
    w, h = np.maximum(w, 1e-3), np.maximum(h, 1e-3)
    if landmarks is None:
        lm = np.full((len(xywh), 5, 2), 0.5)
    else:
        lm = np.asarray(landmarks, np.float64).reshape(len(xywh), 5, 2)
        lm = np.stack([(lm[:, :, 0] - x[:, None]) / w[:, None], (lm[:, :, 1] - y[:, None]) / h[:, None]], -1)
    return np.c_[lm[:, :, 0], lm[:, :, 1], np.log(w), np.log(h / w), score]


def quadratic_features(xywh: np.ndarray, landmarks: Optional[np.ndarray], score: np.ndarray) -> np.ndarray:
    """N x 39: ``features``, their squares, and their products with the log width (column 10)."""
    f = features(xywh, landmarks, score)
    return np.c_[f, f ** 2, f * f[:, 10:11]]


@dataclass(frozen=True)
class FeatureSet:
    """One input set of the box correction: the name a stored correction records, its width, how it is made."""

    record: str  # bump when ``make`` changes
    width: int
    make: Callable[[np.ndarray, Optional[np.ndarray], np.ndarray], np.ndarray]
    digits: int  # decimals a stored correction keeps: its boxes read back within about 1e-6 px


BOX_FEATURES: Registry[FeatureSet] = Registry("box correction")
# 6 decimals, as shipped profiles hold; squared inputs reach ~20, where 6 would move a box by up to 0.002 px
BOX_FEATURES.register("linear")(FeatureSet(FEATURES, 13, features, 6))
BOX_FEATURES.register("quadratic")(FeatureSet("landmarks-rel-quad-v1", 39, quadratic_features, 12))
DEFAULT_BOX_FEATURES = "linear"


def feature_set(record: str) -> FeatureSet:
    """The set a stored correction's ``features`` names; another is one line that says which this visionlab reads."""
    known = [BOX_FEATURES.get(n) for n in BOX_FEATURES.names()]
    for fs in known:
        if fs.record == record:
            return fs
    raise ModelError(f"box correction made for features {record!r}; this visionlab reads "
                     f"{', '.join(repr(fs.record) for fs in known)}: rebuild it with `visionlab data faces`")


def box_targets(det_xywh: np.ndarray, truth_xyxy: np.ndarray) -> np.ndarray:
    """N x 4: centre shift (in box widths/heights) and log scale from detector boxes to their matched truth."""
    x, y, w, h = (det_xywh[:, i] for i in range(4))
    gw, gh = truth_xyxy[:, 2] - truth_xyxy[:, 0], truth_xyxy[:, 3] - truth_xyxy[:, 1]
    return np.c_[(truth_xyxy[:, 0] + gw / 2 - (x + w / 2)) / w, (truth_xyxy[:, 1] + gh / 2 - (y + h / 2)) / h,
                 np.log(gw / w), np.log(gh / h)]


def xywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, np.float64).reshape(-1, 4)
    return np.c_[b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]]


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """Pairwise IoU, N x M; empty inputs give an empty matrix."""
    # torchvision's box_iou computes the same, but importing torch for it would put 1 GB under the light runtime.
    a = np.asarray(a_xyxy, np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, np.float64).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def match(det_xyxy: np.ndarray, truth_xyxy: np.ndarray, min_iou: float = 0.5) -> list[tuple[int, int, float]]:
    """One-to-one (detection, truth, IoU) pairs with IoU >= ``min_iou`` that maximise the total IoU
    (SciPy's ``linear_sum_assignment``)."""
    from scipy.optimize import linear_sum_assignment

    m = iou_matrix(det_xyxy, truth_xyxy)
    if not m.size:
        return []
    rows, cols = linear_sum_assignment(-np.where(m >= min_iou, m, 0.0))
    return [(int(r), int(c), float(m[r, c])) for r, c in zip(rows, cols) if m[r, c] >= min_iou]


@dataclass
class BoxCorrection:
    coef: np.ndarray  # 4 x F
    intercept: np.ndarray  # 4
    features: str = FEATURES
    pairs: int = 0  # how many matched pairs it was fitted on
    # the boxes it was fitted on: "nms", single detector boxes with their own scores, or "wbf", fused boxes
    # (fuse_boxes) with the fused score; a detector gives it boxes and scores of the same kind
    merge: BoxMerge = "nms"

    @classmethod
    def fit(cls, det_xywh: np.ndarray, landmarks: Optional[np.ndarray], score: np.ndarray,
            truth_xyxy: np.ndarray, alpha: float = 1.0, merge: BoxMerge = "nms",
            kind: str = DEFAULT_BOX_FEATURES) -> "BoxCorrection":
        """Ridge regression on the matched pairs with the inputs of ``kind`` (a ``BOX_FEATURES`` name)."""
        from sklearn.linear_model import Ridge

        fs = BOX_FEATURES.get(kind)  # an unknown name: the registry's one line (ConfigError)
        if len(det_xywh) < 20:
            raise ModelError(f"a box correction needs at least 20 matched faces, got {len(det_xywh)}")
        if merge not in MERGES:
            raise ModelError(f"unknown box merge {merge!r}; choose one of: {', '.join(MERGES)}")
        model = Ridge(alpha=alpha).fit(fs.make(det_xywh, landmarks, score), box_targets(det_xywh, truth_xyxy))
        return cls(np.asarray(model.coef_, np.float64), np.asarray(model.intercept_, np.float64), fs.record,
                   len(det_xywh), merge)

    def __call__(self, xywh: np.ndarray, landmarks: Optional[np.ndarray], score: np.ndarray) -> np.ndarray:
        """Corrected N x 4 (x, y, w, h) float boxes."""
        xywh = np.asarray(xywh, np.float64).reshape(-1, 4)
        if not len(xywh):
            return xywh
        t = feature_set(self.features).make(xywh, landmarks, np.asarray(score, np.float64)) @ self.coef.T \
            + self.intercept
        t[:, 2:] = np.clip(t[:, 2:], -1.0, 1.0)  # never more than e-fold: a wild box stays near the detector's
        x, y, w, h = (xywh[:, i] for i in range(4))
        cx, cy = x + w / 2 + t[:, 0] * w, y + h / 2 + t[:, 1] * h
        nw, nh = w * np.exp(t[:, 2]), h * np.exp(t[:, 3])
        return np.c_[cx - nw / 2, cy - nh / 2, nw, nh]

    def to_dict(self) -> dict:
        digits = feature_set(self.features).digits
        d = {"features": self.features, "coef": self.coef.round(digits).tolist(),
             "intercept": self.intercept.round(digits).tolist(), "pairs": self.pairs}
        return d | ({"merge": self.merge} if self.merge != "nms" else {})  # older profiles: nms, as written

    @classmethod
    def from_dict(cls, d: dict) -> "BoxCorrection":
        try:
            fs = feature_set(d["features"])
            coef, intercept = np.asarray(d["coef"], np.float64), np.asarray(d["intercept"], np.float64)
            if coef.shape != (4, fs.width) or intercept.shape != (4,) or not np.isfinite(coef).all():
                raise ModelError(f"box correction has coef {coef.shape} / intercept {intercept.shape}; "
                                 f"expected (4, {fs.width}) and (4,)")
            merge = d.get("merge", "nms")
            if merge not in MERGES:
                raise ModelError(f"box correction fitted on boxes merged by {merge!r}; this visionlab knows "
                                 f"{', '.join(MERGES)}")
            return cls(coef, intercept, fs.record, int(d.get("pairs", 0)), merge)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"unreadable box correction ({type(e).__name__}: {e})") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def drop_contained(xyxy: np.ndarray, scores: Sequence[float], share: float = 0.7) -> list[int]:
    """Indices kept, highest score first, of boxes none of which shares ``share`` or more of the smaller box's area
    with a higher-scored kept box: one face found at two scales as a tight box and a loose one around the head (IoU
    ~0.25, so NMS keeps both), or a box inside a face. Faces of different people overlap far less."""
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    s = np.asarray(scores, np.float64).reshape(-1)
    area = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    kept: list[int] = []
    for i in sorted(range(len(b)), key=lambda i: (-s[i], i)):
        if kept:
            k = np.asarray(kept)
            iw = np.clip(np.minimum(b[k, 2], b[i, 2]) - np.maximum(b[k, 0], b[i, 0]), 0, None)
            ih = np.clip(np.minimum(b[k, 3], b[i, 3]) - np.maximum(b[k, 1], b[i, 1]), 0, None)
            if (iw * ih >= share * np.minimum(area[k], area[i])).any():
                continue
        kept.append(i)
    return kept


def nms_merge(boxes: Sequence[np.ndarray], scores: Sequence[float], iou: float = 0.4) -> list[int]:
    """Indices kept by greedy NMS (OpenCV's ``NMSBoxes``), highest score first."""
    import cv2

    if not len(boxes):
        return []
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    xywh = np.c_[b[:, :2], b[:, 2:] - b[:, :2]]
    s = np.asarray(scores, np.float64).reshape(-1)
    shifted = s - s.min() + 1.0  # NMSBoxes drops scores not above its (non-negative) threshold; order is kept
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), shifted.tolist(), score_threshold=0.0, nms_threshold=float(iou))
    keep = [int(i) for i in np.asarray(keep).reshape(-1)]
    return sorted(keep, key=lambda i: (-s[i], i))


# how the boxes of several searches of one frame (scales, the mirrored frame) become one per face: ``nms`` keeps
# the best-scored box, ``wbf`` averages them (``fuse_boxes``)
BoxMerge = Literal["nms", "wbf"]
MERGES = get_args(BoxMerge)
FUSE_IOU = 0.55  # weighted box fusion's cluster threshold (the value of Solovyev et al., 2021)


def fuse_boxes(rows: np.ndarray, passes: int, iou: float = FUSE_IOU) -> tuple[np.ndarray, np.ndarray]:
    """Weighted box fusion of detector rows from ``passes`` searches of one image (scales, the mirrored image):
    N x 15 (x, y, w, h, five landmark x/y pairs, score) -> (M x 15 fused rows, highest score, highest first).

    Rows are taken best first; one joins the first cluster whose fused box it overlaps by IoU >= ``iou``, else
    starts a cluster. A cluster's box and landmarks are the score-weighted means of its rows; its score is their
    mean score times the share of the passes that found it (at most 1), so a face every pass agrees on outranks
    one that a single pass saw. Where NMS keeps the best box and throws the others away, the average of several
    looser boxes sits closer to the face: on the 509 photos outside the held-out Test part (out of fold, YuNet_n
    at 1x and 2x, each also mirrored) faces under 16 px found at IoU 0.5 went from 76% to 83%.
    The highest score is returned beside the fused one for what was fitted on single-pass scores (BoxCorrection).
    """
    # hand-written: ensemble-boxes (the reference WBF) needs numba and pandas, and fuses no landmarks
    rows = np.asarray(rows, np.float64).reshape(-1, 15)
    if not len(rows):
        return rows, np.zeros(0)
    rows = rows[np.argsort(-rows[:, 14], kind="stable")]
    xyxy = xywh_to_xyxy(rows[:, :4])
    members: list[list[int]] = []
    fused = np.zeros((0, 4))
    for i in range(len(rows)):
        overlap = iou_matrix(xyxy[i:i + 1], fused)[0]
        j = int(np.argmax(overlap)) if len(overlap) else -1
        if j >= 0 and overlap[j] >= iou:
            members[j].append(i)
            w = rows[members[j], 14]
            fused[j] = (xyxy[members[j]] * w[:, None]).sum(0) / w.sum()
        else:
            members.append([i])
            fused = np.vstack([fused, xyxy[i]])
    out = np.empty((len(members), 15))
    best = np.empty(len(members))
    for k, (idx, b) in enumerate(zip(members, fused)):
        w = rows[idx, 14]
        out[k, :4] = b[0], b[1], b[2] - b[0], b[3] - b[1]
        out[k, 4:14] = (rows[idx, 4:14] * w[:, None]).sum(0) / w.sum()
        out[k, 14] = w.mean() * min(len(idx), passes) / passes
        best[k] = w.max()
    order = np.argsort(-out[:, 14], kind="stable")
    return out[order], best[order]
