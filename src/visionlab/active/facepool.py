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
from ..io import atomic_write_bytes, atomic_write_text, sha256_file
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


def build_pool(project: Path, inputs: Sequence[str | Path], model: Optional[str], st: PoolSettings,
               quiet: bool = True, **detect_fields) -> dict:
    """Detect faces in ``inputs`` and write faces/, frames/, faces.jsonl and the starting model's scores into
    ``project``. Returns counts."""
    from ..detect.build import build_pipeline
    from ..detect.pipeline import square_crop

    sources = list_sources(inputs)
    built = build_pipeline(None, kind="image", model=model, min_face_prob=st.min_face_prob, quiet=True,
                           **detect_fields)
    pipe = built.pipeline
    fm = FaceModel(model)
    faces: list[dict] = []
    embs, probs = [], []
    frames_seen = frames_kept = 0
    n_frame = 0
    for si, (src, kind) in enumerate(sources):
        prev: Optional[tuple[np.ndarray, list[int]]] = None  # last kept frame's boxes (xyxy) and their tracks
        n_tracks = 0
        try:
            frames = list(_frames(src, kind, st))
        except DataError as e:
            print(f"warning: skipped {src}: {e}", file=sys.stderr, flush=True)
            continue
        for fi, t, bgr in frames:
            frames_seen += 1
            results = pipe(bgr)
            frame_name = f"{FRAMES}/p{n_frame:05d}.jpg"
            h, w = bgr.shape[:2]
            scale = min(1.0, MAX_FRAME / max(h, w))
            n_frame += 1
            if results:
                frames_kept += 1
                small = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) \
                    if scale < 1 else bgr
                atomic_write_bytes(project / frame_name, _jpeg(small))
            xyxy = np.array([[r.box[0], r.box[1], r.box[0] + r.box[2], r.box[1] + r.box[3]] for r in results],
                            np.float64).reshape(-1, 4)
            tracks = [-1] * len(results)
            if kind == "video" and prev is not None and len(results):
                for a, b, _ in match(xyxy, prev[0], TRACK_IOU):
                    tracks[a] = prev[1][b]
            for j in range(len(tracks)):
                if tracks[j] < 0:
                    tracks[j] = n_tracks
                    n_tracks += 1
            prev = (xyxy, tracks)
            if not results:
                continue
            c64 = pipe.crops(bgr, results)
            p, e = fm(c64)
            probs.append(p)
            embs.append(e)
            for j, (r, tr) in enumerate(zip(results, tracks)):
                x0, y0, side = square_crop(bgr, r.box, pipe.margin)
                crop = bgr[y0:y0 + side, x0:x0 + side]
                if side > MAX_CROP:
                    crop = cv2.resize(crop, (MAX_CROP, MAX_CROP), interpolation=cv2.INTER_AREA)
                name = f"f{len(faces):06d}.png"
                data = cv2.imencode(".png", crop)[1].tobytes()
                atomic_write_bytes(project / FACES / name, data)
                group = f"{si}" if kind == "photo" else f"{si}:{int((t or 0) // st.segment_s)}"
                faces.append({
                    "id": name[:-4], "crop": f"{FACES}/{name}", "path": name,
                    "sha256": hashlib.sha256(data).hexdigest(), "source": str(src), "kind": kind,
                    "frame": int(fi), "time_s": None if t is None else round(float(t), 3),
                    "frame_image": frame_name, "frame_scale": round(scale, 6),
                    "box": [int(v) for v in r.box], "crop_box": [int(x0), int(y0), int(side), int(side)],
                    "score": round(float(r.score), 4), "face_prob": round(float(r.face), 5),
                    "probs": {k: round(float(v), 5) for k, v in zip(fm.classes, p[j])},
                    "track": f"{si}:{tr}" if kind == "video" else f"{si}:face{len(faces)}",
                    "group": group})
        if not quiet:
            print(f"{src.name}: {sum(1 for f in faces if f['source'] == str(src))} faces", file=sys.stderr,
                  flush=True)
    held = holdout_groups([f["group"] for f in faces], st.holdout, st.seed)
    for f in faces:
        f["holdout"] = f["group"] in held
    atomic_write_text(project / FACES_FILE, "".join(json.dumps(f) + "\n" for f in faces))
    if faces:
        save_scores(project, "r0", np.concatenate(probs), np.concatenate(embs), fm.classes)
    return {"sources": len(sources), "frames": frames_seen, "frames_with_faces": frames_kept, "faces": len(faces),
            "held_out": sum(f["holdout"] for f in faces), "tracks": len({f["track"] for f in faces}),
            "embedding": fm.embedding_from or "pixels", "model": str(fm.path)}


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


def pool_fingerprint(project: Path) -> str:
    return sha256_file(Path(project) / FACES_FILE)[:12]
