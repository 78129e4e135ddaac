"""Shared fixtures: where ../shared lives, a cache folder per test session (shared data is read-only), and a real
tmpfs for full-disk and read-only tests."""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VISIONLAB_SHARED", REPO.parent / "shared"))


def load_tool(name: str):
    """A script of tools/ imported as a module (tools/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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


@contextlib.contextmanager
def mounted(where: Path, size: str = "1m", readonly: bool = False):
    """A real tmpfs of ``size`` at ``where`` (root only; skips otherwise), read-only when asked, unmounted
    afterwards."""
    where.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("a real full or read-only filesystem needs root to mount a tmpfs")
    opts = f"ro,size={size}" if readonly else f"size={size}"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path) -> None:
    """Write until the filesystem says ENOSPC, down to the last byte."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 16, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
