"""What the service runs per image: ``visionlab.detect``'s pipeline (faces -> square crops -> one batched
classifier call -> a label per face, ``unsure`` where the classifier is not sure), loaded once and shared by
the inference threads.

A ``FaceDetectorYN`` keeps its input size as state, so each inference thread gets its own detector (a
``DetectionPipeline`` per thread); the classifier (an ONNX Runtime session or a torch model in eval mode)
is shared, both are safe to call from several threads.
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from ..detect.build import Built, build_pipeline
from ..detect.config import DetectConfig, make_config
from ..detect.faces import quiet_opencv
from ..detect.pipeline import DetectionPipeline, FaceResult, draw_results
from ..errors import ModelError, VisionlabError
from ..inference.load import load_classifier
from ..io import sha256_file

DETECT_MAX_SIDE = 1600  # larger photos are shrunk for the detector (a 40 MP frame would take seconds); boxes
#                         come back in the original's pixels
ANNOTATE_MAX_SIDE = 1600
WARM_UP_FRAME = np.full((240, 320, 3), 128, np.uint8)  # Engine.warm_up's: flat grey, no face; every inference
WARM_UP_FRAME.flags.writeable = False  # thread warms up on this one array at once, so nothing may write to it


def local_face_model() -> Optional[Path]:
    """A YuNet file named by $VISIONLAB_FACE_MODEL; otherwise None, and the detector takes the bundled one."""
    env = os.environ.get("VISIONLAB_FACE_MODEL")
    return Path(env) if env else None


def first_pipeline(config: DetectConfig, classifier) -> Built:
    """``build_pipeline`` for photos with ``config``; when no face model was named and YuNet cannot load, the
    Haar cascade (said on stderr), so a service still starts. Tried here so a bad file fails at start."""
    try:
        return build_pipeline(config, classifier=classifier, kind="image")
    except ModelError as e:
        if config.face_model is not None or config.detector not in (None, "yunet"):
            raise
        first = e
    try:
        built = build_pipeline(config.with_(detector="haar"), classifier=classifier, kind="image")
    except ModelError:
        raise ModelError(f"no face detector: {first} (and no Haar cascade either); pass --face-model PATH") from None
    print(f"visionlab serve: no YuNet model ({first}); using the Haar cascade, which misses most masked faces",
          file=sys.stderr)
    return built


class _Timed:
    """Wraps one thread's detector or the classifier so the pipeline's single call still yields the time each
    stage took and the classifier's probabilities (the ``unsure`` rule stays in ``DetectionPipeline``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.probs: Optional[np.ndarray] = None

    def __getattr__(self, name: str) -> Any:  # name, classes, image_size, model_path, ...
        return getattr(self.inner, name)

    def detect(self, image: np.ndarray):
        t0 = time.perf_counter()
        try:
            return self.inner.detect(image)
        finally:
            self.seconds = time.perf_counter() - t0

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            self.probs = self.inner.predict_proba(batch)
            return self.probs
        finally:
            self.seconds = time.perf_counter() - t0


def served_files(classifier) -> list[Path]:
    """The ONNX file(s) a classifier loaded from a file runs: one, or an averaged model's networks, first first."""
    from ..inference.average import networks
    from ..inference.backends import OnnxClassifier

    return [m.path for m in networks(classifier) if isinstance(m, OnnxClassifier)]


def model_version(run: Optional[Path], classifier) -> str:
    """What the service reports as its model's version: the first 12 hex digits of the sha256 of the run's weights,
    or of the ONNX file served (of all of an averaged model's files, in order)."""
    from ..runs import MODEL_FILE

    if run is not None:
        weights = run / MODEL_FILE
        files = [weights if weights.is_file() else next(iter(sorted(run.glob("model.*"))), weights)]
    else:
        files = served_files(classifier)
    if not files or not all(f.is_file() for f in files):
        return "unknown"
    if len(files) == 1:
        return sha256_file(files[0])[:12]
    import hashlib

    return hashlib.sha256("".join(sha256_file(f) for f in files).encode()).hexdigest()[:12]


