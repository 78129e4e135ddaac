"""Small synthetic image folders written into tmp_path: two colour classes a pixel-feature head separates."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, cls: int, seed: int, size: int = 24) -> Path:
    """Class 0: reddish, class 1: bluish, each with noise so every file has different content."""
    rng = np.random.default_rng(seed)
    base = np.array([200, 60, 50] if cls == 0 else [50, 70, 200], np.float64)
    shade = rng.uniform(0.6, 1.0)
    img = np.clip(base * shade + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


@pytest.fixture
def folders(tmp_path):
    """pool/ (unlabelled, 24 images, a nested sub-folder), labelled/<class>/ (3 per class)."""
    pool, labelled = tmp_path / "pool", tmp_path / "labelled"
    for i in range(24):
        sub = "batch2/" if i >= 18 else ""
        write_image(pool / f"{sub}img_{i:03d}.png", i % 2, 1000 + i)
    for c, name in enumerate(["mask", "nomask"]):
        for i in range(3):
            write_image(labelled / name / f"l{i}.png", c, 2000 + 10 * c + i)
    return pool, labelled


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """relative path -> (sha256, mtime_ns) of every file: proves nothing moved, changed or vanished."""
    from visionlab.active.store import sha256_file
    return {p.relative_to(root).as_posix(): (sha256_file(p), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


# --- face pools ---------------------------------------------------------------------------------------------
PHOTOS = Path(__file__).resolve().parents[2] / "src" / "visionlab" / "assets" / "photos"


def write_video(path: Path, still_s: float = 2.0, pan_s: float = 3.0, fps: int = 10) -> Path:
    """A real MP4 made from a bundled photo (pic1: two masked faces): ``still_s`` seconds of one still frame
    (near-identical frames the sampler must skip), then ``pan_s`` seconds of a camera panning 4 px a frame
    (the same two people in every frame: one track each)."""
    import cv2

    img = cv2.imread(str(PHOTOS / "pic1.jpeg"))
    w, h = 640, 440
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for _ in range(int(still_s * fps)):
        vw.write(img[50:50 + h, 0:w])
    for i in range(int(pan_s * fps)):
        x = 4 * i
        vw.write(img[50:50 + h, x:x + w])
    vw.release()
    return path


@pytest.fixture(scope="session")
def face_inputs(tmp_path_factory):
    """A user's folder: two bundled photos and a short video; returns (folder, video)."""
    import shutil

    root = tmp_path_factory.mktemp("camera")
    for name in ("maksssksksss627.jpg", "maksssksksss702.jpg"):
        shutil.copy(PHOTOS / name, root / name)
    video = write_video(root / "clip.mp4")
    return root, video


@pytest.fixture(scope="session")
def face_project_template(face_inputs, tmp_path_factory):
    """A face project made once per session (copy it with ``face_project`` before changing it)."""
    from visionlab.active import loop

    out = tmp_path_factory.mktemp("faceproj") / "proj"
    loop.init(photos=[face_inputs[0]], project=out, seed=0, holdout=0.34)
    return out


@pytest.fixture
def face_project(face_project_template, tmp_path):
    import shutil

    dst = tmp_path / "proj"
    shutil.copytree(face_project_template, dst, symlinks=True)
    return dst
