"""Classifier backends: a face/image classifier as ``predict_proba(uint8 N x 3 x S x S) -> N x C``, run with torch
or ONNX Runtime. Detection (detect/pipeline.py), ``visionlab predict`` and the service all classify through these.

Classifiers take raw RGB pixels (normalisation is inside the model), so the torch model of a run and its ONNX
export are interchangeable.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Protocol, Sequence

import numpy as np

from ..errors import ModelError

ONNX_FILE = "model.onnx"  # a run folder's exported model (written by export.py, read here)
AVERAGE_KEY = "visionlab.average_with"  # metadata: the files beside this one it is averaged with (average.py)

if TYPE_CHECKING:
    from .profile import DetectProfile


class Classifier(Protocol):
    classes: list[str]
    image_size: int
    profile: Optional["DetectProfile"]  # how to detect and crop faces for it (inference/profile.py), or None
    backend: str  # a BACKENDS name (onnx, torch) or what a test's stand-in calls itself
    source: str  # where it came from (a file or run folder), for output records

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """uint8 N x 3 x S x S RGB pixels -> probabilities N x C."""
        ...


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class TorchClassifier:
    """A visionlab torch model (raw pixels in, logits out) as a ``Classifier``."""

    def __init__(self, model, classes: Sequence[str], image_size: int, source: str = "torch model") -> None:
        self.model = model.eval()
        self.classes = list(classes)
        self.image_size = int(image_size)
        self.backend = "torch"
        self.source = source
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
        self.path = Path(onnx_path)
        self.source = str(self.path)
        self.session = _session(self.path, session_options(threads))
        meta = dict(self.session.get_modelmeta().custom_metadata_map)  # one load: the session has the metadata
        self.input_name = self.session.get_inputs()[0].name
        try:
            self.classes = list(classes) if classes is not None else json.loads(meta["visionlab.classes"])
            self.image_size = int(image_size) if image_size is not None else int(meta["visionlab.image_size"])
        except KeyError as e:
            raise ModelError(f"{self.path} has no {e.args[0]} metadata: export it with `visionlab export`, "
                             f"or pass classes and image_size") from None
        self.backend = "onnx"
        self.average_with = _average_with(self.path, meta)
        from .profile import profile_for

        self.profile = profile_for(self.path, meta)

    # At most this many images per ONNX Runtime call: a crowd photo's 40 faces and their mirrors in one call grew
    # the arena to ~240 MB; chunks of 32 peaked at ~170 MB (EfficientNet-Lite0, 64 px). For the three averaged Lite2
    # networks, a photo's 31 crops in chunks of 16 against 32: one-photo detect peaked at 260 MB against 288, and
    # the three networks took 140 ms against 176 (8: 260 MB, 191 ms; one core, the same process).
    max_batch = 16

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        x = batch.astype(np.float32)
        logits = np.concatenate([self.session.run(None, {self.input_name: x[i:i + self.max_batch]})[0]
                                 for i in range(0, len(x), self.max_batch)])
        return _softmax(logits.astype(np.float64)).astype(np.float32)


def session_options(threads: int = 1):
    """ONNX Runtime CPU options for visionlab's sessions (classifiers, YuNet, the face pool): ``threads`` intra-op
    threads, sequential, and the process's one shared memory arena (``_shared_arena``)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if _shared_arena():
        so.add_session_config_entry("session.use_env_allocators", "1")
    return so


@lru_cache(maxsize=1)
def _shared_arena() -> bool:
    """One CPU memory arena, registered with ONNX Runtime's environment once per process, that every session of
    ``session_options`` allocates from: each session's own arena kept its peak, so three averaged Lite2 networks
    took 341 MB against 229 MB shared (one network: the same either way; speed unchanged), and the face detector's
    and the classifiers' peaks no longer add up. False where it cannot be registered."""
    import onnxruntime as ort

    try:
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(info, None)
    except Exception:  # an ONNX Runtime without it, or one whose environment refuses it: each session its own
        return False
    return True


def _average_with(path: Path, meta: dict) -> list[str]:
    """The bare .onnx file names the metadata says this model is averaged with ([] for a single model)."""
    if AVERAGE_KEY not in meta:
        return []
    try:
        names = json.loads(meta[AVERAGE_KEY])
    except json.JSONDecodeError:
        names = None
    if not isinstance(names, list) or not names or any(
            not isinstance(n, str) or Path(n).name != n or not n.endswith(".onnx") for n in names):
        raise ModelError(f"{path}: its {AVERAGE_KEY} metadata is not a list of .onnx file names beside it; "
                         f"export again with `visionlab export --average`")
    return names


def _session(path: Path, options=None):
    """An ONNX Runtime CPU session for ``path``; a clear ModelError for a missing or unreadable file."""
    import onnxruntime as ort

    if not path.is_file():
        raise ModelError(f"ONNX model {path} does not exist; create it with `visionlab export RUN --format onnx`")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ONNX Runtime raises its own exception types for a corrupt file
        raise ModelError(f"cannot load ONNX model {path}: {str(e).strip().splitlines()[0]}") from None


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata_props of an ONNX file (keys as written by ``export_onnx``), read with ONNX Runtime."""
    return dict(_session(Path(path)).get_modelmeta().custom_metadata_map)
