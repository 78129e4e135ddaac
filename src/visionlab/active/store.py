"""The label store: an append-only ``labels.jsonl`` that is the only place labels live.

Each record is one JSON line, written with a single ``write`` and ``fsync``'d before the call returns, so a
label the labeller saw acknowledged survives a kill or power cut. Records are never rewritten: an undo is a
new record (``op: "undo"``) naming the id it cancels, and the current labels are a replay of the log. A kill
in the middle of a write can leave a torn last line; reading skips it and the next append starts a fresh
line after it. Images are addressed by their path relative to the pool root and their sha256, and are
only ever read: nothing here moves, renames or deletes them.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Literal, Optional

from ..errors import ConfigError, DataError

SOURCES = ("human", "pseudo", "oracle")
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` so a reader (or a crash) sees the old file or the new one, never half."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)
    fsync_dir(p.parent)


def read_jsonl(path: str | Path) -> list[dict]:
    """Every complete JSON object line of ``path``; a torn or garbled line (a killed writer) is skipped."""
    p = Path(path)
    if not p.is_file():
        return []
    out = []
    for line in p.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one record durably. If the file ends mid-line (torn by a kill), start a new line first."""
    p = Path(path)
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """An exclusive advisory lock; the kernel drops it when the holder dies, so a kill never leaves it stuck."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class DuplicateLabelError(DataError):
    """The image (by content hash) already has a label; undo it first to relabel."""


@dataclass(frozen=True)
class Label:
    id: int
    path: str  # relative to the pool root, with forward slashes
    sha256: str
    label: str
    source: str
    time: str
    model_version: Optional[str]


class LabelStore:
    """``labels.jsonl`` of a project, for images under ``pool_root``."""

    def __init__(self, path: str | Path, pool_root: str | Path, classes: Optional[list[str]] = None) -> None:
        self.path = Path(path)
        self.pool_root = Path(pool_root).resolve()
        self.classes = list(classes) if classes is not None else None
        self._lock = self.path.with_name(self.path.name + ".lock")

    # --- reading ------------------------------------------------------------------------------------------
    def records(self) -> list[dict]:
        return [r for r in read_jsonl(self.path) if r.get("op") in ("label", "undo") and isinstance(r.get("id"), int)]

    def current(self) -> dict[str, Label]:
        """sha256 -> its live label: the log replayed, undone records removed."""
        live: dict[int, dict] = {}
        for r in self.records():
            if r["op"] == "label":
                live[r["id"]] = r
            else:
                live.pop(r.get("ref"), None)
        out: dict[str, Label] = {}
        for r in live.values():  # in log order; a later live duplicate (impossible via append) would win
            out[r["sha256"]] = Label(r["id"], r["path"], r["sha256"], r["label"], r["source"], r["time"],
                                     r.get("model_version"))
        return out

    def labels(self, sources: tuple[str, ...] = SOURCES) -> list[Label]:
        return sorted((lab for lab in self.current().values() if lab.source in sources), key=lambda lab: lab.id)

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in SOURCES}
        for lab in self.current().values():
            out[lab.source] = out.get(lab.source, 0) + 1
        return out

    # --- writing ------------------------------------------------------------------------------------------
    def relpath(self, image: str | Path) -> str:
        p = Path(image)
        p = (p if p.is_absolute() else self.pool_root / p).resolve()
        try:
            return p.relative_to(self.pool_root).as_posix()
        except ValueError:
            raise DataError(f"{image} is not inside the pool {self.pool_root}; only pool images can be labelled") \
                from None

    def add(self, image: str | Path, label: str, source: str = "human", model_version: Optional[str] = None,
            sha256: Optional[str] = None) -> Label:
        """Append a label for ``image`` (a path inside the pool). Refused if its content already has one."""
        if source not in SOURCES:
            raise ConfigError(f"label source must be one of {', '.join(SOURCES)}, not {source!r}")
        if self.classes is not None and label not in self.classes:
            raise ConfigError(f"unknown class {label!r}; the project's classes are {', '.join(self.classes)}")
        rel = self.relpath(image)
        full = self.pool_root / rel
        if not full.is_file():
            raise DataError(f"{full} does not exist")
        digest = sha256 or sha256_file(full)
        with file_lock(self._lock):  # read-check-append is one step even with two labellers
            cur = self.current()
            if digest in cur:
                old = cur[digest]
                raise DuplicateLabelError(
                    f"{rel} is already labelled {old.label!r} ({old.source}, entry {old.id}"
                    f"{', as ' + old.path if old.path != rel else ''}); undo that entry to relabel it")
            rec = {"id": self._next_id(), "op": "label", "path": rel, "sha256": digest, "label": label,
                   "source": source, "time": now_iso(), "model_version": model_version}
            append_jsonl(self.path, rec)
        return Label(rec["id"], rel, digest, label, source, rec["time"], model_version)

    def undo(self, entry_id: Optional[int] = None, source: Optional[str] = None) -> Optional[Label]:
        """Cancel the label entry ``entry_id`` (default: the most recent live one, of ``source`` if given).
        Returns the cancelled label, or None when there is nothing to undo."""
        with file_lock(self._lock):
            live = sorted(self.current().values(), key=lambda lab: lab.id)
            if entry_id is None:
                cands = [lab for lab in live if source is None or lab.source == source]
                if not cands:
                    return None
                target = cands[-1]
            else:
                match = [lab for lab in live if lab.id == entry_id]
                if not match:
                    raise DataError(f"entry {entry_id} is not a live label in {self.path} (never written, or undone)")
                target = match[0]
            append_jsonl(self.path, {"id": self._next_id(), "op": "undo", "ref": target.id, "path": target.path,
                                     "sha256": target.sha256, "label": target.label, "source": target.source,
                                     "time": now_iso()})
        return target

    def _next_id(self) -> int:
        return max((r["id"] for r in self.records()), default=0) + 1

    # --- export -------------------------------------------------------------------------------------------
    def export(self, dest: str | Path, mode: Literal["copy", "link"] = "copy",
               sources: tuple[str, ...] = SOURCES) -> dict[str, int]:
        """Write ``dest/<label>/<file>`` for every live label: copies, or symlinks to the originals.

        The originals are only read. ``dest`` must not be inside the pool (an export must never become part of
        the pool it came from). Returns the number of files per class."""
        return export_files(((self.pool_root / lab.path, lab.label, lab.sha256) for lab in self.labels(sources)),
                            dest, mode, forbid=[self.pool_root])


def export_files(items, dest: str | Path, mode: str = "copy", forbid: tuple | list = ()) -> dict[str, int]:
    """``items``: (source path, class, sha256). Names clash only across pool sub-folders; the hash then
    disambiguates. Each file appears in ``dest`` whole (copied to a temp name, then renamed)."""
    if mode not in ("copy", "link"):
        raise ConfigError(f"export mode must be copy or link, not {mode!r}")
    d = Path(dest).resolve()
    for root in forbid:
        r = Path(root).resolve()
        if d == r or r in d.parents:
            raise ConfigError(f"export folder {d} is inside {r}; choose a folder outside the pool")
    counts: dict[str, int] = {}
    for src, cls, digest in items:
        src = Path(src)
        folder = d / cls
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / src.name
        if target.exists() or target.is_symlink():
            if _same(target, digest):
                counts[cls] = counts.get(cls, 0) + 1
                continue
            target = folder / f"{src.stem}-{digest[:10]}{src.suffix}"
        tmp = folder / f".{target.name}.tmp"
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        if mode == "copy":
            shutil.copyfile(src, tmp)
            shutil.copystat(src, tmp)
        else:
            os.symlink(src.resolve(), tmp)
        os.replace(tmp, target)
        counts[cls] = counts.get(cls, 0) + 1
    return counts


def _same(path: Path, digest: str) -> bool:
    try:
        return sha256_file(path) == digest
    except OSError:
        return False


def list_images(root: str | Path) -> list[Path]:
    """Image files under ``root``, recursively, sorted; hidden files and folders are ignored."""
    r = Path(root)
    out = []
    for dirpath, dirnames, filenames in os.walk(r):
        dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
        for n in sorted(filenames):
            if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_EXTS:
                out.append(Path(dirpath) / n)
    return out
