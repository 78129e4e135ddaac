"""Evaluation: metrics (metrics.py), plots (plots.py), reports (report.py), Grad-CAM (gradcam.py), a
classifier's evaluation on a split (evaluate.py) and face-detection scoring (detection.py)."""
from __future__ import annotations

from .evaluate import MASK_NOTE, cpu_ms_per_image, evaluate_model, write_predictions

__all__ = ["MASK_NOTE", "cpu_ms_per_image", "evaluate_model", "write_predictions"]
