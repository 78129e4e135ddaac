"""Faces in photos, video and camera frames, each with a label from an image classifier (torch or ONNX Runtime).

``faces``: detectors (YuNet, Haar) behind one interface; ``pipeline``: crop, classify, draw, and the loop over
inputs (``run_detection``). The classifier backends and ONNX export live in ``visionlab.inference`` (detection,
predict and the service all use them) and are re-exported here. See docs/detection.md.
"""
from ..verbs import make_callable
from ..inference.backends import Classifier, OnnxClassifier, TorchClassifier, onnx_metadata
from ..inference.load import load_classifier
from .build import Built, build_pipeline
from .config import DetectConfig
from .faces import FACE_DETECTORS, YUNET_SCORE_THRESHOLD, Face, FaceDetector, build_detector
from .pipeline import DetectionPipeline, FaceResult, draw_results
from .run import detect_faces, run_detection
from .verb import detect

__all__ = ["FACE_DETECTORS", "YUNET_SCORE_THRESHOLD", "Built", "Classifier", "DetectConfig", "DetectionPipeline",
           "Face", "FaceDetector", "FaceResult", "OnnxClassifier", "TorchClassifier", "build_detector",
           "build_pipeline", "draw_results", "export_onnx", "export_run", "load_classifier", "onnx_metadata",
           "run_detection", "detect_faces"]


_EXPORT = ("export_onnx", "export_run")  # import torch and onnx: loaded on first use


def __getattr__(name: str):
    if name in _EXPORT:
        from ..inference import export
        return getattr(export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


make_callable(__name__, detect)  # visionlab.detect(...) mirrors `visionlab detect ...` (verbs.py)
