"""Image -> faces -> square crops -> one batched classifier call -> a label per face, and drawing them.
``build.py`` assembles a pipeline from a ``DetectConfig``; ``run.py`` is the loop over inputs.

Classifiers take raw RGB pixels (uint8 N x 3 x S x S; normalisation is inside the model), so the torch model of
a run and its ONNX export are interchangeable here.
"""
from __future__ import annotations

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

    @property
    def unsure(self) -> bool:
        return self.label == UNSURE

    def to_dict(self) -> dict:
        d = {"box": [int(v) for v in self.box], "label": self.label, "confidence": round(float(self.confidence), 4),
             "score": round(float(self.score), 4), "guess": self.guess, "unsure": self.unsure}
        if self.probs is not None:
            d["probs"] = {k: round(float(v), 5) for k, v in self.probs.items()}
            d["face"] = round(float(self.face), 5)
        return d


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

    def __init__(self, detector: FaceDetector | str, classifier: Classifier, *, margin: float = 0.2,
                 min_face: int = MIN_FACE, unsure_low: float = 0.35, unsure_high: float = 0.65,
                 min_confidence: float = 0.5, positive_class: Optional[str] = None,
                 detector_options: Optional[dict] = None, min_face_prob: float = 0.5, tta: bool = False) -> None:
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
            cond = pf / max(face, 1e-12)  # class probabilities given that the box is a face
            top = int(np.argmax(cond))
            conf = float(cond[top])
            unsure = (min(f.box[2], f.box[3]) < self.min_face or conf < self.min_confidence
                      or (self.positive is not None and self.unsure_low < cond[self.positive] < self.unsure_high))
            guess = self.face_classes[top]
            results.append(FaceResult(f.box, UNSURE if unsure else guess, conf, f.score, guess, f.landmarks,
                                      dict(zip(self.face_classes, pf.tolist())), face))
        return results


def label_color(label: str) -> tuple[int, int, int]:
    """Green for a mask, red for no mask, orange for a mask worn wrongly, amber for unsure (BGR); other classes
    get a fixed palette colour."""
    if label == UNSURE:
        return AMBER
    status = mask_status(label)
    if status != "other":
        return {"mask": GREEN, "no_mask": RED, "incorrect": ORANGE}[status]
    return _PALETTE[sum(map(ord, label)) % len(_PALETTE)]


def draw_results(image_bgr: np.ndarray, results: Sequence[FaceResult], fps: Optional[float] = None) -> np.ndarray:
    """A copy of the image with a box and "label confidence" per face, and an FPS figure when given."""
    out = image_bgr.copy()
    h, w = out.shape[:2]
    thick = max(2, round(min(h, w) / 300))
    fscale = max(0.45, min(h, w) / 900)
    for r in results:
        x, y, bw, bh = r.box
        col = label_color(r.label)
        cv2.rectangle(out, (x, y), (x + bw, y + bh), col, max(1, min(thick, bw // 30)))
        pct = int(r.confidence * 100)  # floor: 0.996 shows as 99%, never a certain-looking 100%
        text = f"{r.label} {pct}%" if r.label != UNSURE else f"? {r.guess} {pct}%"  # amber + "?": unsure
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fscale, 1)
        fs = fscale
        if tw > max(1.5 * bw, 40):  # small faces in a crowd get small labels, not a wall of overlapping text
            fs = max(0.3, fscale * max(1.5 * bw, 40) / tw)
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
        tx = max(0, min(x, w - tw - 4))
        ty = y - 4 if y - th - base - 4 >= 0 else min(h - base, y + bh + th + 4)
        cv2.rectangle(out, (tx, ty - th - base), (tx + tw + 4, ty + base // 2), col, -1)
        cv2.putText(out, text, (tx + 2, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 1, cv2.LINE_AA)
    if fps is not None:
        text = f"{fps:.1f} FPS"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fscale, 1)
        cv2.rectangle(out, (0, 0), (tw + 10, th + base + 10), (0, 0, 0), -1)
        cv2.putText(out, text, (5, th + 5), cv2.FONT_HERSHEY_SIMPLEX, fscale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
