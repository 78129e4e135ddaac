"""YuNet through ONNX Runtime (detect/detectors/yunet_ort.py) against OpenCV's FaceDetectorYN on real photos."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from visionlab.detect.faces import FACE_DETECTORS, build_detector

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared"
BOXES = SHARED / "data" / "facemask_boxes" / "images"
BUNDLED = REPO / "src" / "visionlab" / "assets" / "photos"


def _photos() -> list[Path]:
    photos = sorted(BUNDLED.glob("*.jp*g"))
    if BOXES.is_dir():
        photos += sorted(BOXES.glob("*.png"))[:25] + sorted(BOXES.glob("*.jpg"))[:25]
    return photos


def _unmatched(a: np.ndarray, b: np.ndarray, tol: float) -> tuple[int, float]:
    """How many rows of ``a`` have no row of ``b`` within ``tol`` px (box and landmarks), and the largest
    distance among those that do."""
    missing, worst = 0, 0.0
    for r in a:
        d = np.abs(b[:, :14] - r[:14]).max(1) if len(b) else np.array([np.inf])
        if d.min() > tol:
            missing += 1
        else:
            worst = max(worst, float(d.min()))
    return missing, worst


def test_registered_by_its_file_alone():
    assert "yunet_ort" in FACE_DETECTORS.names()
    assert FACE_DETECTORS.meta("yunet_ort") == {"needs_file": True}


@pytest.mark.parametrize("upscale", [1.0, 3.0])
def test_same_boxes_as_opencv_within_a_pixel(upscale):
    cv, ort = (build_detector(n, score_threshold=0.3, upscale=upscale) for n in ("yunet", "yunet_ort"))
    total = missing = 0
    worst = 0.0
    for p in _photos():
        img = cv2.imread(str(p))
        a, b = cv.detect_raw(img), ort.detect_raw(img)
        for x, y in ((a, b), (b, a)):
            m, w = _unmatched(x, y, tol=1.0)
            missing += m
            worst = max(worst, w)
        total += len(a)
    assert total >= 100, total
    assert worst <= 1.0
    # boxes whose scores sit at the NMS overlap limit can keep a different neighbour: at most 2% of faces
    assert missing <= 0.02 * total, (missing, total)


def test_dynamic_yunet_n_runs_only_in_onnx_runtime():
    model = SHARED / "models" / "yunet_n_dynamic.onnx"
    if not model.is_file():
        pytest.skip(f"{model} is not here (../shared absent)")
    det = build_detector("yunet_ort", model_path=model, score_threshold=0.5)
    img = cv2.imread(str(BUNDLED / "maksssksksss559.jpg"))
    faces = det.detect(img)
    assert len(faces) >= 10 and all(f.landmarks.shape == (5, 2) for f in faces)
    h, w = img.shape[:2]
    assert all(0 <= f.box[0] < w and 0 <= f.box[1] < h and f.box[2] > 0 for f in faces)


def test_not_a_yunet_file_is_one_clear_error(tmp_path):
    from visionlab.errors import ModelError

    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="cannot load face model"):
        build_detector("yunet_ort", model_path=bad)
