"""Helpers for the data-layer tests: where ../shared/data is, and small image trees written into tmp_path.

A plain module (not a conftest) so test files can import it by a name no other test folder uses."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionlab.config import RunConfig


def shared_data(*parts: str) -> Path:
    """A path under the shared data folder (beside the repository, or $VISIONLAB_SHARED/data); skips if absent."""
    base = Path(os.environ["VISIONLAB_SHARED"]) / "data" if os.environ.get("VISIONLAB_SHARED") \
        else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    p = base.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data {p} is absent (set VISIONLAB_SHARED to the folder that holds data/)")
    return p


def make_cfg(tmp_path: Path, **kw) -> RunConfig:
    """A quiet config whose cache is inside tmp_path (shared data is read-only; tests must not share caches)."""
    return RunConfig.build(cache_dir=str(tmp_path / "cache"), quiet=True, **kw)


def write_tree(root: Path, counts: dict[str, dict[str, int]] | dict[str, int], size: int = 12, seed: int = 0) -> Path:
    """Write PNGs: ``{class: n}`` (one folder of class folders) or ``{split: {class: n}}``. Pixels differ per file."""
    rng = np.random.default_rng(seed)
    nested = counts if all(isinstance(v, dict) for v in counts.values()) else {"": counts}
    for split, classes in nested.items():
        for c, n in classes.items():
            d = root / split / c if split else root / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(d / f"{c}_{i:03d}.png")
    return root
