"""Fixtures for detection tests: the shared images and YuNet model, and a tiny raw-pixel classifier.

Shared files are found beside the repository (../shared) or at $VISIONLAB_SHARED; tests that need an absent
one are skipped with the path in the reason.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from visionlab.models.layers import Normalize

SHARED = Path(os.environ.get("VISIONLAB_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
CLASSES = ["WithMask", "WithoutMask"]


def shared_file(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared file {p} is absent (set VISIONLAB_SHARED to the folder holding data/ and models/)")
    return p


@pytest.fixture(scope="session")
def yunet_path() -> Path:
    return shared_file("models", "face_detection_yunet_2026may.onnx")


@pytest.fixture(scope="session")
def pic1_path() -> Path:
    return shared_file("data", "scenes", "pic1.jpeg")


@pytest.fixture(scope="session")
def pic1(pic1_path) -> np.ndarray:
    import cv2

    return cv2.imread(str(pic1_path))


@pytest.fixture(scope="session")
def yunet(yunet_path):
    from visionlab.detect import build_detector

    return build_detector("yunet", model_path=yunet_path)


def tiny_model(seed: int = 0, num_classes: int = 2) -> nn.Module:
    """A raw-pixel CNN as visionlab builds them: Normalize first, so it takes 0..255 RGB."""
    torch.manual_seed(seed)
    return nn.Sequential(Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]),
                         nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes)).eval()


@pytest.fixture()
def tiny_classifier():
    from visionlab.inference.backends import TorchClassifier

    return TorchClassifier(tiny_model(), CLASSES, 32)
