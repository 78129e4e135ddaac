"""Image -> faces -> square crops -> one batched classifier call -> a label per face, and drawing them.
``build.py`` assembles a pipeline from a ``DetectConfig``; ``run.py`` is the loop over inputs.

Classifiers take raw RGB pixels (uint8 N x 3 x S x S; normalisation is inside the model), so the torch model of
a run and its ONNX export are interchangeable here.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Optional, Sequence

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own log lines would bury our one-line errors
import cv2  # noqa: E402
import numpy as np

from ..errors import ConfigError, DataError, ModelError
from ..images import array_to_uint8
from ..inference.backends import Classifier
from .faces import FACE_DETECTORS, Face, FaceDetector

if TYPE_CHECKING:
    pass

UNSURE = "unsure"
# faces whose box's shorter side is below this many pixels are `unsure`: the face classifier is trained on crowd
# photos where 71% of the faces are under 32 px, but under ~10 px there is too little face left to judge
MIN_FACE = 10
JSONL_FILE = "detections.jsonl"

# BGR
GREEN, RED, AMBER, ORANGE = (40, 170, 40), (40, 40, 220), (0, 180, 255), (0, 110, 240)
# a classifier class with one of these names means "not a face": its boxes are dropped (the second stage)
BACKGROUND_NAMES = ("background", "notaface", "noface", "nonface")


def is_background(label: str) -> bool:
    return "".join(ch for ch in label.lower() if ch.isalpha()) in BACKGROUND_NAMES


def mask_status(label: str) -> str:
    """'mask', 'no_mask', 'incorrect' or 'other' for a class name. A mask under the nose or on the chin
    (``MaskWornIncorrectly``, the Kaggle set's ``mask_weared_incorrect``) is not a mask."""
    key = "".join(ch for ch in label.lower() if ch.isalpha())
    if "mask" not in key:
        return "other"
    if any(w in key for w in ("incorrect", "wrong", "improper", "weared", "chin", "nose", "partial")):
        return "incorrect"
    if key.startswith(("without", "no", "unmask")) or "nomask" in key:
        return "no_mask"
    return "mask"
_PALETTE = [(200, 120, 40), (160, 60, 160), (60, 160, 160), (120, 120, 120), (40, 120, 200)]


@dataclass
class FaceResult:
    box: tuple[int, int, int, int]
    label: str
    confidence: float  # probability of the best guess among the face classes, given that the box is a face
    score: float  # face detector's score
    guess: str  # the classifier's best face class, kept when `label` is `unsure`
    landmarks: Optional[np.ndarray] = None
    probs: Optional[dict] = None  # class -> probability (the classifier's softmax, background excluded)
    face: float = 1.0  # 1 - P(background) where the classifier has a background class
    id: Optional[int] = None  # the face's number in its image, 1..N in reading order (``number_faces``)

    @property
    def unsure(self) -> bool:
        return self.label == UNSURE

    def to_dict(self) -> dict:
        d = {} if self.id is None else {"id": int(self.id)}
        d |= {"box": [int(v) for v in self.box], "label": self.label, "confidence": round(float(self.confidence), 4),
             "score": round(float(self.score), 4), "guess": self.guess, "unsure": self.unsure}
        if self.probs is not None:
            d["probs"] = {k: round(float(v), 5) for k, v in self.probs.items()}
            d["face"] = round(float(self.face), 5)
        return d


DEFAULT_MARGIN = 0.2  # context around a face box, a share of its longer side on each edge (crops and detection)


def square_crop(image: np.ndarray, box: Sequence[int], margin: float) -> tuple[int, int, int]:
    """(x, y, side) of a square around ``box`` grown by ``margin`` of its longer side on each edge, moved (and if
    need be shrunk) to lie inside the image."""
    h, w = image.shape[:2]
    x, y, bw, bh = box
    side = int(round(max(bw, bh) * (1.0 + 2.0 * margin)))
    side = max(1, min(side, w, h))
    cx, cy = x + bw / 2.0, y + bh / 2.0
    x0 = int(round(min(max(cx - side / 2.0, 0), w - side)))
    y0 = int(round(min(max(cy - side / 2.0, 0), h - side)))
    return x0, y0, side


def _to_bgr(image: np.ndarray, color: str) -> np.ndarray:
    """BGR uint8 of an H x W, H x W x 1, x 3 or x 4 array; other dtypes scaled as the file decoder scales them
    (``images.array_to_uint8``); an empty or oddly shaped array is a ``DataError`` naming its shape."""
    if not isinstance(image, np.ndarray):
        raise DataError(f"expected an image (an H x W x 3 NumPy array, a Pillow image or a path), got "
                        f"{type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise DataError(f"expected an H x W x 3 image, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise DataError(f"the image is empty: shape {image.shape} has no pixels")
    image = array_to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR if color == "bgr" else cv2.COLOR_RGBA2BGR)
    return image if color == "bgr" else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


class DetectionPipeline:
    """Faces of one image, each with a label, a confidence and the detector's score.

    A face is ``unsure`` when its box's shorter side is below ``min_face`` pixels, when the classifier's top
    probability is below ``min_confidence``, or (two classes) when the positive class's probability lies
    strictly between ``unsure_low`` and ``unsure_high``.
    """

    def __init__(self, detector: FaceDetector | str, classifier: Classifier, *, margin: float = DEFAULT_MARGIN,
                 min_face: int = MIN_FACE, unsure_low: float = 0.35, unsure_high: float = 0.65,
                 min_confidence: float = 0.5, positive_class: Optional[str] = None,
                 detector_options: Optional[dict] = None, min_face_prob: float = 0.5, tta: bool = False,
                 class_weights: Optional[dict] = None) -> None:
        if not 0.0 <= unsure_low <= unsure_high <= 1.0:
            raise ConfigError(f"need 0 <= unsure_low <= unsure_high <= 1, got {unsure_low} and {unsure_high}")
        if margin < 0:
            raise ConfigError(f"margin must be >= 0, got {margin}")
        if isinstance(detector, str):
            detector = FACE_DETECTORS.get(detector)(**(detector_options or {}))
        self.detector = detector
        self.classifier = classifier
        self.margin, self.min_face, self.min_confidence = margin, min_face, min_confidence
        self.unsure_low, self.unsure_high = unsure_low, unsure_high
        from ..classes import positive_index

        classes = list(classifier.classes)
        self.background = next((i for i, c in enumerate(classes) if is_background(c)), None)
        self.face_idx = [i for i in range(len(classes)) if i != self.background]
        if not self.face_idx:
            raise ModelError(f"the classifier's classes {classes} are all background")
        self.face_classes = [classes[i] for i in self.face_idx]
        self.min_face_prob = float(min_face_prob)
        # factors on each class's probability before the label is taken (the profile's, chosen on unseen photos)
        self.weights = np.array([float((class_weights or {}).get(c, 1.0)) for c in self.face_classes])
        self.tta = bool(tta)  # average each crop with its mirror image (still one classifier call per frame)
        self.positive = (positive_index(self.face_classes, positive_class) if len(self.face_classes) == 2 else None)

    def crops(self, image_bgr: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """uint8 N x 3 x S x S RGB crops, one per face, ready for one classifier call."""
        s = self.classifier.image_size
        out = np.empty((len(faces), 3, s, s), np.uint8)
        for i, f in enumerate(faces):
            x0, y0, side = square_crop(image_bgr, f.box, self.margin)
            crop = image_bgr[y0:y0 + side, x0:x0 + side]
            crop = cv2.resize(crop, (s, s), interpolation=cv2.INTER_AREA if side > s else cv2.INTER_LINEAR)
            out[i] = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)
        return out

    def __call__(self, image: np.ndarray, color: Literal["bgr", "rgb"] = "bgr") -> list[FaceResult]:
        bgr = _to_bgr(image, color)
        faces = self.detector.detect(bgr)
        if not faces:
            return []
        crops = self.crops(bgr, faces)
        if self.tta:
            both = self.classifier.predict_proba(np.concatenate([crops, crops[..., ::-1]]))
            probs = (both[:len(crops)] + both[len(crops):]) / 2
        else:
            probs = self.classifier.predict_proba(crops)
        results = []
        for f, p in zip(faces, probs):
            pf = p[self.face_idx]
            face = float(pf.sum()) if self.background is not None else 1.0
            if face < self.min_face_prob:  # the second stage: the classifier says this box is not a face
                continue
            cond = pf * self.weights  # class probabilities given that the box is a face, re-weighted (profile)
            cond = cond / max(float(cond.sum()), 1e-12)
            top = int(np.argmax(cond))
            conf = float(cond[top])
            unsure = (min(f.box[2], f.box[3]) < self.min_face or conf < self.min_confidence
                      or (self.positive is not None and self.unsure_low < cond[self.positive] < self.unsure_high))
            guess = self.face_classes[top]
            results.append(FaceResult(f.box, UNSURE if unsure else guess, conf, f.score, guess, f.landmarks,
                                      dict(zip(self.face_classes, pf.tolist())), face))
        for r, n in zip(results, number_faces([r.box for r in results])):
            r.id = n
        return results


def number_faces(boxes: Sequence[Sequence[float]]) -> list[int]:
    """Each box's number, 1..N in reading order: rows top to bottom, left to right within a row. A box joins a row
    when its centre lies within half the row's median box height of the row's first centre (faces of one
    crowd row sit at slightly different heights)."""
    if not len(boxes):
        return []
    a = np.asarray(boxes, np.float64).reshape(-1, 4)
    cx, cy, hh = a[:, 0] + a[:, 2] / 2, a[:, 1] + a[:, 3] / 2, a[:, 3]
    rows: list[list[int]] = []
    for i in np.argsort(cy, kind="stable"):
        if rows and cy[i] - cy[rows[-1][0]] <= 0.5 * float(np.median(hh[rows[-1]])):
            rows[-1].append(int(i))
        else:
            rows.append([int(i)])
    order = [i for row in rows for i in sorted(row, key=lambda j: (cx[j], cy[j]))]
    numbers = [0] * len(a)
    for n, i in enumerate(order, 1):
        numbers[i] = n
    return numbers


def label_color(label: str) -> tuple[int, int, int]:
    """Green for a mask, red for no mask, orange for a mask worn wrongly, amber for unsure (BGR); other classes
    get a fixed palette colour."""
    if label == UNSURE:
        return AMBER
    status = mask_status(label)
    if status != "other":
        return {"mask": GREEN, "no_mask": RED, "incorrect": ORANGE}[status]
    return _PALETTE[sum(map(ord, label)) % len(_PALETTE)]


LabelMode = Literal["full", "short", "id", "none"]
LABEL_MODES = ("full", "short", "id", "none")
_SHORT = {"mask": "mask", "no_mask": "no mask", "incorrect": "wrong", "other": ""}


def label_text(r: FaceResult, mode: LabelMode = "full") -> str:
    """What is written by a face: ``full`` "3 WithMask 97%", ``short`` "3 mask", ``id`` "3", ``none`` nothing.
    An unsure face reads "3 ? WithMask 41%", "3 ?" and "3"; the number is left out where a face has none."""
    num = f"{r.id} " if r.id is not None else ""
    if mode == "none":
        return ""
    if mode == "id":
        return num.strip() or ("?" if r.unsure else _SHORT[mask_status(r.label)] or r.label)
    if mode == "short":
        return num + ("?" if r.unsure else (_SHORT[mask_status(r.label)] or r.label))
    pct = int(r.confidence * 100)  # floor: 0.996 shows as 99%, never a certain-looking 100%
    return num + (f"{r.label} {pct}%" if not r.unsure else f"? {r.guess} {pct}%")  # amber + "?": unsure


def _overlap(a: np.ndarray, boxes: np.ndarray) -> float:
    """Total area of ``a`` (x1, y1, x2, y2) that falls inside each of ``boxes`` (N x 4), summed."""
    if not len(boxes):
        return 0.0
    w = np.clip(np.minimum(a[2], boxes[:, 2]) - np.maximum(a[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(a[3], boxes[:, 3]) - np.maximum(a[1], boxes[:, 1]), 0, None)
    return float((w * h).sum())


def place_labels(faces: Sequence[Sequence[int]], sizes: Sequence[tuple[int, int]], width: int,
                 height: int) -> list[tuple[int, int]]:
    """The top-left corner of each label (``sizes``: (w, h) each) by its face box (x, y, w, h): of the spots
    above, below, inside the top, left and right of the face (each moved inside the image), the one that
    covers the least of the labels placed so far, of the other faces and of the picture's edge, with a small
    preference in that order. Faces are placed in the order given (hand-written: no library places labels)."""
    fx = np.asarray(faces, np.float64).reshape(-1, 4)
    face_xyxy = np.column_stack([fx[:, 0], fx[:, 1], fx[:, 0] + fx[:, 2], fx[:, 1] + fx[:, 3]])
    placed: list[np.ndarray] = []
    out = []
    for i, ((x, y, bw, bh), (lw, lh)) in enumerate(zip(fx, sizes)):
        spots = [(x, y - lh - 1), (x, y + bh + 1), (x + 1, y + 1), (x - lw - 1, y + (bh - lh) / 2),
                 (x + bw + 1, y + (bh - lh) / 2), (x + bw - lw, y - lh - 1), (x + bw - lw, y + bh + 1)]
        others = np.delete(face_xyxy, i, axis=0)
        own = face_xyxy[i:i + 1]
        best, best_cost = None, math.inf
        for rank, (sx, sy) in enumerate(spots):
            cx = min(max(sx, 0), max(0, width - lw))
            cy = min(max(sy, 0), max(0, height - lh))
            a = np.array([cx, cy, cx + lw, cy + lh])
            cost = (3.0 * _overlap(a, np.asarray(placed).reshape(-1, 4)) + 2.0 * _overlap(a, others)
                    + 1.0 * _overlap(a, own) + abs(cx - sx) * lh + abs(cy - sy) * lw + 0.01 * rank * lw * lh)
            if cost < best_cost:
                best, best_cost = a, cost
        placed.append(best)  # type: ignore[arg-type]
        out.append((int(round(best[0])), int(round(best[1]))))  # type: ignore[index]
    return out


# a saved photo whose longer side is under this many px is drawn enlarged (by a whole factor, at most 4): a
# 400 x 261 crowd photo with 59 faces had labels covering the whole picture at its own size
READABLE_SIDE = 1200


def drawing_scale(shape: Sequence[int], min_side: int) -> int:
    """The whole factor an image of ``shape`` (H, W, ...) is enlarged by to be drawn on: 1, or up to 4 so its
    longer side reaches ``min_side`` (0: never enlarged)."""
    longer = max(int(shape[0]), int(shape[1]))
    return 1 if not min_side or longer >= min_side else min(4, math.ceil(min_side / max(longer, 1)))


def draw_results(image_bgr: np.ndarray, results: Sequence[FaceResult], fps: Optional[float] = None,
                 labels: LabelMode = "full", scale: int = 1) -> np.ndarray:
    """A copy of the image with a box per face and its label (``labels``: ``full`` "3 WithMask 97%", ``short``
    "3 mask", ``id`` "3" (the face's number, as in the JSON lines and the page's table), ``none``: boxes only),
    each label put where it covers the fewest other labels and faces; an FPS figure when given. ``scale``: the
    copy is the image enlarged that many times, boxes with it (``drawing_scale``: so a small photo's labels stay
    readable)."""
    if labels not in LABEL_MODES:
        raise ConfigError(f"--labels {labels!r} is not one of {', '.join(LABEL_MODES)}")
    k = int(scale)
    if k > 1:
        from dataclasses import replace

        image_bgr = cv2.resize(image_bgr, (image_bgr.shape[1] * k, image_bgr.shape[0] * k),
                               interpolation=cv2.INTER_LINEAR)
        results = [replace(r, box=tuple(int(v) * k for v in r.box)) for r in results]
    out = image_bgr.copy()
    h, w = out.shape[:2]
    thick = max(2, round(min(h, w) / 300))
    fscale = max(0.45, min(h, w) / 900)
    texts, sizes, scales = [], [], []
    for r in results:
        x, y, bw, bh = r.box
        cv2.rectangle(out, (x, y), (x + bw, y + bh), label_color(r.label), max(1, min(thick, bw // 30)))
        text = label_text(r, labels)
        fs = fscale
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
        room = max(1.5 * bw, 14 if labels == "id" else 40)
        if text and tw > room:  # small faces in a crowd get small labels, not a wall of text
            fs = max(0.25, fs * room / tw)
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
        texts.append(text)
        scales.append((fs, th, base))
        sizes.append((tw + 4, th + base + 2))
    keep = [i for i, t in enumerate(texts) if t]
    spots = place_labels([results[i].box for i in keep], [sizes[i] for i in keep], w, h)
    for i, (tx, ty) in zip(keep, spots):
        fs, th, base = scales[i]
        lw, lh = sizes[i]
        cv2.rectangle(out, (tx, ty), (tx + lw, ty + lh), label_color(results[i].label), -1)
        cv2.putText(out, texts[i], (tx + 2, ty + th + 1), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 1,
                    cv2.LINE_AA)
    if fps is not None:
        text = f"{fps:.1f} FPS"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fscale, 1)
        cv2.rectangle(out, (0, 0), (tw + 10, th + base + 10), (0, 0, 0), -1)
        cv2.putText(out, text, (5, th + 5), cv2.FONT_HERSHEY_SIMPLEX, fscale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
