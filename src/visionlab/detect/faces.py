"""Face detectors behind one interface: an image in, a list of ``Face`` out.

``yunet`` (OpenCV's ``FaceDetectorYN``, a small CNN) is the default. ``haar`` (OpenCV's bundled frontal-face
cascade) needs no model file but misses most masked faces: the cascade was trained on whole faces, and a mask
hides the nose and mouth features it looks for (figures in docs/detection.md).
"""
from __future__ import annotations

import os
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol, Sequence

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own log lines would bury our one-line errors
import cv2  # noqa: E402
import numpy as np

from ..boxes import MERGES
from ..errors import ModelError
from ..io import cache_root, write_via
from ..registry import Registry

YUNET_FILE = "face_detection_yunet_2023mar.onnx"
YUNET_URL = ("https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
             "face_detection_yunet_2023mar.onnx")
# Masked faces score 0.7-0.9 in YuNet, below OpenCV's default of 0.9; at 0.7 no box on the face-mask test
# split was a non-face, and 87% of its masked images got a face (docs/detection.md has the table).
YUNET_SCORE_THRESHOLD = 0.7
HAAR_FILE = "haarcascade_frontalface_default.xml"


# a detector box sharing this much of the smaller box's area with a higher-scored one is the same face (YuNet_n at
# 1x + 2x puts a loose box around a capped head on pic1, IoU 0.27, which NMS keeps): dropped by ``detect`` (not
# ``detect_raw``, which `data faces` matches against the annotations). On the 600 annotated photos (YuNet_n 1x +
# 2x, threshold 0.15) it drops 170 of 7,542 boxes and 3 of 2,583 found faces.
CONTAINED = 0.7
# a mirrored frame's landmarks, unmirrored: the right and left eye swap, and so do the mouth corners
MIRRORED_LANDMARKS = (1, 0, 2, 4, 3)


@dataclass(frozen=True)
class Face:
    """One detected face. ``box`` is (x, y, w, h) in pixels, inside the image; ``landmarks`` is 5 x 2
    (right eye, left eye, nose tip, right and left mouth corner) where the detector gives them."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: Optional[np.ndarray] = None


class FaceDetector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a BGR uint8 H x W x 3 image, highest score first."""
        ...

    def describe(self) -> dict:
        """``{"name", "model_file", "score_threshold"}`` for records and the service's /v1/model."""
        ...


# yunet and haar are below; every module of visionlab/detect/detectors/ registers one more (one file each)
FACE_DETECTORS: Registry[Callable[..., FaceDetector]] = Registry("face detector", discover="visionlab.detect.detectors")


def build_detector(name: str = "yunet", **options) -> FaceDetector:
    """``build_detector("yunet", model_path=..., score_threshold=0.7)``, ``build_detector("haar")``."""
    return FACE_DETECTORS.get(name)(**options)


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines (camera probing, DNN backends) so a user sees only our one-line errors."""
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None:
        yield
        return
    old = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        log.setLogLevel(old)


def _clip_box(x: float, y: float, w: float, h: float, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def yunet_model_path(path: str | os.PathLike | None = None, *, download: bool = True, url: str = YUNET_URL,
                     timeout: float = 30.0, bundled: bool = True) -> Path:
    """The YuNet ONNX file: ``path`` if given, else the copy visionlab ships (checked against its card), else the
    cached copy, else downloaded into the cache once (for installs without the bundled file)."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file() and p.name == str(path) and bundled:
            from ..assets import asset, is_bundled

            if is_bundled(p.name):  # a bare name of a bundled detector, e.g. yunet_n_dynamic.onnx
                return asset(p.name)
        if not p.is_file():
            raise ModelError(f"face model {p} does not exist; pass the path of a YuNet .onnx file "
                             f"(from the OpenCV Zoo: {YUNET_URL})")
        return p
    if bundled:
        from ..assets import FACE_MODEL, ROOT, default_face_model

        if (ROOT / FACE_MODEL).exists():
            return default_face_model()  # a damaged copy is a clear error, never a silent download
    cached = cache_root() / "models" / YUNET_FILE
    if cached.is_file():
        return cached
    if not download:
        raise ModelError(f"no YuNet face model at {cached}; download {YUNET_URL} there, or pass --face-model PATH")

    def checked(tmp: Path, data: bytes) -> None:
        tmp.write_bytes(data)
        with quiet_opencv():
            cv2.FaceDetectorYN.create(str(tmp), "", (320, 320))  # a proxy's error page must not land in the cache

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = resp.read()
        write_via(cached, lambda tmp: checked(tmp, data), suffix=".onnx")  # OpenCV tells ONNX by the name
    except Exception as e:
        raise ModelError(f"could not download the YuNet face model from {url} ({type(e).__name__}: {e}); "
                         f"without network, fetch that file elsewhere and put it at {cached}, "
                         f"or pass --face-model PATH (or use --detector haar)") from None
    return cached


