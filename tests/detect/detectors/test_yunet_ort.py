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


def _yunet_n() -> Path:
    model = SHARED / "models" / "yunet_n_dynamic.onnx"
    if not model.is_file():
        pytest.skip(f"{model} is not here (../shared absent)")
    return model


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from visionlab.boxes import iou_matrix, xywh_to_xyxy

    return iou_matrix(xywh_to_xyxy(a[:, :4]), xywh_to_xyxy(b[:, :4]))


def test_batched_equals_one_at_a_time_on_real_photos():
    """Tiles of real photos through one session.run per batch give the same rows as one run each."""
    from visionlab.detect.faces import tile_starts

    det = build_detector("yunet_ort", model_path=_yunet_n(), score_threshold=0.3)
    assert det._batches
    det.max_batch = 8
    photos = _photos()[:6]
    images = []
    for p in photos:
        big = cv2.resize(cv2.imread(str(p)), None, fx=2, fy=2)
        images += [big[y:y + 320, x:x + 320] for y in tile_starts(big.shape[0], 320, 64)
                   for x in tile_starts(big.shape[1], 320, 64)]
    images.append(cv2.imread(str(photos[0])))  # another padded size goes in its own batch
    batched = det._run_batch(images)
    single = [det._run(im) for im in images]
    found = 0
    for a, b in zip(batched, single):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.shape == b.shape and np.abs(a - b).max() < 1e-3
            found += len(a)
    assert len(images) >= 20 and found >= 20, (len(images), found)


def test_tiles_find_the_faces_a_full_pass_finds_without_duplicates():
    """A crowd photo enlarged 3x, searched in 320 px tiles: each face the whole enlarged photo shows is found (IoU
    >= 0.5) and no two boxes overlap by more than 0.5."""
    model = _yunet_n()
    img = cv2.imread(str(BUNDLED / "maksssksksss559.jpg"))
    full = build_detector("yunet_ort", model_path=model, score_threshold=0.5, upscale=3.0, full_pass=False)
    tiled = build_detector("yunet_ort", model_path=model, score_threshold=0.5, upscale=3.0, full_pass=False,
                           tile=320)
    a, b = full.detect_raw(img), tiled.detect_raw(img)
    assert len(a) >= 10
    iou = _iou(a, b)
    assert (iou.max(1) >= 0.5).sum() >= len(a) - 1, iou.max(1)  # at most one face lost at a tile seam
    self_iou = _iou(b, b)
    np.fill_diagonal(self_iou, 0)
    assert self_iou.max() <= 0.5


def test_bundled_yunet_n_is_the_shared_file_and_loads():
    from visionlab import assets
    from visionlab.io import sha256_file

    bundled = assets.asset(assets.YUNET_N)
    assert sha256_file(bundled) == assets.DETECTORS[assets.YUNET_N]["sha256"]
    shared = SHARED / "models" / "yunet_n_dynamic.onnx"
    if shared.is_file():
        assert sha256_file(bundled) == sha256_file(shared)
    assert (assets.ROOT / "LICENSE-libfacedetection.train.txt").read_text().count("Apache License") >= 1
    det = build_detector("yunet_ort", model_path=assets.YUNET_N, score_threshold=0.5)  # a bare bundled name
    assert det.model_path == bundled
    assert len(det.detect(cv2.imread(str(BUNDLED / "maksssksksss559.jpg")))) >= 10


def test_a_profile_selects_bundled_yunet_n_with_tiles():
    from visionlab.detect.build import detector_name, detector_options
    from visionlab.detect.config import DetectConfig
    from visionlab.errors import ModelError
    from visionlab.inference.profile import DetectProfile

    prof = DetectProfile.from_dict({"detector": "yunet_ort", "face_model": "yunet_n_dynamic.onnx", "upscale": 2.0,
                                    "tile": 640, "score_threshold": 0.15})
    assert DetectProfile.from_dict(prof.to_dict()) == prof
    cfg = DetectConfig()
    acc = detector_options(cfg, prof, "accurate", "image")
    fast = detector_options(cfg, prof, "fast", "video")
    assert acc["model_path"].name == "yunet_n_dynamic.onnx" and acc["tile"] == 640 and acc["upscale"] == 2.0
    assert fast["model_path"] == acc["model_path"] and "tile" not in fast and fast["score_threshold"] == 0.5
    det = FACE_DETECTORS.get(detector_name(cfg, prof))(**acc)
    assert det.name == "yunet_ort" and det.tile == 640
    old = DetectProfile.from_dict({"upscale": 3.0})  # a profile from before: no face_model or tile written
    assert "face_model" not in old.to_dict() and "model_path" not in old.detector_options("accurate")
    with pytest.raises(ModelError, match="does not bundle"):
        DetectProfile.from_dict({"face_model": "mine.onnx"})


@pytest.mark.parametrize("merge,tile", [("nms", 0), ("wbf", 0), ("wbf", 480)])
def test_a_mirrored_search_finds_the_mirrored_photos_faces(merge, tile):
    """With mirror_search the photo and its mirror image are both searched, so detecting on the mirrored photo must
    give the same faces mirrored back: boxes, scores, and landmarks with right and left swapped (tiles too: their
    starts spread evenly from edge to edge, so the mirrored photo's tiles are the tiles mirrored)."""
    det = build_detector("yunet_ort", score_threshold=0.3, upscale=2.0, box_merge=merge, mirror_search=True,
                         tile=tile)
    total = 0
    for p in _photos()[:12]:
        img = cv2.imread(str(p))
        a, b = det.detect_raw(img), det.detect_raw(np.ascontiguousarray(img[:, ::-1]))
        w = img.shape[1]
        back = b.copy()
        back[:, 0] = w - b[:, 0] - b[:, 2]
        lm = b[:, 4:14].reshape(-1, 5, 2)[:, [1, 0, 2, 4, 3]].copy()
        lm[:, :, 0] = w - lm[:, :, 0]
        back[:, 4:14] = lm.reshape(-1, 10)
        assert len(a) == len(back)
        for x, y in ((a, back), (back, a)):
            assert _unmatched(x, y, tol=0.01) == (0, pytest.approx(0.0, abs=0.01))
        np.testing.assert_allclose(np.sort(a[:, 14]), np.sort(back[:, 14]), atol=1e-6)
        if len(a):  # landmarks stay the subject's: the right eye (0) left of the left eye (1) in the image
            assert (a[:, 4] <= a[:, 6] + 1).mean() >= 0.9
        total += len(a)
    assert total >= 40, total
