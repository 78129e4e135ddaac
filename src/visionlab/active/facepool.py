"""A face pool: every face the detection pipeline finds in a user's photos and videos, kept as a crop inside
the project, with where it came from. The user's files are only ever read.

    PROJECT/faces/fNNNNNN.png     each face, cut with the pipeline's own geometry (``square_crop`` with its
                                  margin; at most MAX_CROP px a side), the pool the label store labels
    PROJECT/frames/pNNNNN.jpg     each photo or sampled video frame (at most MAX_FRAME px a side): the context
                                  the labeller shows with the face outlined
    PROJECT/faces.jsonl           one record per face: crop, source, frame, time, box, detector score, face
                                  probability, the classifier's probabilities, its track and hold-out group
    PROJECT/scores/<model>.npz    probabilities and embeddings of every face under one model (scores.py)

Video is sampled at ``per_second`` frames per second; a sampled frame whose grey thumbnail differs from the
last kept one by less than ``min_change`` grey levels on average is skipped (a still scene gives one frame,
not hundreds). Faces in consecutive kept frames of a video are linked into tracks by IoU, so a query can take
one face per person. The detector runs with the photo setting (``accurate``) on frames too: a pool is made
once, and small faces are what a camera sees.

The hold-out set is chosen by photo (a photo, or a ``segment_s``-second stretch of a video, is one group):
its faces are never queried; labelling them (``query --held-out``) gives each round's evaluation.
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import cv2
import numpy as np

from ..boxes import match
from ..errors import DataError
from ..images import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from ..io import atomic_write_bytes, atomic_write_text
from .facemodel import FaceModel
from .store import list_images

FACES, FRAMES, FACES_FILE, SCORES = "faces", "frames", "faces.jsonl", "scores"
MAX_CROP, MAX_FRAME = 256, 1024
TRACK_IOU = 0.3


@dataclass
class PoolSettings:
    per_second: float = 2.0  # video frames sampled per second
    min_change: float = 2.0  # mean absolute grey-level difference (0-255) below which a sampled frame is skipped
    min_face_prob: float = 0.2  # boxes the classifier thinks are faces with less than this are not kept
    holdout: float = 0.2  # share of photo groups held back for evaluation
    segment_s: float = 10.0  # a video's hold-out groups are stretches of this many seconds
    seed: int = 0


def _thumb(bgr: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)


def sample_video(path: Path, per_second: float, min_change: float) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, time in s, BGR frame) of the frames kept: ``per_second`` a second, near-identical ones
    skipped. Frames in between are grabbed, not decoded."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"cannot open video {path} (OpenCV could not read it); convert it to MP4 (H.264) and retry")
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if fps and fps > 0 and np.isfinite(fps) else 25.0
        step = max(fps / per_second, 1.0)
        i, due, last = 0, 0.0, None
        while cap.grab():
            if i + 1e-6 >= due:
                due += step
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    th = _thumb(frame)
                    if last is None or float(np.abs(th - last).mean()) >= min_change:
                        last = th
                        yield i, i / fps, frame
            i += 1
    finally:
        cap.release()


def list_sources(inputs: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """(file, 'photo'|'video') for every input: a photo, a video, or a folder of them (searched recursively)."""
    out: list[tuple[Path, str]] = []
    for s in inputs:
        p = Path(s).expanduser()
        if p.is_dir():
            files = list_images(p) + sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES
                                            and f.is_file() and not any(q.startswith(".") for q in f.parts))
            out += [(f.resolve(), "video" if f.suffix.lower() in VIDEO_SUFFIXES else "photo") for f in sorted(files)]
        elif p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            out.append((p.resolve(), "video"))
        elif p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            out.append((p.resolve(), "photo"))
        elif p.exists():
            raise DataError(f"--photos {p} is neither a photo ({', '.join(sorted(IMAGE_SUFFIXES))}), a video "
                            f"({', '.join(sorted(VIDEO_SUFFIXES))}) nor a folder of them")
        else:
            raise DataError(f"--photos {p} does not exist; give a folder of photos, a photo or a video")
    if not out:
        raise DataError(f"no photos or videos in {', '.join(str(s) for s in inputs)}")
    return out


def _frames(source: Path, kind: str, st: PoolSettings) -> Iterator[tuple[int, Optional[float], np.ndarray]]:
    if kind == "video":
        yield from sample_video(source, st.per_second, st.min_change)
        return
    from ..detect.run import read_image

    yield 0, None, read_image(source)


def _jpeg(bgr: np.ndarray, quality: int = 90) -> bytes:
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def holdout_groups(groups: list[str], share: float, seed: int) -> set[str]:
    """The groups held back: ``round(share * n)`` of the distinct groups (at least one when share > 0 and there are
    two or more), drawn with ``seed``."""
    distinct = sorted(set(groups))
    if share <= 0 or len(distinct) < 2:
        return set()
    n = min(len(distinct) - 1, max(1, int(round(share * len(distinct)))))
    rng = np.random.default_rng(seed)
    return {distinct[i] for i in rng.choice(len(distinct), n, replace=False)}


class _Tracker:
    """IoU tracks across the kept frames of one video (a photo's faces each get their own)."""

    def __init__(self) -> None:
        self.prev: Optional[tuple[np.ndarray, list[int]]] = None  # last kept frame's boxes (xyxy), their tracks
        self.n = 0

    def __call__(self, boxes: list, linked: bool) -> list[int]:
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in boxes], np.float64).reshape(-1, 4)
        tracks = [-1] * len(boxes)
        if linked and self.prev is not None and len(boxes):
            for a, b, _ in match(xyxy, self.prev[0], TRACK_IOU):
                tracks[a] = self.prev[1][b]
        for j in range(len(tracks)):
            if tracks[j] < 0:
                tracks[j], self.n = self.n, self.n + 1
        self.prev = (xyxy, tracks)
        return tracks


