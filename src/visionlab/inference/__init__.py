"""Running a trained classifier outside training: ONNX export (``export``) and the torch / ONNX Runtime
backends (``backends``) that detection, ``visionlab predict`` and the service classify with.

The names below load on first use: ``backends`` needs only NumPy (and ONNX Runtime for an .onnx file), ``export`` imports torch and onnx.
"""
from __future__ import annotations

_BACKENDS = ("ONNX_FILE", "Classifier", "OnnxClassifier", "TorchClassifier", "onnx_metadata")
_EXPORT = ("export_onnx", "export_run", "verify_onnx")

__all__ = [*_BACKENDS, *_EXPORT, "load_classifier"]


def __getattr__(name: str):
    if name in _BACKENDS:
        from . import backends
        return getattr(backends, name)
    if name == "load_classifier":
        from .load import load_classifier
        return load_classifier
    if name in _EXPORT:
        from . import export
        return getattr(export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
