"""ONNX export: ONNX Runtime matches torch (max abs difference < 1e-4) for a small CNN and for MobileNetV3-small
with a normalising first layer, the batch axis is dynamic, preprocessing is in the metadata, writes are atomic."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision
from torch import nn

from visionlab.detect import DetectionPipeline
from visionlab.inference.backends import OnnxClassifier, TorchClassifier
from visionlab.inference.export import export_onnx, onnx_metadata
from visionlab.errors import ModelError
from visionlab.models.layers import Normalize

from .conftest import CLASSES, tiny_model

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def _max_diff(model: nn.Module, path, size: int, batch: int, seed: int) -> float:
    x = np.random.default_rng(seed).uniform(0, 255, (batch, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    got = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(["logits"], {"pixels": x})[0]
    assert got.shape == ref.shape
    return float(np.abs(got - ref).max())


@pytest.mark.parametrize("name", ["small_cnn", "mobilenet_v3_small"])
def test_onnx_runtime_matches_torch(tmp_path, name):
    torch.manual_seed(0)
    if name == "small_cnn":
        model, size = tiny_model(), 32
    else:
        net = torchvision.models.mobilenet_v3_small(weights=None, num_classes=2)
        model, size = nn.Sequential(Normalize(*IMAGENET), net).eval(), 96
    path = export_onnx(model, size, CLASSES, tmp_path / f"{name}.onnx")
    for batch, seed in ((1, 1), (5, 2)):  # the batch axis is dynamic
        assert _max_diff(model, path, size, batch, seed) < 1e-4


def test_graph_names_shapes_and_metadata(tmp_path):
    path = export_onnx(tiny_model(), 32, CLASSES, tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "pixels" and out.name == "logits"
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 32, 32]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    meta = onnx_metadata(path)
    assert json.loads(meta["visionlab.classes"]) == CLASSES and meta["visionlab.image_size"] == "32"
    assert meta["visionlab.input_range"] == "0..255" and meta["visionlab.channel_order"] == "RGB"
    assert "inside the model" in meta["visionlab.normalization"]
    assert json.loads(meta["visionlab.mean"]) == [0.5] * 3 and json.loads(meta["visionlab.std"]) == [0.25] * 3
    assert float(meta["visionlab.verified_max_abs_diff"]) < 1e-4


def test_failed_export_leaves_the_old_file_alone(tmp_path):
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            raise RuntimeError("cannot trace this")

    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous export")
    with pytest.raises(ModelError, match="cannot export Broken"):
        export_onnx(Broken(), 32, CLASSES, path)
    assert path.read_bytes() == b"previous export" and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_onnx_and_torch_classifiers_agree_in_the_pipeline(tmp_path, yunet, pic1):
    model = tiny_model(seed=3)
    path = export_onnx(model, 32, CLASSES, tmp_path / "m.onnx")
    onnx_clf = OnnxClassifier(path, threads=1)
    assert onnx_clf.classes == CLASSES and onnx_clf.image_size == 32
    a = DetectionPipeline(yunet, onnx_clf)(pic1)
    b = DetectionPipeline(yunet, TorchClassifier(model, CLASSES, 32))(pic1)
    assert [r.label for r in a] == [r.label for r in b]
    assert np.allclose([r.confidence for r in a], [r.confidence for r in b], atol=1e-5)


def test_detect_still_exports_the_moved_names():
    """The backends and ONNX export live in visionlab.inference; users keep importing them from visionlab.detect."""
    import visionlab.detect as detect
    from visionlab.inference import backends, export, load

    for name in ("Classifier", "OnnxClassifier", "TorchClassifier", "onnx_metadata"):
        assert getattr(detect, name) is getattr(backends, name) and name in detect.__all__
    assert detect.load_classifier is load.load_classifier and "load_classifier" in detect.__all__
    for name in ("export_onnx", "export_run", "onnx_metadata"):
        assert getattr(detect, name) is getattr(export, name) and name in detect.__all__
