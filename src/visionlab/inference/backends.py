"""Classifier backends: a face/image classifier as ``predict_proba(uint8 N x 3 x S x S) -> N x C``, run with torch
or ONNX Runtime. Detection (detect/pipeline.py), ``visionlab predict`` and the service all classify through these.

Classifiers take raw RGB pixels (normalisation is inside the model), so the torch model of a run and its ONNX
export are interchangeable.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional, Protocol, Sequence

import numpy as np

from ..errors import ConfigError, ModelError

if TYPE_CHECKING:
    from ..detect.profile import DetectProfile


class Classifier(Protocol):
    classes: list[str]
    image_size: int
    profile: Optional["DetectProfile"]  # how to detect and crop faces for it (detect/profile.py), or None

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """uint8 N x 3 x S x S RGB pixels -> probabilities N x C."""
        ...


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class TorchClassifier:
    """A visionlab torch model (raw pixels in, logits out) as a ``Classifier``."""

    def __init__(self, model, classes: Sequence[str], image_size: int) -> None:
        self.model = model.eval()
        self.classes = list(classes)
        self.image_size = int(image_size)
        self.backend = "torch"
        self.profile = None  # a DetectProfile where the run has one (load_classifier sets it)

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        import torch

        if len(batch) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        param = next(self.model.parameters(), None)
        x = torch.from_numpy(np.ascontiguousarray(batch)).float()
        with torch.inference_mode():
            logits = self.model(x.to(param.device) if param is not None else x)
        return torch.softmax(logits.float(), 1).cpu().numpy()


class OnnxClassifier:
    """An ONNX file written by ``export_onnx``, run with ONNX Runtime on the CPU.

    ``threads`` is ONNX Runtime's intra-op thread count (1: one core, as on a small device; 0: its default).
    Classes and input size come from the file's metadata unless given.
    """

    def __init__(self, onnx_path: str | os.PathLike, threads: int = 1, classes: Optional[Sequence[str]] = None,
                 image_size: Optional[int] = None) -> None:
        import onnxruntime as ort

        from .export import onnx_metadata

        self.path = Path(onnx_path)
        meta = onnx_metadata(self.path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        try:
            self.classes = list(classes) if classes is not None else json.loads(meta["visionlab.classes"])
            self.image_size = int(image_size) if image_size is not None else int(meta["visionlab.image_size"])
        except KeyError as e:
            raise ModelError(f"{self.path} has no {e.args[0]} metadata: export it with `visionlab export`, "
                             f"or pass classes and image_size") from None
        self.backend = "onnx"
        from ..detect.profile import profile_for

        self.profile = profile_for(self.path, meta)

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        logits = self.session.run(None, {self.input_name: batch.astype(np.float32)})[0]
        return _softmax(logits.astype(np.float64)).astype(np.float32)


def load_classifier(source: str | os.PathLike | None = None, backend: Literal["onnx", "torch"] = "onnx",
                    threads: int = 1, quiet: bool = False) -> Classifier:
    """A run folder or an ``.onnx`` file as a ``Classifier``; ``None`` is the bundled face-mask classifier.

    For a run folder, ``onnx`` uses ``RUN/model.onnx``, exporting it first (and saying so) when it is missing
    or older than the weights; ``torch`` loads the run's model directly (Keras runs always go through torch).
    """
    from ..runs import MODEL_FILE, load_run
    from .export import ONNX_FILE, export_run

    if backend not in ("onnx", "torch"):
        raise ConfigError(f"unknown classifier backend {backend!r}; choose one of: onnx, torch")
    if source is None:
        from ..assets import default_classifier

        source = default_classifier()
    p = Path(source)
    if p.suffix.lower() == ".onnx":
        if backend != "onnx":
            raise ConfigError(f"{p} is an ONNX file; it runs with --backend onnx only")
        return OnnxClassifier(p, threads)
    if backend == "onnx":
        from ..detect.profile import PROFILE_FILE

        onnx_path, weights, prof = p / ONNX_FILE, p / MODEL_FILE, p / PROFILE_FILE
        newest = max((f.stat().st_mtime for f in (weights, prof) if f.is_file()), default=0.0)
        if weights.is_file() and (not onnx_path.is_file() or onnx_path.stat().st_mtime < newest):
            why = "older than the run's weights or detect.json" if onnx_path.is_file() else "not exported yet"
            export_run(p, quiet=quiet)  # the file carries the detection profile too: an edited detect.json re-exports
            if not quiet:
                from ..progress import console

                console.print(f"wrote {onnx_path} ({why}) to run the model with ONNX Runtime; --backend torch "
                              f"runs the run's torch model without it", highlight=False, soft_wrap=True)
        if onnx_path.is_file():
            return OnnxClassifier(onnx_path, threads)
    run = load_run(p)  # a clear ModelError for a folder without a model
    from ..detect.profile import profile_for

    clf = TorchClassifier(run.model, run.classes, run.image_size)
    clf.profile = profile_for(p)
    return clf
