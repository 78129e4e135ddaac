"""Face detectors on real images: YuNet finds the masked faces of pic1 at visionlab's threshold, not at
OpenCV's default; model files resolve from a path, the cache, or fail offline with a line that says where."""
from __future__ import annotations

import shutil
import time
from itertools import pairwise

import cv2
import pytest

from visionlab.detect import FACE_DETECTORS, YUNET_SCORE_THRESHOLD, build_detector
from visionlab.detect.faces import YUNET_FILE, HaarDetector, yunet_model_path
from visionlab.errors import ConfigError, ModelError

from .conftest import shared_file


def test_registry_names_and_unknown_detector():
    assert FACE_DETECTORS.names() == ["haar", "yunet", "yunet_ort"]
    with pytest.raises(ConfigError, match="haar, yunet"):
        build_detector("retinaface")


def test_yunet_finds_both_masked_faces_of_pic1(yunet, pic1):
    faces = yunet.detect(pic1)
    assert len(faces) == 2, [f.box for f in faces]
    h, w = pic1.shape[:2]
    centres = sorted((f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2) for f in faces)
    assert centres[0][0] < w / 2 < centres[1][0]  # one person on each side
    for f in faces:
        x, y, bw, bh = f.box
        assert all(isinstance(v, int) for v in f.box)
        assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h and 100 < bw < 300 and 100 < bh < 300
        assert YUNET_SCORE_THRESHOLD <= f.score < 0.9  # masked faces: below OpenCV's default threshold
        assert f.landmarks.shape == (5, 2)
        lx, ly = f.landmarks[:, 0], f.landmarks[:, 1]
        assert ((lx > x) & (lx < x + bw) & (ly > y) & (ly < y + bh)).all()


def test_opencv_default_threshold_misses_pic1(yunet_path, pic1):
    assert build_detector("yunet", model_path=yunet_path, score_threshold=0.9).detect(pic1) == []


def test_threshold_finds_more_masked_faces_than_the_default(yunet_path):
    folder = shared_file("data", "facemask", "Test", "WithMask")
    images = [cv2.imread(str(p)) for p in sorted(folder.glob("*.jpg"))[:60]]
    ours = build_detector("yunet", model_path=yunet_path)
    default = build_detector("yunet", model_path=yunet_path, score_threshold=0.9)
    found_ours = sum(bool(ours.detect(im)) for im in images)
    found_default = sum(bool(default.detect(im)) for im in images)
    assert found_ours >= 0.75 * len(images) and found_ours > found_default + 10, (found_ours, found_default)


def test_max_side_maps_boxes_back_to_the_full_image(yunet_path, pic1):
    full = build_detector("yunet", model_path=yunet_path).detect(pic1)
    small = build_detector("yunet", model_path=yunet_path, max_side=420).detect(pic1)
    assert len(small) == 2
    for a, b in zip(sorted(f.box for f in full), sorted(f.box for f in small)):
        assert _iou(a, b) > 0.7, (a, b)


def _iou(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_model_path_explicit_cache_and_offline(tmp_path, monkeypatch, yunet_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelError, match="nope.onnx does not exist"):
        yunet_model_path(missing)
    monkeypatch.setenv("VISIONLAB_CACHE", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "models" / YUNET_FILE
    t = time.perf_counter()
    with pytest.raises(ModelError) as e:  # nothing listens on port 9: fails at once, like a machine offline
        yunet_model_path(url="http://127.0.0.1:9/face_detection_yunet_2023mar.onnx", timeout=5, bundled=False)
    assert time.perf_counter() - t < 10
    assert str(cached) in str(e.value) and "--face-model" in str(e.value)
    assert not list(cached.parent.glob("*"))  # no half-downloaded file left in the cache
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(yunet_path, cached)
    assert yunet_model_path(bundled=False) == cached


def test_a_file_that_is_not_yunet_is_a_model_error(tmp_path):
    bad = tmp_path / "face.onnx"
    bad.write_text("not a model")
    with pytest.raises(ModelError, match="face.onnx"):
        build_detector("yunet", model_path=bad)


@pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"),
                    reason=f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 moved it out of the main "
                           f"build); the haar detector needs opencv-python-headless<5")
def test_haar_runs_and_misses_masked_faces(pic1):
    haar = build_detector("haar")
    assert haar.detect(pic1) == []  # both faces of pic1 are masked: the cascade finds neither
    folder = shared_file("data", "facemask", "Test", "WithoutMask")
    found = [haar.detect(cv2.imread(str(p))) for p in sorted(folder.glob("*.jpg"))[:30]]
    faces = [f for fs in found for f in fs]
    assert len(faces) >= 10 and all(f.score == 1.0 and f.landmarks is None for f in faces)


@pytest.mark.skipif(hasattr(cv2, "CascadeClassifier"), reason="this OpenCV has CascadeClassifier")
def test_haar_without_cascade_support_says_what_to_install():
    with pytest.raises(ModelError, match="opencv-python-headless<5"):
        HaarDetector()


@pytest.mark.parametrize("length,tile,overlap", [(1200, 480, 64), (903, 320, 64), (481, 480, 64), (3000, 640, 96)])
def test_tiles_are_equal_cover_the_line_and_overlap(length, tile, overlap):
    from visionlab.detect.faces import core_bounds, tile_starts

    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == length  # equal tiles, flush with both edges
    assert all(b - a <= tile - overlap for a, b in pairwise(starts))  # neighbours share >= overlap px
    assert len(tile_starts(length, tile, overlap)) == len(set(starts))
    cores = core_bounds(starts, tile)
    assert cores[0][0] == -float("inf") and cores[-1][1] == float("inf")
    assert all(a[1] == b[0] for a, b in pairwise(cores))  # the cores split the line, no gap or overlap
    for s, (lo, hi) in zip(starts, cores):
        # a face narrower than the overlap, centred in a tile's core, lies wholly inside that tile
        assert lo == -float("inf") or lo - overlap / 2 >= s
        assert hi == float("inf") or hi + overlap / 2 <= s + tile
    assert tile_starts(300, 480, 64) == [0]


def test_tile_options_are_checked(yunet_path):
    with pytest.raises(ModelError, match="tile_overlap"):
        build_detector("yunet", model_path=yunet_path, tile=320, tile_overlap=200)
    with pytest.raises(ModelError, match="tile must be 0"):
        build_detector("yunet", model_path=yunet_path, tile=32)


def test_enlarged_only_skips_the_frame_as_it_is(yunet_path, pic1):
    """full_pass=False searches only the enlarged frame: its boxes are exactly the enlarged pass of the two-scale
    search, which also searches the frame as it is."""
    both = build_detector("yunet", model_path=yunet_path, score_threshold=0.5, upscale=2.0)
    only = build_detector("yunet", model_path=yunet_path, score_threshold=0.5, upscale=2.0, full_pass=False)
    up = min(2.0, both.max_upscaled_side / max(pic1.shape[:2]))  # a large photo is enlarged less
    a, b = only.detect_raw(pic1), both._detect_at(pic1, up)[0]  # one search: the frame (no mirror)
    assert len(a) == 2
    assert abs(a - b[(-b[:, 14]).argsort(kind="stable")]).max() < 1e-9
