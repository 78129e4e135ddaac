"""Files visionlab ships so that it works offline with no training: the YuNet face detector, the default
three-class face-mask classifier (ONNX, with its preprocessing and detection profile in the metadata), its model
card, and a few real photos for the demo.

``asset(name)`` returns the path of a bundled file after checking it against ``model_card.json`` (size and
sha256, once per process); a missing or damaged file is a one-line ``ModelError`` that names it and says how to
restore it. The classifier is rebuilt from ../shared/data by ``python tools/build_default_model.py``.

Face detectors shipped beside the default one (``DETECTORS``: YuNet_n, Apache 2.0, see SOURCES.md) are checked
against the sums below rather than the card, which the classifier's builder rewrites.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..errors import ModelError
from ..io import sha256_file

ROOT = Path(__file__).resolve().parent
FACE_MODEL = "face_detection_yunet_2026may.onnx"
CLASSIFIER = "facemask_classifier.onnx"
CARD = "model_card.json"
YUNET_N = "yunet_n_dynamic.onnx"
# file -> size and sha256, byte for byte the file of ShiqiYu/libfacedetection.train (SOURCES.md)
DETECTORS = {YUNET_N: {"bytes": 322906,
                       "sha256": "104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12"}}
PHOTOS = ROOT / "photos"
RESTORE = ("reinstall visionlab (pip install --force-reinstall visionlab, or pip install -e . in a checkout), "
           "or rebuild the classifier with `python tools/build_default_model.py`")


@lru_cache(maxsize=1)
def card() -> dict:
    """The model card's machine-readable part (classes, input size, checksums, figures)."""
    p = ROOT / CARD
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"bundled model card {p} is missing; {RESTORE}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ModelError(f"bundled model card {p} is damaged; {RESTORE}") from None
    if not isinstance(d, dict) or not isinstance(d.get("files"), dict):
        raise ModelError(f"bundled model card {p} has no 'files' table; {RESTORE}")
    return d


@lru_cache(maxsize=None)
def asset(name: str) -> Path:
    """Path of bundled file ``name``, checked against the card's size and sha256."""
    p = ROOT / name
    want = DETECTORS.get(name) or card()["files"].get(name)
    if want is None:
        known = sorted({*card()["files"], *DETECTORS})
        raise ModelError(f"{name} is not a file visionlab bundles (known: {', '.join(known)})")
    if not p.is_file():
        raise ModelError(f"bundled file {p} is missing; {RESTORE}")
    size = p.stat().st_size
    if size != want["bytes"] or sha256_file(p) != want["sha256"]:
        raise ModelError(f"bundled file {p} is damaged ({size} bytes, checksum differs from {CARD}); {RESTORE}")
    return p


def default_classifier() -> Path:
    return asset(CLASSIFIER)


def default_face_model() -> Path:
    return asset(FACE_MODEL)


def is_bundled(name: str) -> bool:
    """Whether ``name`` (a bare file name) is a model file visionlab ships."""
    return name in DETECTORS or name in card()["files"]


def bundled_name(path: str | Path) -> "str | None":
    """The name of the bundled face model that ``path`` is byte for byte (by size and sha256), else None: a
    detection profile records a face model by that name, so it runs the same file wherever visionlab is installed."""
    p = Path(path)
    want = DETECTORS.get(p.name)
    if want is None or not p.is_file() or p.stat().st_size != want["bytes"]:
        return None
    return p.name if sha256_file(p) == want["sha256"] else None


def demo_photos() -> list[Path]:
    return sorted(p for p in PHOTOS.glob("*.jp*g") if p.is_file())
