"""The classifier that scores a face pool: its class probabilities and its embedding of each crop.

The embedding is the classifier's own pooled feature vector (the input of its head's first layer), read from
the same ONNX graph in the same call as the logits: the ONNX file is loaded with ``onnx``, that tensor is
added as a second graph output, and ONNX Runtime runs it. So queries (k-center, diversity) measure distance
in the space the classifier decides in, at no extra cost. A graph without a recognisable head (a model from
elsewhere) falls back to a coarse colour/layout descriptor of the crop, and says so.

Face crops are uint8 N x 3 x S x S RGB, cut and resized as ``DetectionPipeline.crops`` does. For an averaged
model (inference/average.py) the probabilities are its members' mean, as photos are labelled, and the embedding is
its first network's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from ..detect.pipeline import is_background
from ..errors import ModelError
from ..inference.average import mean_probs, networks
from ..inference.backends import OnnxClassifier, session_options
from ..inference.load import load_classifier

HEAD_WEIGHT = "net.head.0.weight"  # the first Linear of a visionlab backbone's head (models/backbones.py)
NOT_A_FACE = "NotAFace"


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _embedding_tensor(model) -> Optional[str]:
    """Name of the tensor feeding the head's first layer (a Gemm/MatMul that reads HEAD_WEIGHT), else that of
    the first Gemm's data input, else None."""
    nodes = list(model.graph.node)
    for n in nodes:
        if n.op_type in ("Gemm", "MatMul") and HEAD_WEIGHT in n.input:
            return next(i for i in n.input if i != HEAD_WEIGHT)
    first = next((n for n in nodes if n.op_type == "Gemm"), None)
    return first.input[0] if first is not None else None


def pixel_embedding(crops: np.ndarray) -> np.ndarray:
    """4 x 4 colour layout plus per-channel mean and spread of each crop (54 numbers): the fallback embedding."""
    x = crops.astype(np.float32) / 255.0
    n, c, s, _ = x.shape
    grid = np.stack([cv2.resize(im.transpose(1, 2, 0), (4, 4), interpolation=cv2.INTER_AREA).reshape(-1)
                     for im in x]) if n else np.zeros((0, 48), np.float32)
    return np.concatenate([grid, x.mean((2, 3)), x.std((2, 3))], 1).astype(np.float32)


class FaceModel:
    """``source``: a run folder, an .onnx file, or None for the bundled classifier (as ``detect --model``)."""

    max_batch = 64

    def __init__(self, source: Optional[str | Path] = None, threads: int = 1) -> None:
        import onnx
        import onnxruntime as ort

        clf = load_classifier(str(source) if source is not None else None, "onnx", threads, quiet=True)
        # an averaged model: its probabilities are the members' mean, as detection shows them; the embedding (and a
        # retrained model's starting point, faceretrain.py) is the first network's
        clf, *self.others = networks(clf)
        if not isinstance(clf, OnnxClassifier):
            raise ModelError(f"{source}: the active-learning face pool needs a model that runs with ONNX Runtime "
                             f"(a torch run that can be exported, or an .onnx file)")
        self.path, self.classes, self.image_size = clf.path, list(clf.classes), int(clf.image_size)
        self.profile = clf.profile
        self.background = next((i for i, c in enumerate(self.classes) if is_background(c)), None)
        self.face_classes = [c for i, c in enumerate(self.classes) if i != self.background]
        model = onnx.load(str(self.path))
        self.embedding_from = _embedding_tensor(model)
        outputs = [model.graph.output[0].name]
        if self.embedding_from is not None:
            if self.embedding_from not in {o.name for o in model.graph.output}:
                model.graph.output.append(onnx.helper.make_empty_tensor_value_info(self.embedding_from))
            outputs.append(self.embedding_from)
        try:
            self.session = ort.InferenceSession(model.SerializeToString(), session_options(threads),
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # ONNX Runtime's own exception types
            raise ModelError(f"cannot run {self.path} with its features exposed: {str(e).splitlines()[0]}") from None
        self.outputs = outputs
        self.input_name = self.session.get_inputs()[0].name

    @property
    def pool_classes(self) -> list[str]:
        """The classes a face is labelled with: the classifier's face classes, then NotAFace."""
        return self.face_classes + [NOT_A_FACE]

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities N x C over ``self.classes``, embeddings N x D) of uint8 crops N x 3 x S x S; an averaged
        model's probabilities are its networks' mean."""
        if crops.shape[-1] != self.image_size:
            crops = resize_crops(crops, self.image_size)
        probs, embs = self.first_network(crops)
        if self.others:
            probs = mean_probs([probs] + [m.predict_proba(crops) for m in self.others])
        return probs, embs

    def first_network(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, embeddings) of the file at ``self.path`` alone (an averaged model's first network: what
        faceretrain.py reads back into torch), for crops already at ``self.image_size``."""
        probs, embs = [], []
        x = crops.astype(np.float32)
        for i in range(0, len(x), self.max_batch):
            out = self.session.run(self.outputs, {self.input_name: x[i:i + self.max_batch]})
            probs.append(_softmax(out[0].astype(np.float64)).astype(np.float32))
            embs.append(out[1].reshape(len(out[1]), -1).astype(np.float32) if len(out) > 1
                        else pixel_embedding(crops[i:i + self.max_batch]))
        if not probs:
            return np.zeros((0, len(self.classes)), np.float32), np.zeros((0, 1), np.float32)
        return np.concatenate(probs), np.concatenate(embs)

    def pool_probs(self, probs: np.ndarray) -> np.ndarray:
        """Probabilities over ``pool_classes``: the face classes as they are, background as NotAFace."""
        face = [i for i in range(len(self.classes)) if i != self.background]
        bg = probs[:, [self.background]] if self.background is not None else np.zeros((len(probs), 1), np.float32)
        return np.concatenate([probs[:, face], bg], 1)


def resize_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """uint8 N x 3 x s x s -> N x 3 x size x size, as the pipeline resizes a crop (area when shrinking)."""
    out = np.empty((len(crops), 3, size, size), np.uint8)
    for i, c in enumerate(crops):
        im = c.transpose(1, 2, 0)
        interp = cv2.INTER_AREA if im.shape[0] > size else cv2.INTER_LINEAR
        out[i] = cv2.resize(im, (size, size), interpolation=interp).transpose(2, 0, 1)
    return out


def read_crops(paths: list[Path], size: int) -> np.ndarray:
    """The saved face crops (PNG files of the pool) as uint8 N x 3 x size x size RGB."""
    out = np.empty((len(paths), 3, size, size), np.uint8)
    for i, p in enumerate(paths):
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ModelError(f"face crop {p} cannot be read; the project's faces/ folder is damaged")
        interp = cv2.INTER_AREA if bgr.shape[0] > size else cv2.INTER_LINEAR
        out[i] = cv2.cvtColor(cv2.resize(bgr, (size, size), interpolation=interp), cv2.COLOR_BGR2RGB).transpose(2, 0, 1)
    return out