class _PoolWriter:
    """Writes one frame's faces (crops, the frame, records) into the project."""

    def __init__(self, project: Path, pipe, fm: FaceModel, st: PoolSettings) -> None:
        self.project, self.pipe, self.fm, self.st = project, pipe, fm, st
        self.faces: list[dict] = []
        self.probs: list[np.ndarray] = []
        self.embs: list[np.ndarray] = []
        self.frames_seen = self.frames_kept = 0

    def frame(self, si: int, src: Path, kind: str, fi: int, t: Optional[float], bgr: np.ndarray,
              tracker: _Tracker) -> None:
        from ..detect.pipeline import square_crop

        frame_name = f"{FRAMES}/p{self.frames_seen:05d}.jpg"
        self.frames_seen += 1
        results = self.pipe(bgr)
        tracks = tracker([r.box for r in results], kind == "video")
        if not results:
            return
        self.frames_kept += 1
        h, w = bgr.shape[:2]
        scale = min(1.0, MAX_FRAME / max(h, w))
        small = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) \
            if scale < 1 else bgr
        atomic_write_bytes(self.project / frame_name, _jpeg(small))
        p, e = self.fm(self.pipe.crops(bgr, results))
        self.probs.append(p)
        self.embs.append(e)
        for j, (r, tr) in enumerate(zip(results, tracks)):
            x0, y0, side = square_crop(bgr, r.box, self.pipe.margin)
            crop = bgr[y0:y0 + side, x0:x0 + side]
            if side > MAX_CROP:
                crop = cv2.resize(crop, (MAX_CROP, MAX_CROP), interpolation=cv2.INTER_AREA)
            name = f"f{len(self.faces):06d}.png"
            data = cv2.imencode(".png", crop)[1].tobytes()
            atomic_write_bytes(self.project / FACES / name, data)
            self.faces.append({
                "id": name[:-4], "crop": f"{FACES}/{name}", "path": name,
                "sha256": hashlib.sha256(data).hexdigest(), "source": str(src), "kind": kind,
                "frame": int(fi), "time_s": None if t is None else round(float(t), 3),
                "frame_image": frame_name, "frame_scale": round(scale, 6),
                "box": [int(v) for v in r.box], "crop_box": [int(x0), int(y0), int(side), int(side)],
                "score": round(float(r.score), 4), "face_prob": round(float(r.face), 5),
                "probs": {k: round(float(v), 5) for k, v in zip(self.fm.classes, p[j])},
                "track": f"{si}:{tr}" if kind == "video" else f"{si}:face{len(self.faces)}",
                "group": f"{si}" if kind == "photo" else f"{si}:{int((t or 0) // self.st.segment_s)}"})


def build_pool(project: Path, inputs: Sequence[str | Path], model: Optional[str], st: PoolSettings,
               quiet: bool = True, **detect_fields) -> dict:
    """Detect faces in ``inputs`` and write faces/, frames/, faces.jsonl and the starting model's scores into
    ``project``. Returns counts."""
    from ..detect.build import build_pipeline

    sources = list_sources(inputs)
    pipe = build_pipeline(None, kind="image", model=model, min_face_prob=st.min_face_prob, quiet=True,
                          **detect_fields).pipeline
    fm = FaceModel(model)
    w = _PoolWriter(project, pipe, fm, st)
    for si, (src, kind) in enumerate(sources):
        tracker, before = _Tracker(), len(w.faces)
        try:
            for fi, t, bgr in _frames(src, kind, st):  # one frame in memory at a time
                w.frame(si, src, kind, fi, t, bgr, tracker)
        except DataError as e:
            print(f"warning: skipped {src}: {e}", file=sys.stderr, flush=True)
            continue
        if not quiet:
            print(f"{src.name}: {len(w.faces) - before} faces", file=sys.stderr, flush=True)
    faces = w.faces
    held = holdout_groups([f["group"] for f in faces], st.holdout, st.seed)
    for f in faces:
        f["holdout"] = f["group"] in held
    atomic_write_text(project / FACES_FILE, "".join(json.dumps(f) + "\n" for f in faces))
    if faces:
        save_scores(project, "r0", np.concatenate(w.probs), np.concatenate(w.embs), fm.classes)
    return {"sources": len(sources), "frames": w.frames_seen, "frames_with_faces": w.frames_kept,
            "faces": len(faces), "held_out": sum(f["holdout"] for f in faces),
            "tracks": len({f["track"] for f in faces}), "embedding": fm.embedding_from or "pixels",
            "model": str(fm.path)}


def load_faces(project: Path) -> list[dict]:
    p = Path(project) / FACES_FILE
    try:
        return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise DataError(f"{p} cannot be read ({e}); the face pool is damaged: make a new project with "
                        f"`visionlab active init --photos ...`") from None


def scores_file(project: Path, version: str) -> Path:
    return Path(project) / SCORES / f"{version}.npz"


def save_scores(project: Path, version: str, probs: np.ndarray, embs: np.ndarray, classes: list[str]) -> None:
    import io

    buf = io.BytesIO()
    np.savez(buf, probs=probs.astype(np.float32), embeddings=embs.astype(np.float32), classes=np.asarray(classes))
    atomic_write_bytes(scores_file(project, version), buf.getvalue())


def load_scores(project: Path, version: str) -> Optional[tuple[np.ndarray, np.ndarray, list[str]]]:
    p = scores_file(project, version)
    if not p.is_file():
        return None
    try:
        with np.load(p) as z:
            return z["probs"], z["embeddings"], [str(c) for c in z["classes"]]
    except Exception:  # a damaged cache file: the caller scores the pool again
        return None
