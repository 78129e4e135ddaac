"""Synthetic incorrectly-worn masks: a mask moved below the nose, made from an unmasked and a masked face crop.

The incorrectly-worn class is the rarest (about 3% of the annotated faces) and the one the classifier misses
most (docs/detection.md). ``synthesize(crops, n)`` adds ``n`` crops to ``crops/Train/MaskWornIncorrectly/``:

1. YuNet's five landmarks (eyes, nose tip, mouth corners) are found on the Train split's WithoutMask and WithMask
   crops (the crops of `visionlab data faces`: the face with the pipeline's margin around it);
2. for each new crop an unmasked face (the wearer) and a masked face (the donor) are drawn; the donor is warped
   onto the wearer by the similarity transform that maps its eyes and mouth corners onto the wearer's (OpenCV's
   estimateAffinePartial2D), so its mask lands where the wearer's mouth is;
3. the warped donor's mask is pasted only below a line drawn between the wearer's nose tip and upper lip (a
   random height: nostrils showing, the mask on the mouth) or, for a quarter of them, below the mouth (a mask on
   the chin), with a feathered top edge and the sides bounded by the mouth corners' width, so the nose stays
   the wearer's own.

Only Train crops are read, so a fold's synthetic crops never carry a Validation or Test face. Each written file's
name records its two sources (``synth_<wearer>__<donor>.jpg``); a list of them is written to
``synthetic.csv`` beside the split. The user's files are never touched: this writes into the crop folder the
build made.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from ..errors import DataError
from ..images import IMAGE_SUFFIXES
from ..io import atomic_write_bytes, write_csv
from .cropnames import is_jitter_copy, synthetic_name

MWI, WITH, WITHOUT = "MaskWornIncorrectly", "WithMask", "WithoutMask"
MIN_EYE_DISTANCE = 12  # px on the crop: smaller faces give landmarks too rough to place a mask with


def landmarks(paths: list[Path], detector) -> dict[Path, np.ndarray]:
    """path -> 5 x 2 landmarks of the highest-scoring face YuNet finds on the crop (crops where it finds none, or
    eyes closer than MIN_EYE_DISTANCE, are left out)."""
    out: dict[Path, np.ndarray] = {}
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            continue
        # a crop is nearly all face: YuNet places landmarks well only with some room around the face
        pad = img.shape[0] // 3
        faces = detector.detect(cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128,) * 3))
        if not faces or faces[0].landmarks is None:
            continue
        lm = np.asarray(faces[0].landmarks, np.float32).reshape(5, 2) - pad
        if np.linalg.norm(lm[0] - lm[1]) >= MIN_EYE_DISTANCE:
            out[p] = lm
    return out


def compose(wearer: np.ndarray, lw: np.ndarray, donor: np.ndarray, ld: np.ndarray, rng: np.random.Generator
            ) -> Optional[np.ndarray]:
    """The wearer (BGR) with the donor's mask below the nose (see the module doc); None where the landmarks
    do not give a usable geometry."""
    idx = [0, 1, 3, 4]  # eyes and mouth corners: the nose tip of a masked face is a guess under the fabric
    m, _ = cv2.estimateAffinePartial2D(ld[idx], lw[idx])
    if m is None:
        return None
    h, w = wearer.shape[:2]
    warped = cv2.warpAffine(donor, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    nose, mouth_r, mouth_l = lw[2], lw[3], lw[4]
    mouth_y = (mouth_r[1] + mouth_l[1]) / 2
    if mouth_y - nose[1] < 3:
        return None
    chin = rng.random() < 0.25
    top = mouth_y + rng.uniform(0.1, 0.4) * (mouth_y - nose[1]) if chin else \
        nose[1] + rng.uniform(0.3, 0.7) * (mouth_y - nose[1])
    eyes = float(np.linalg.norm(lw[0] - lw[1]))
    cx = (mouth_r[0] + mouth_l[0]) / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    feather = max(1.5, 0.1 * (mouth_y - nose[1]) + 1)
    # the lower face: an ellipse about the mouth, as wide as the cheeks and reaching below the chin
    ell = ((xx - cx) / (1.05 * eyes)) ** 2 + ((yy - mouth_y) / (1.1 * eyes)) ** 2
    inside = np.clip((1.0 - ell) * eyes / (2 * feather), 0, 1)
    a = (np.clip((yy - top) / feather + 0.5, 0, 1) * inside)[..., None]  # soft top edge
    return (warped.astype(np.float32) * a + wearer.astype(np.float32) * (1 - a)).round().clip(0, 255).astype(np.uint8)


def synthesize(crops: str | Path, n: int, seed: int = 0, detector=None) -> dict:
    """Write ``n`` synthetic incorrectly-worn crops into ``crops/Train/MaskWornIncorrectly`` (module doc).
    Returns counts: wearers and donors with landmarks, crops written."""
    crops = Path(crops)
    train = crops / "Train"
    if not (train / WITHOUT).is_dir() or not (train / WITH).is_dir():
        raise DataError(f"{crops} has no Train/{WITHOUT} and Train/{WITH}: give a `visionlab data faces` folder")
    if detector is None:
        from .faces import build_detector

        detector = build_detector("yunet", score_threshold=0.5)

    def pick(d: Path) -> list[Path]:  # unique sources only: crop folders hold jittered copies of rare classes
        return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not is_jitter_copy(p))

    wearers = landmarks(pick(train / WITHOUT), detector)
    donors = landmarks(pick(train / WITH), detector)
    if not wearers or not donors:
        raise DataError(f"no landmarks found on {train}'s {WITHOUT} or {WITH} crops: cannot synthesize")
    rng = np.random.default_rng(seed)
    wl, dl = list(wearers), list(donors)
    out_dir = train / MWI
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, tries = [], 0
    while len(rows) < n and tries < 5 * n:
        tries += 1
        wp, dp = wl[rng.integers(len(wl))], dl[rng.integers(len(dl))]
        wimg, dimg = cv2.imread(str(wp)), cv2.imread(str(dp))
        if wimg is None or dimg is None:
            continue
        ld = donors[dp]
        if dimg.shape != wimg.shape:  # crops of one cut share one size; other folders may not
            ld = ld * np.array([wimg.shape[1] / dimg.shape[1], wimg.shape[0] / dimg.shape[0]], np.float32)
            dimg = cv2.resize(dimg, (wimg.shape[1], wimg.shape[0]), interpolation=cv2.INTER_AREA)
        img = compose(wimg, wearers[wp], dimg, ld, rng)
        if img is None:
            continue
        name = synthetic_name(len(rows), wp, dp)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            continue
        atomic_write_bytes(out_dir / name, buf.tobytes())
        rows.append({"file": name, "wearer": wp.name, "donor": dp.name})
    write_csv(crops / "synthetic.csv", rows)
    return {"wearers": len(wearers), "donors": len(donors), "written": len(rows)}
