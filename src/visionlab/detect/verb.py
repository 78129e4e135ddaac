"""``visionlab.detect(...)``: the Python twin of `visionlab detect`, over ``run_detection``, ``detect_faces`` and
``detect_and_evaluate`` (it sits above all three, so none of them imports another through it)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import ConfigError
from ..images import IMAGE_SUFFIXES
from .config import DetectConfig, make_config
from .evaluate import detect_and_evaluate, scoring_config
from .pipeline import FaceResult
from .run import default_out_dir, detect_faces, run_detection


def detect(input: "str | os.PathLike | int | np.ndarray | Any" = None, *, out: "str | os.PathLike | None" = None,
           camera: Optional[int] = None, truth: "str | os.PathLike | None" = None, subset: Optional[str] = None,
           slices: "str | os.PathLike | None" = None, config: Optional[DetectConfig] = None,
           **fields: Any) -> "list[FaceResult] | dict":
    """``visionlab.detect``, the twin of `visionlab detect`: the same inputs and option names (``fields`` are
    ``DetectConfig`` fields, e.g. ``quality="fast"``, ``blur=True``).

    One photo (a path, an H x W x 3 uint8 RGB array or a PIL image) without ``out``: its faces, nothing written.
    A folder, a video, a stream URL (rtsp://, http(s)://), a camera index, or anything with ``out``:
    ``run_detection`` writes the annotated output and JSON lines (into ``out``, default a new detections-<time>
    folder, as the CLI) and returns its summary. ``model`` may also be a loaded ``Classifier``. ``camera``: read
    camera N instead of ``input``. ``truth`` (with ``subset``, ``slices``): score the boxes, as
    `visionlab detect --truth`, and return the metrics."""
    model = fields.pop("model", None)
    classifier = model if model is not None and not isinstance(model, (str, os.PathLike)) else None  # loaded
    cfg = make_config(config, model=None if classifier is not None else model, **fields)
    if truth is None and (subset, slices) != (None, None):
        raise ConfigError("subset and slices go with truth")
    if input is not None and camera is not None:
        raise ConfigError("give input (image, folder, video or array) or camera=N, not both")
    dest = out if out is not None else default_out_dir()  # a name only: nothing is made until a run writes
    if truth is not None:
        return detect_and_evaluate(input, scoring_config(cfg),
                                   dest, truth, subset=subset, slices=slices, classifier=classifier)
    if camera is not None:
        return run_detection(int(camera), cfg, dest, classifier=classifier)
    if not isinstance(input, (str, os.PathLike, int)):
        return detect_faces(input, cfg, classifier=classifier)
    if isinstance(input, (str, os.PathLike)) and out is None and Path(input).suffix.lower() in IMAGE_SUFFIXES \
            and Path(input).is_file():
        return detect_faces(input, cfg, classifier=classifier)
    return run_detection(input, cfg, dest, classifier=classifier)
