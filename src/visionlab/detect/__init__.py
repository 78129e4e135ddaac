"""Faces in photos, video and camera frames, each with a label from an image classifier (torch or ONNX Runtime).

``faces``: detectors (YuNet, Haar) behind one interface; ``pipeline``: crop, classify, draw, and the loop over
inputs (``run_detection``); ``export``: ONNX export with preprocessing in the metadata. See docs/detection.md.
"""
from .export import export_onnx, export_run, onnx_metadata
from .faces import FACE_DETECTORS, YUNET_SCORE_THRESHOLD, Face, FaceDetector, build_detector
from .pipeline import (Classifier, DetectionPipeline, FaceResult, OnnxClassifier, TorchClassifier, draw_results,
                       load_classifier, run_detection)

__all__ = ["FACE_DETECTORS", "YUNET_SCORE_THRESHOLD", "Classifier", "DetectionPipeline", "Face", "FaceDetector",
           "FaceResult", "OnnxClassifier", "TorchClassifier", "build_detector", "draw_results", "export_onnx",
           "export_run", "load_classifier", "onnx_metadata", "run_detection"]
