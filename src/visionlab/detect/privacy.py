"""Keep the people in saved images and video unidentifiable: every detected face blurred or pixelated.

Call ``anonymize`` on the frame before ``draw_results``: the label's colour frame and text are drawn on top
of the blurred face and stay readable.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import ConfigError

BLUR_MODES = ("blur", "pixelate")
GROW = 0.1  # each box grows by this fraction of its width/height on every side: hair, ears and chin go too
BLUR_SIDE = 32  # blurring is done at this size
PIXEL_BLOCKS = 6  # a pixelated face is at most this many blocks across its longer side


def check_mode(mode: str) -> str:
    """``mode`` if it is one of ``BLUR_MODES``, else a one-line ``ConfigError``."""
    if mode not in BLUR_MODES:
        raise ConfigError(f"unknown --blur mode {mode!r}; choose one of: {', '.join(BLUR_MODES)}")
    return mode


def _box(b: Any) -> Sequence[float]:
    if isinstance(b, dict):  # FaceResult.to_dict()
        return b["box"]
    if isinstance(b, (tuple, list, np.ndarray)):  # a plain (x, y, w, h)
        return b
    return b.box  # a FaceResult or a Face


def grown_box(box: Sequence[float], shape: Sequence[int], grow: float = GROW) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of ``box`` (x, y, w, h) grown by ``grow`` of its size on each side, clipped to an
    image of ``shape``; empty (x1 <= x0 or y1 <= y0) when the box lies outside."""
    h, w = int(shape[0]), int(shape[1])
    x, y, bw, bh = (float(v) for v in box[:4])
    x0, y0 = int(np.floor(x - grow * bw)), int(np.floor(y - grow * bh))
    x1, y1 = int(np.ceil(x + bw * (1 + grow))), int(np.ceil(y + bh * (1 + grow)))
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def anonymize(image_bgr: np.ndarray, boxes: Iterable[Any], mode: str = "blur", *, grow: float = GROW) -> np.ndarray:
    """A copy of ``image_bgr`` with every face region (its box grown by ``grow`` on each side) blurred or
    pixelated so strongly that no face detector finds it again; pixels outside the regions are untouched.

    ``boxes``: ``(x, y, w, h)`` tuples, ``FaceResult``/``Face`` objects or ``FaceResult.to_dict()`` dicts.
    ``mode``: ``blur`` (a Gaussian blur whose sigma is a quarter of the region's longer side, applied twice) or
    ``pixelate`` (at most ``PIXEL_BLOCKS`` blocks across the face, each the region's mean colour).
    """
    import cv2

    check_mode(mode)
    out = np.array(image_bgr, copy=True)
    for b in boxes:
        x0, y0, x1, y1 = grown_box(_box(b), out.shape, grow)
        if x1 <= x0 or y1 <= y0:
            continue
        roi = out[y0:y1, x0:x1]
        rh, rw = roi.shape[:2]
        if mode == "blur":
            # a Gaussian blur with sigma a quarter of the region's longer side, done on the region shrunk to
            # BLUR_SIDE px (the same result, ~1 ms instead of ~400 ms a face) and enlarged back smoothly;
            # reflected at the region's edge, so nothing leaks in from outside and nothing of the face leaks out;
            # twice, so eyes and mouth leave no trace at all
            f = min(1.0, BLUR_SIDE / max(rw, rh))
            small = cv2.resize(roi, (max(1, round(rw * f)), max(1, round(rh * f))), interpolation=cv2.INTER_AREA)
            sigma = max(small.shape[:2]) / 4.0
            k = 2 * int(np.ceil(3 * sigma)) + 1
            for _ in range(2):
                small = cv2.GaussianBlur(small, (k, k), sigma, borderType=cv2.BORDER_REFLECT)
            roi = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_LINEAR)
        else:
            block = max(1.0, max(rw, rh) / PIXEL_BLOCKS)
            sw, sh = max(1, int(round(rw / block))), max(1, int(round(rh / block)))
            small = cv2.resize(roi, (sw, sh), interpolation=cv2.INTER_AREA)
            roi = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)
        out[y0:y1, x0:x1] = roi
    return out


def faces_stored(blur: "str | None", save_frames: bool = True) -> str:
    """What the saved output holds of the faces: ``none`` (no image or video written), ``blurred``,
    ``pixelated`` or ``unblurred``; for the run's JSON summary."""
    if not save_frames:
        return "none"
    if blur is None:
        return "unblurred"
    return {"blur": "blurred", "pixelate": "pixelated"}[check_mode(blur)]


def storage_notice(blur: "str | None", save_frames: bool = True) -> str:
    """The one line ``visionlab detect`` prints first: whether the faces filmed end up on disk."""
    stored = faces_stored(blur, save_frames)
    if stored == "none":
        return ("faces stored: none (--no-save-frames): no image or video is written, only detections.jsonl "
                "(boxes and labels) and the summary")
    if stored == "unblurred":
        return ("faces stored: yes, unblurred: the annotated images and video show every face; --blur anonymises "
                "them, --no-save-frames keeps no images")
    flag = "--pixelate" if blur == "pixelate" else "--blur"
    return (f"faces stored: {stored} ({flag}): every detected face is {stored} in the saved images and "
            f"video; a face the detector misses stays visible")