class Engine:
    """The run's classifier and a face detector, loaded once; ``predict`` may be called from many threads."""

    def __init__(self, run_dir: str | Path | None = None, face_model: Optional[str | Path] = None,
                 backend: str = "onnx", config: Optional[DetectConfig] = None) -> None:
        from ..runs import load_run

        # a run folder, an exported .onnx file, or None: the bundled face-mask classifier
        is_run = run_dir is not None and Path(run_dir).suffix.lower() != ".onnx"
        self.run = load_run(run_dir) if is_run else None  # a clear ModelError for a folder that is not a run
        self.classifier = None
        if backend == "onnx" or not is_run:
            try:  # exports RUN/model.onnx when it is missing or stale, as `visionlab detect` does
                self.classifier = load_classifier(run_dir, "onnx", threads=1)
            except (VisionlabError, OSError, ImportError, RuntimeError) as e:
                if not is_run:
                    raise
                print(f"visionlab serve: ONNX Runtime unavailable for this run ({e}); using torch", file=sys.stderr)
        if self.classifier is None:
            self.classifier = load_classifier(run_dir, "torch")
        self.backend = self.classifier.backend
        from ..detect.pipeline import is_background

        self.classes = [c for c in self.classifier.classes if not is_background(c)]  # what a face can be
        self.version = model_version(self.run.path if self.run is not None else None, self.classifier)
        # photos: the accurate setting of the model's profile, the same answers as `visionlab detect photo.jpg`
        face = face_model if face_model is not None else local_face_model()
        given = config or DetectConfig()
        self.config = make_config(given, face_model=given.face_model or face, quality="accurate",
                                  detect_side=given.detect_side or DETECT_MAX_SIDE)
        self._local = threading.local()
        with quiet_opencv():
            first = first_pipeline(self.config, self.classifier)
        self.config = first.config  # haar when YuNet could not load
        self.detector = first.pipeline.detector
        self._local.pipeline = self._timed(first.pipeline)

    @staticmethod
    def _timed(p: DetectionPipeline) -> DetectionPipeline:
        p.detector, p.classifier = _Timed(p.detector), _Timed(p.classifier)
        return p

    def _pipeline(self) -> DetectionPipeline:
        p = getattr(self._local, "pipeline", None)
        if p is None:  # each inference thread its own detector (FaceDetectorYN keeps its input size as state)
            with quiet_opencv():
                p = self._timed(build_pipeline(self.config, classifier=self.classifier, kind="image").pipeline)
            self._local.pipeline = p
        return p

    def predict(self, rgb: np.ndarray) -> tuple[list[tuple[FaceResult, dict[str, float]]], dict[str, float]]:
        """Faces of an H x W x 3 uint8 RGB image in reading order (their numbers 1..N: rows top to bottom, left to
        right within a row), each with its class probabilities; and the
        milliseconds spent detecting and classifying."""
        pipe = self._pipeline()
        pipe.classifier.probs, pipe.classifier.seconds = None, 0.0
        results = pipe(rgb, color="rgb")  # boxes the background class rejects are already gone
        faces = [(r, {c: round(float(v), 4) for c, v in (r.probs or {}).items()}) for r in results]
        faces.sort(key=lambda f: f[0].id or 0)  # as a person reads the photo: the faces' numbers
        return faces, {"detect_ms": pipe.detector.seconds * 1e3, "classify_ms": pipe.classifier.seconds * 1e3}

    def warm_up(self) -> None:
        """One pass through the detector and the classifier, so the first request pays no lazy set-up. The frame
        is flat grey, on which no detector finds a face (tests/serve/test_engine.py): the bundled model's photo
        setting took random pixels for 92 faces, and classifying them all cost 25 s of every start."""
        self.predict(WARM_UP_FRAME)
        s = int(self.classifier.image_size)
        self.classifier.predict_proba(np.zeros((2, 3, s, s), np.uint8))

    def info(self) -> dict[str, Any]:
        det = self.detector
        detector = det.describe()
        if self.run is None:  # an .onnx file: the bundled classifier's card says what it is
            from ..assets import CLASSIFIER, card

            onnx = served_files(self.classifier)[0]
            c = card() if onnx.name == CLASSIFIER else {}
            val = c.get("detection", {}).get("Validation", {})
            return {"run": onnx.name, "model": c.get("architecture", onnx.stem), "family": "backbone",
                    "backbone": c.get("model", "efficientnet_lite0") if c else None, "classes": self.classes,
                    "image_size": int(self.classifier.image_size), "version": self.version, "backend": self.backend,
                    "metrics": {"map50": val.get("map50"), "face_recall": val.get("face_recall"),
                                "test_acc": c.get("crop_test", {}).get("accuracy")} if c else {},
                    "detector": detector}
        cfg = self.run.config
        family = None
        try:
            from ..models import MODELS
            family = MODELS.meta(cfg.model).get("family")
        except Exception:  # an unregistered model name still loads from its own file
            pass
        return {"run": self.run.path.name, "model": cfg.model, "family": family,
                "backbone": cfg.model if family not in ("mlp", "cnn", None) else None, "classes": self.classes,
                "image_size": int(self.classifier.image_size), "version": self.version, "backend": self.backend,
                "metrics": scalar_metrics(self.run.metrics), "detector": detector}


def scalar_metrics(metrics: dict) -> dict[str, Any]:
    """The top-level numbers and words of metrics.json (nested tables and plot paths left out, NaN as null)."""
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, bool) or v is None or isinstance(v, str):
            out[k] = v
        elif isinstance(v, (int, float)):
            out[k] = v if math.isfinite(v) else None
    return out


def annotate(rgb: np.ndarray, faces: list[FaceResult], labels: str = "full") -> bytes:
    """A JPEG of the image with the detection module's boxes and labels (``labels``: full, short, id or none; at
    most ANNOTATE_MAX_SIDE a side)."""
    out = draw_results(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), faces, labels=labels)  # type: ignore[arg-type]
    h, w = out.shape[:2]
    scale = min(1.0, ANNOTATE_MAX_SIDE / max(h, w))
    if scale < 1.0:
        out = cv2.resize(out, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()

