"""Decode a list of image files once; later runs load the uint8 pixels from a cache file in well under a second.

The cache lives in ``cfg.cache_dir``, ``$VISIONLAB_CACHE`` or ``~/.cache/visionlab`` (``io.cache_root``), never beside the data
(data folders may be read-only or shared). An entry is keyed by a sha256 over every file's relative path, size
and mtime_ns plus the image size and ``FORMAT``, so a changed, added or removed file makes a new entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..errors import DataError
from ..images import decode_array
from ..io import atomic_write_text, cache_root, write_via

FORMAT = "decoded-v1"  # bump when decoding changes pixels, so old entries are not reused
CHUNK = 256  # files per thread-pool task: big enough to amortise scheduling, small enough for a smooth bar


def stamps(files: Sequence[str | Path], root: str | Path) -> list[tuple[str, int, int]]:
    """(path relative to ``root`` with '/' separators, size, mtime_ns) per file: what the cache key is made of."""
    prefix = os.path.join(str(root), "")
    out = []
    for f in map(str, files):
        try:
            st = os.stat(f)
        except OSError as e:
            raise DataError(f"{f}: cannot be read ({e.strerror}); check that the data folder is complete") from None
        rel = f[len(prefix):] if f.startswith(prefix) else os.path.relpath(f, root)
        out.append((rel.replace(os.sep, "/"), st.st_size, st.st_mtime_ns))
    return out


def cache_key(stamp_list: Sequence[tuple[str, int, int]], size: Optional[int], extra: str = "") -> str:
    h = hashlib.sha256(f"{FORMAT}|{size}|{extra}\n".encode())
    for rel, n, mtime in stamp_list:
        h.update(f"{rel}\0{n}\0{mtime}\n".encode("utf-8", "surrogateescape"))  # a non-UTF-8 name keeps its bytes
    return h.hexdigest()[:32]


@dataclass
class Decoded:
    """Pixels of the files that decoded (``kept`` indexes the input list) and the (path, reason) of those that did not."""

    x: torch.Tensor  # uint8 K x 3 x S x S
    kept: np.ndarray  # int64 K: positions in the input file list
    skipped: list[tuple[str, str]]
    key: str
    hit: bool  # True when loaded from the cache without decoding


def save_array(path: Path, save: Callable) -> None:
    """``save(file)`` (``np.save``, ``np.savez``) into an open temporary file, renamed whole (``io.write_via``).
    NumPy is handed a file, not a name: given a name it appends ``.npy`` to the temporary one."""
    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            save(f)

    write_via(path, writer)


def _load(npy: Path, meta_path: Path, n_files: int) -> Optional[tuple[np.ndarray, dict]]:
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT or meta.get("n_files") != n_files:
            return None
        x = np.load(npy, allow_pickle=False)
    except (OSError, ValueError):  # missing, half-written by a crashed older version, or foreign
        return None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[0] != len(meta["kept"]):
        return None
    return x, meta


def _decode_all(files: Sequence[str], size: Optional[int], quiet: bool, label: str,
                threads: Optional[int]) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    from ..progress import progress

    n = len(files)
    reasons: dict[int, str] = {}
    first, start = None, n
    for i, f in enumerate(files):  # the first decodable file fixes the shape (matters when size is None)
        try:
            first, start = decode_array(f, size), i + 1
            break
        except DataError as e:
            reasons[i] = str(e)
    h, w = first.shape[:2] if first is not None else (size or 1, size or 1)
    out = np.empty((n, 3, h, w), np.uint8)
    ok = np.zeros(n, bool)
    if first is not None:
        out[start - 1], ok[start - 1] = first.transpose(2, 0, 1), True

    def work(lo: int, hi: int) -> int:
        for i in range(lo, hi):
            try:
                a = decode_array(files[i], size)
            except DataError as e:
                reasons[i] = str(e)
                continue
            if a.shape[:2] != (h, w):
                reasons[i] = f"{files[i]}: size {a.shape[1]}x{a.shape[0]} differs from {w}x{h}; pass --image-size"
                continue
            out[i] = a.transpose(2, 0, 1)
            ok[i] = True
        return hi - lo

    # Pillow releases the GIL while it decodes, so threads overlap the C work without pickling pixels around.
    workers = threads or min(8, os.cpu_count() or 1)
    with progress(disable=quiet) as bar, ThreadPoolExecutor(workers) as pool:
        task = bar.add_task(f"decode {label}", total=n, info="", completed=start)
        futures = [pool.submit(work, lo, min(lo + CHUNK, n)) for lo in range(start, n, CHUNK)]
        for fut in as_completed(futures):
            bar.update(task, advance=fut.result())
    kept = np.flatnonzero(ok).astype(np.int64)
    skipped = [(i, reasons[i]) for i in sorted(reasons)]
    return (out if len(kept) == n else out[kept]), kept, skipped


def load_or_decode(files: Sequence[str | Path], root: str | Path, size: Optional[int], cache_dir: Optional[str | Path] = None,
                   quiet: bool = False, label: str = "images", threads: Optional[int] = None) -> Decoded:
    """Pixels of ``files`` (all under ``root``) at ``size`` x ``size``, from the cache or decoded (then cached).

    Unreadable files are skipped and listed with their reason; the skipped list is cached with the pixels.
    With ``size`` None every image must share one native size (others are skipped with a reason).
    """
    root = Path(root)
    files = [str(f) for f in files]
    stamp_list = stamps(files, root)
    key = cache_key(stamp_list, size)
    folder = cache_root(cache_dir) / "decoded"
    npy, meta_path = folder / f"{key}.npy", folder / f"{key}.json"
    got = _load(npy, meta_path, len(files))
    if got is not None:
        x, meta = got
        skipped = [(os.path.join(str(root), rel), reason) for rel, reason in meta["skipped"]]
        return Decoded(torch.from_numpy(x), np.asarray(meta["kept"], np.int64), skipped, key, True)

    x, kept, failed = _decode_all(files, size, quiet, label, threads)
    skipped = [(files[i], r) for i, r in failed]
    meta = {"format": FORMAT, "root": str(root), "size": size, "n_files": len(files), "kept": kept.tolist(),
            "skipped": [(stamp_list[i][0], r) for i, r in failed]}
    try:
        save_array(npy, lambda f: np.save(f, x, allow_pickle=False))
        atomic_write_text(meta_path, json.dumps(meta))  # written last: it marks the entry whole
    except OSError as e:  # WriteError: a read-only or full cache folder costs speed next time, not this run
        from ..progress import console
        console.print(f"[yellow]could not write the decode cache in {folder} ({e.strerror or e}); "
                      f"set --cache-dir or $VISIONLAB_CACHE to a writable folder")
    return Decoded(torch.from_numpy(x), kept, skipped, key, False)


def native_size(files: Sequence[str | Path], root: str | Path, cache_dir: Optional[str | Path] = None) -> Optional[int]:
    """The side every image shares when all are the same square size, else None; remembered per file set.

    Reads headers only (no pixel decoding); used to pick an image size when neither the config nor the model gives one.
    """
    from PIL import Image

    root = Path(root)
    key = cache_key(stamps(files, root), None, "native-size")
    path = cache_root(cache_dir) / "decoded" / f"{key}.size.json"
    try:
        return json.loads(path.read_text())["size"]
    except (OSError, ValueError, KeyError):
        pass
    sizes = set()
    for f in files:
        try:
            if not stat.S_ISREG(os.stat(f).st_mode):  # a FIFO would block the open; decoding reports it
                continue
            with Image.open(f) as im:
                sizes.add(im.size)
        except Exception:  # unreadable files are reported when decoding
            continue
        if len(sizes) > 1:
            break
    side = next(iter(sizes))[0] if len(sizes) == 1 and len(set(next(iter(sizes)))) == 1 else None
    try:
        atomic_write_text(path, json.dumps({"size": side}))
    except OSError:
        pass
    return side


def remember_arrays(kind: str, key: str, compute: Callable[[], dict[str, np.ndarray]],
                    cache_dir: Optional[str | Path] = None) -> dict[str, np.ndarray]:
    """``compute()`` once per key, then read back from ``<cache>/<kind>/<key>.npz`` (small arrays only).

    Used for split indices: computing them needs scikit-learn, whose import alone costs 1-3 s of a warm start.
    """
    path = cache_root(cache_dir) / kind / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):
        pass
    arrays = compute()
    try:
        save_array(path, lambda f: np.savez(f, **arrays))
    except OSError:
        pass
    return arrays
