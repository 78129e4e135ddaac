"""Shared fixtures: where ../shared lives, and a cache folder per test session (shared data is read-only)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VISIONLAB_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data {p} is absent (set VISIONLAB_SHARED to the folder holding data/ and models/)")
    return p


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    cache = tmp_path_factory.mktemp("visionlab-cache")
    old = os.environ.get("VISIONLAB_CACHE")
    os.environ["VISIONLAB_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("VISIONLAB_CACHE", None)
    else:
        os.environ["VISIONLAB_CACHE"] = old
