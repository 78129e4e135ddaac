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
