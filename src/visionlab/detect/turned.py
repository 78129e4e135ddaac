"""Hard examples of turned faces: extra Train copies of the face crops that YuNet's landmarks show turned aside.

Side faces are the special-case slice the classifier reads worst (docs/special_cases.md): an unmasked or
below-the-nose face seen from the side is called masked, or not a face. They are rare in the training photos (about
one face in ten), so ``repeat_turned(crops, copies)`` gives each of them ``copies`` more chances per epoch:

1. YuNet's five landmarks are found on every real Train face crop (not Background, not a synthetic crop, not
   a copy already made);
2. the turn of a face is how far its nose tip sits from the point between its eyes, in eye distances
   (``turn``): about 0 for a frontal face, 0.5 when the nose is in line with one eye;
3. a crop with ``abs(turn) >= TURN_THRESHOLD`` is written again ``copies`` times (``<crop>_t<k>.jpg``, the same
   bytes: training's augmentation makes each pass differ), listed in ``turned.csv``.

The threshold was set from the geometry before looking at any tag; on the shared tagged faces it selects 20 of the
27 side faces whose landmarks YuNet finds and 1 in 10 of the others (median ``abs(turn)`` 0.55 against 0.09).
Only Train crops are read or written, so a fold's copies never carry a Validation or Test face.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..images import IMAGE_SUFFIXES
from ..io import atomic_write_bytes, write_csv
from .cropnames import is_jitter_copy, is_synthetic, turned_name

TURN_THRESHOLD = 0.3
BACKGROUND = "Background"


def turn(lm: np.ndarray) -> float:
    """Signed horizontal offset of the nose tip (landmark 2) from the eyes' midpoint (0, 1), in eye distances."""
    lm = np.asarray(lm, np.float64).reshape(5, 2)
    eye_distance = float(np.linalg.norm(lm[0] - lm[1]))
    if eye_distance <= 0:
        raise ValueError("both eyes at one point: no turn can be measured")
    return float((lm[2, 0] - (lm[0, 0] + lm[1, 0]) / 2) / eye_distance)


def repeat_turned(crops: str | Path, copies: int, detector=None, threshold: float = TURN_THRESHOLD) -> dict:
    """Write ``copies`` extra copies of each turned Train face crop (module doc). Returns counts per class:
    crops read, crops with landmarks, turned crops, files written."""
    from .synthmask import landmarks

    crops = Path(crops)
    train = crops / "Train"
    if not train.is_dir():
        raise DataError(f"{crops} has no Train split: give a `visionlab data faces` folder")
    if copies < 1:
        raise DataError(f"copies must be at least 1, not {copies}")
    if detector is None:
        from .faces import build_detector

        detector = build_detector("yunet", score_threshold=0.5)
    rows, counts = [], {}
    for class_dir in sorted(d for d in train.iterdir() if d.is_dir() and d.name != BACKGROUND):
        paths = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                       and not is_jitter_copy(p) and not is_synthetic(p))
        found = landmarks(paths, detector)
        turns = {p: turn(lm) for p, lm in found.items()}
        turned = {p: t for p, t in turns.items() if abs(t) >= threshold}
        for p, t in turned.items():
            data = p.read_bytes()
            for k in range(copies):
                atomic_write_bytes(class_dir / turned_name(p, k), data)
            rows.append({"file": f"{class_dir.name}/{p.name}", "turn": round(t, 3), "copies": copies})
        counts[class_dir.name] = {"crops": len(paths), "landmarks": len(found), "turned": len(turned),
                                  "written": len(turned) * copies}
    write_csv(crops / "turned.csv", rows)
    return counts
