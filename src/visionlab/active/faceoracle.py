"""An oracle for simulations and scripted walk-throughs: the label of a pooled face from annotated boxes
(``boxes.csv`` of facemask_boxes: image,width,height,xmin,ymin,xmax,ymax,label), by IoU with the face's box.

A face whose box overlaps no annotated face by ``min_iou`` is ``NotAFace``. (Not every face in those photos is
annotated, so a few real faces come out as NotAFace: the oracle is as noisy as its annotations.)
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np

from ..boxes import iou_matrix
from ..errors import DataError
from .facemodel import NOT_A_FACE

# the Kaggle set's spellings -> the bundled classifier's classes
LABELS = {"with_mask": "WithMask", "without_mask": "WithoutMask", "mask_weared_incorrect": "MaskWornIncorrectly"}
MIN_IOU = 0.3


class BoxOracle:
    def __init__(self, boxes_csv: str | Path, min_iou: float = MIN_IOU) -> None:
        self.path = Path(boxes_csv)
        self.min_iou = min_iou
        self.boxes: dict[str, list[tuple[np.ndarray, str]]] = defaultdict(list)
        try:
            with open(self.path, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    xyxy = np.array([float(row["xmin"]), float(row["ymin"]), float(row["xmax"]) + 1,
                                     float(row["ymax"]) + 1])
                    self.boxes[Path(row["image"]).name].append((xyxy, LABELS.get(row["label"], row["label"])))
        except (OSError, KeyError, ValueError) as e:
            raise DataError(f"{self.path} is not a boxes.csv (image,width,height,xmin,ymin,xmax,ymax,label): {e}") \
                from None

    def label(self, image: str, box_xywh, scale: tuple[float, float] = (1.0, 1.0)) -> Optional[str]:
        """The class of the annotated face ``box_xywh`` (in pixels of a copy of ``image`` scaled by ``scale``)
        overlaps most, NotAFace when none overlaps ``min_iou``; None when the image has no annotations at all."""
        truth = self.boxes.get(Path(image).name)
        if truth is None:
            return None
        sx, sy = scale
        x, y, w, h = (float(v) for v in box_xywh)
        mine = np.array([[x / sx, y / sy, (x + w) / sx, (y + h) / sy]])
        iou = iou_matrix(mine, np.stack([b for b, _ in truth]))[0]
        j = int(iou.argmax())
        return truth[j][1] if iou[j] >= self.min_iou else NOT_A_FACE

    def face(self, face: dict) -> Optional[str]:
        """The label of a pooled face (facepool record) cut from an annotated photo itself."""
        return self.label(face["source"], face["box"])