@FACE_DETECTORS.register("yunet", needs_file=True)
class YuNetDetector:
    """OpenCV's YuNet: boxes, scores and five landmarks. ``max_side`` shrinks large frames before detection;
    ``upscale`` also searches the frame enlarged, for small faces: YuNet's smallest anchors are about 10 px, and on
    the crowd photos of ``facemask_boxes`` 2x finds 82% of the annotated faces against 65% as they are (3x: 83%;
    docs/detection.md). ``box_correction`` (a ``BoxCorrection`` or its dict) turns the boxes into annotator-style
    ones.

    Small-face strategies (benchmarks/face_finder.py measures them): ``upscale`` k > 1 with ``full_pass`` (the
    default) searches two scales, 1x and kx, merged by NMS (``box_merge="wbf"``: weighted box fusion, boxes.py);
    ``full_pass=False`` searches only the kx frame. ``mirror_search`` searches the mirrored frame too at each scale (one
    batch with the frame where the detector batches), and its boxes are merged with the others.
    ``tile`` > 0 cuts the frame at each scale into overlapping ``tile`` x ``tile`` squares (``tile_overlap`` px
    shared, all the same size so ONNX Runtime runs them as one batch) whose boxes are merged by NMS: a face
    smaller than the overlap is taken from the one tile whose core holds its centre."""

    name = "yunet"

    def __init__(self, model_path: str | os.PathLike | None = None, score_threshold: float = YUNET_SCORE_THRESHOLD,
                 nms_threshold: float = 0.3, top_k: int = 5000, max_side: Optional[int] = None,
                 upscale: float = 1.0, box_correction=None, max_upscaled_side: int = 1600, tile: int = 0,
                 tile_overlap: int = 64, full_pass: bool = True, contained: Optional[float] = CONTAINED,
                 box_merge: str = "nms", mirror_search: bool = False) -> None:
        if box_merge not in MERGES:
            raise ModelError(f"unknown box merge {box_merge!r}; choose one of: {', '.join(MERGES)}")
        self.box_merge, self.mirror_search = box_merge, bool(mirror_search)
        if not 0.0 < score_threshold <= 1.0:
            raise ModelError(f"score_threshold must be in (0, 1], got {score_threshold}")
        if not 0.25 <= upscale <= 8.0:
            raise ModelError(f"upscale must be between 0.25 and 8, got {upscale}")
        if tile and tile < 64:
            raise ModelError(f"tile must be 0 (no tiles) or at least 64 px, got {tile}")
        if tile and not 0 <= 2 * tile_overlap < tile:
            raise ModelError(f"tile_overlap must be at least 0 and under half the tile ({tile} px), "
                             f"got {tile_overlap}")
        self.tile, self.tile_overlap, self.full_pass = int(tile), int(tile_overlap), bool(full_pass)
        self.contained = contained  # None: every box the detector keeps (as `data faces` cuts its one-face photos)
        self.upscale = float(upscale)
        self.max_upscaled_side = int(max_upscaled_side)
        self.nms_threshold = float(nms_threshold)
        from ..boxes import BoxCorrection

        # a BoxCorrection (or its dict) turns YuNet's boxes into annotator-style ones (boxes.py)
        self.box_correction = (BoxCorrection.from_dict(box_correction) if isinstance(box_correction, dict)
                               else box_correction)
        self.model_path = yunet_model_path(model_path)
        self.score_threshold = float(score_threshold)
        self.max_side = max_side
        self.top_k = int(top_k)
        self._load()

    def _load(self) -> None:
        """Load the model file (OpenCV's FaceDetectorYN here; detectors/yunet_ort.py runs it in ONNX Runtime)."""
        try:
            with quiet_opencv():
                self._net = cv2.FaceDetectorYN.create(str(self.model_path), "", (320, 320), self.score_threshold,
                                                      self.nms_threshold, self.top_k)
        except cv2.error as e:
            raise ModelError(f"cannot load face model {self.model_path}: not a YuNet ONNX file "
                             f"({str(e).strip().splitlines()[-1]})") from None
        self._size: tuple[int, int] = (320, 320)

    def describe(self) -> dict:
        return {"name": self.name, "model_file": self.model_path.name, "score_threshold": self.score_threshold}

    def _run(self, image: np.ndarray) -> Optional[np.ndarray]:
        """YuNet's N x 15 rows for ``image`` at its own size (None: no face), after score threshold and NMS."""
        size = (image.shape[1], image.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        return self._net.detect(image)[1]

    def _run_batch(self, images: Sequence[np.ndarray]) -> list[Optional[np.ndarray]]:
        """``_run`` for each image (OpenCV's detector takes one image at a time; ONNX Runtime batches them)."""
        return [self._run(im) for im in images]

    def _tiled(self, image: np.ndarray) -> np.ndarray:
        """N x 15 rows for ``image`` searched tile by tile (all tiles in one ``_run_batch``)."""
        h, w = image.shape[:2]
        xs, ys = tile_starts(w, self.tile, self.tile_overlap), tile_starts(h, self.tile, self.tile_overlap)
        tw, th = min(self.tile, w), min(self.tile, h)
        spots = [(i, j) for j in range(len(ys)) for i in range(len(xs))]
        found = self._run_batch([image[ys[j]:ys[j] + th, xs[i]:xs[i] + tw] for i, j in spots])
        # each tile keeps the faces centred in its core (cores split every overlap in the middle): one copy of
        # every face smaller than the overlap, and none of the half faces a tile edge cuts
        cx_bounds, cy_bounds = core_bounds(xs, tw), core_bounds(ys, th)
        rows = []
        for (i, j), r in zip(spots, found):
            if r is None or not len(r):
                continue
            x, y = xs[i], ys[j]
            r = r.astype(np.float64) + np.r_[x, y, 0, 0, np.tile([x, y], 5), 0]
            cx, cy = r[:, 0] + r[:, 2] / 2, r[:, 1] + r[:, 3] / 2
            (x0, x1), (y0, y1) = cx_bounds[i], cy_bounds[j]
            rows.append(r[(cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)])
        return np.concatenate(rows) if rows else np.zeros((0, 15))

    def _detect_at(self, image: np.ndarray, scale: float) -> list[np.ndarray]:
        """The rows of each search at ``scale``, in the image's own pixels: the frame, and (``mirror_search``) the
        mirrored frame with its boxes and landmarks mirrored back."""
        h, w = image.shape[:2]
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
        frames = [image, np.ascontiguousarray(image[:, ::-1])] if self.mirror_search else [image]
        if self.tile and max(image.shape[:2]) > self.tile:
            found = [self._tiled(f) for f in frames]
        else:
            found = self._run_batch(frames)
        parts = []
        for k, rows in enumerate(found):
            rows = np.zeros((0, 15)) if rows is None or not len(rows) else rows.astype(np.float64)
            if k == 1 and len(rows):  # the mirrored frame's boxes, mirrored back
                iw = image.shape[1]
                rows[:, 0] = iw - rows[:, 0] - rows[:, 2]
                lm = rows[:, 4:14].reshape(-1, 5, 2)[:, MIRRORED_LANDMARKS]
                lm[:, :, 0] = iw - lm[:, :, 0]
                rows[:, 4:14] = lm.reshape(-1, 10)
            parts.append(rows / np.r_[np.full(14, scale), 1.0])
        return parts

    def _search(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``detect_raw``'s rows and, for each, the score the box correction takes: its own, or with ``wbf`` and a
        correction fitted on single boxes (its ``merge`` "nms") the best of the boxes fused into it."""
        h, w = image.shape[:2]
        base = 1.0
        if self.max_side and max(h, w) > self.max_side:
            base = self.max_side / max(h, w)
        up = min(self.upscale, self.max_upscaled_side / (max(h, w) * base)) if self.upscale > 1 else self.upscale
        two = up > 1.05
        parts = self._detect_at(image, base * min(up, 1.0)) if self.full_pass or not two else []
        if two:
            parts += self._detect_at(image, base * up)
        rows = np.concatenate(parts)
        if len(rows) and self.box_merge == "wbf":
            from ..boxes import fuse_boxes

            fused, best = fuse_boxes(rows, len(parts))
            on_fused = self.box_correction is not None and self.box_correction.merge == "wbf"
            return fused, (fused[:, 14] if on_fused else best)
        if len(rows) and (len(parts) > 1 or self.tile):
            from ..boxes import nms_merge, xywh_to_xyxy

            rows = rows[nms_merge(xywh_to_xyxy(rows[:, :4]), rows[:, 14], self.nms_threshold)]
        rows = rows[np.argsort(-rows[:, 14], kind="stable")]
        return rows, rows[:, 14]

    def detect_raw(self, image: np.ndarray) -> np.ndarray:
        """YuNet's rows in the image's own pixels, highest score first, before any box correction: N x 15 float64
        (x, y, w, h, five landmark x/y pairs, score).

        With ``upscale`` > 1 the frame is searched twice, as it is and enlarged (to at most ``max_upscaled_side``
        px), and the two sets of boxes are merged (``box_merge``): the enlarged frame finds the small faces, the frame
        as it is keeps the large ones (YuNet finds faces of about 10 to 300 px), so a close-up is not broken up."""
        return self._search(image)[0]

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        rows, fit_scores = self._search(image)
        if self.contained is not None and len(rows) > 1:  # one face, one box: a loose twin goes (CONTAINED)
            from ..boxes import drop_contained, xywh_to_xyxy

            keep = drop_contained(xywh_to_xyxy(rows[:, :4]), rows[:, 14], self.contained)
            rows, fit_scores = rows[keep], fit_scores[keep]
        boxes = rows[:, :4]
        if self.box_correction is not None and len(rows):
            boxes = self.box_correction(boxes, rows[:, 4:14], fit_scores)
        faces = []
        for b, r in zip(boxes, rows):
            box = _clip_box(*b, w, h)
            if box[2] > 0 and box[3] > 0:
                faces.append(Face(box, float(r[14]), r[4:14].reshape(5, 2).astype(np.float32)))
        return faces


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of equal tiles of ``tile`` px covering ``length`` px, neighbours sharing at least ``overlap``
    px; the last tile ends at the edge (so every tile has the same size and they batch)."""
    if length <= tile:
        return [0]
    n = int(np.ceil((length - overlap) / (tile - overlap)))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def core_bounds(starts: Sequence[int], tile: int) -> list[tuple[float, float]]:
    """Each tile's share [lo, hi) of the line: neighbours' overlaps split in the middle, open at both ends."""
    cuts = [(b + a + tile) / 2 for a, b in pairwise(starts)]
    return list(zip([-np.inf, *cuts], [*cuts, np.inf]))


def haar_cascade_path(path: str | os.PathLike | None = None) -> Path:
    candidates: Sequence[Path]
    if path is not None:
        candidates = [Path(path).expanduser()]
    else:
        data = getattr(getattr(cv2, "data", None), "haarcascades", "") or ""
        candidates = [Path(data) / HAAR_FILE, Path("/usr/share/opencv4/haarcascades") / HAAR_FILE,
                      Path("/usr/share/opencv/haarcascades") / HAAR_FILE]
    for c in candidates:
        if c.is_file():
            return c
    raise ModelError(f"no Haar cascade file found (looked at {', '.join(map(str, candidates))}); "
                     f"this OpenCV build ships none: install 'opencv-python-headless<5' or use --detector yunet")


@FACE_DETECTORS.register("haar", needs_file=False)
class HaarDetector:
    """OpenCV's bundled frontal-face Haar cascade. No calibrated score: every face gets 1.0, no landmarks."""

    name = "haar"

    def __init__(self, cascade_path: str | os.PathLike | None = None, scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_size: int = 20) -> None:
        if not hasattr(cv2, "CascadeClassifier"):
            raise ModelError(f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 moved Haar cascades "
                             f"out of its main build): install 'opencv-python-headless<5' for the haar detector, "
                             f"or use --detector yunet")
        self.cascade_path = haar_cascade_path(cascade_path)
        self._cascade = cv2.CascadeClassifier(str(self.cascade_path))
        if self._cascade.empty():
            raise ModelError(f"cannot load Haar cascade {self.cascade_path}")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size

    def describe(self) -> dict:
        return {"name": self.name, "model_file": self.cascade_path.name, "score_threshold": None}

    def detect(self, image: np.ndarray) -> list[Face]:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image)
        boxes = self._cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                               minSize=(self.min_size, self.min_size))
        h, w = image.shape[:2]
        faces = [Face(_clip_box(*b, w, h), 1.0, None) for b in np.asarray(boxes).reshape(-1, 4)]
        return sorted(faces, key=lambda f: -f.box[2] * f.box[3])
