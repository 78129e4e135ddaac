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
import re
import shutil
import stat
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Iterator, Literal, Optional

from .. import io
from ..errors import ConfigError, DataError
from ..files import MAX_FILE_BYTES, open_regular, read_regular  # noqa: F401  (read_regular: ui, features, serve)

SOURCES = ("human", "pseudo", "oracle")
# Nothing in a pool is read past this size: a photo is a few MB, a mistaken symlink to a disk image is not.
MAX_IMAGE_BYTES = MAX_FILE_BYTES
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
NAME_MAX = 255  # bytes in one file name on every filesystem we write to


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Content hash of a pool file: ``DataError`` for a missing, special (FIFO, device) or oversized one.
sha256_file = partial(io.sha256_file, max_bytes=MAX_IMAGE_BYTES)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def write_atomic(path: str | Path, text: str) -> None:
    """Replace a project file (queue, state) so a reader (or a crash) sees the old file or the new one, never
    half, and the new one survives a power cut once this returns (the folder is fsync'd too). A failed write (a
    full disk) leaves the old file and no temporary file, and raises one ``DataError`` (``WriteError``)."""
    io.atomic_write_text(Path(path), text, sync_folder=True)


@dataclass
class Scan:
    """What reading a JSONL log found: the records, and a line per unreadable or invalid line (1-based)."""
    records: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def scan_jsonl(path: str | Path) -> Scan:
    """Every JSON object line of ``path``, with a problem line (naming the line number) for each line that
    is not one: a torn last line (a killed writer) or a garbled line anywhere."""
    p = Path(path)
    out = Scan()
    if not (p.exists() or p.is_symlink()):
        return out
    # a folder, a FIFO or a link to /dev/null in its place is refused, never read as an empty log ("0 labels")
    fd = open_regular(p, 1 << 40, f"the project's {p.name} must be the plain file visionlab wrote: move this away "
                                  f"and put the file back (or restore the project from a backup)")
    try:
        with os.fdopen(fd, "rb") as f:
            lines = f.read().split(b"\n")
    except OSError as e:
        raise DataError(f"{p}: cannot be read ({e.strerror or e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            where = "the last line is torn (an interrupted write)" if n == len(lines) else "not valid JSON"
            out.problems.append(f"{p.name} line {n}: {where}; skipped")
            out.records.append({"_line": n, "_torn": line})
            continue
        if isinstance(rec, dict):
            rec["_line"] = n
            out.records.append(rec)
        else:
            out.problems.append(f"{p.name} line {n}: not a JSON object; skipped")
    return out


def read_jsonl(path: str | Path) -> list[dict]:
    """Every complete JSON object line of ``path``; a torn or garbled line is skipped (``scan_jsonl`` says
    which)."""
    return [{k: v for k, v in r.items() if k != "_line"} for r in scan_jsonl(path).records if "_torn" not in r]


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one record durably. If the file ends mid-line (torn by a kill), start a new line first.

    Every byte is written (a short ``write`` is continued) and fsync'd before this returns; when the disk is
    full the file is cut back to its old length, so no torn line is left, and ``DataError`` says so."""
    io.append_line(Path(path), json.dumps(record))


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """An exclusive advisory lock; the kernel drops it when the holder dies, so a kill never leaves it stuck."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise io.write_failed(Path(path), e) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class DuplicateLabelError(DataError):
    """The image (by content hash) already has a label; undo it first to relabel."""


class ChangedImageError(DataError):
    """The file's content is no longer what was queued (and shown); it is not labelled under the old hash."""


@dataclass(frozen=True)
class Label:
    id: int
    path: str  # relative to the pool root, with forward slashes
    sha256: str
    label: str
    source: str
    time: str
    model_version: Optional[str]
    session: Optional[str] = None  # which labelling session (terminal run or server) wrote it


_UNDO_REF = re.compile(rb'"op":\s*"undo",\s*"ref":\s*(\d+)')


class LabelStore:
    """``labels.jsonl`` of a project, for images under ``pool_root``."""

    def __init__(self, path: str | Path, pool_root: str | Path, classes: Optional[list[str]] = None) -> None:
        self.path = Path(path)
        self.pool_root = Path(pool_root).resolve()
        self.classes = list(classes) if classes is not None else None
        self._lock = self.path.with_name(self.path.name + ".lock")
        self.problems: list[str] = []  # from the last read: unreadable or invalid lines, by line number

    # --- reading ------------------------------------------------------------------------------------------
    def _check(self, r: dict) -> Optional[str]:
        """Why a parsed record cannot count, or None."""
        if not isinstance(r.get("id"), int) or isinstance(r.get("id"), bool) or r["id"] < 1:
            return "no valid id"
        op = r.get("op")
        if op == "undo":
            return None if isinstance(r.get("ref"), int) else "an undo without a valid ref"
        if op != "label":
            return f"unknown op {op!r}"
        if not isinstance(r.get("sha256"), str) or not SHA256_RE.match(r["sha256"]):
            return "a label without a valid sha256"
        if not isinstance(r.get("path"), str) or not r["path"]:
            return "a label without a path"
        if not isinstance(r.get("label"), str):
            return "a label without a class"
        if self.classes is not None and r["label"] not in self.classes:
            return f"unknown class {r['label']!r} (the project's classes are {', '.join(self.classes)})"
        if r.get("source") not in SOURCES:
            return f"unknown source {r.get('source')!r}"
        return None

    def scan(self) -> tuple[list[dict], list[str]]:
        """The valid records in log order, and a problem line (with its line number) for everything else.

        A garbled line that still shows it was an undo of entry N (records start ``{"id", "op", "ref"``) is
        applied as that undo, so a torn undo never brings a cancelled label back; it is reported either way."""
        sc = scan_jsonl(self.path)
        problems = list(sc.problems)
        out, ids = [], set()
        for r in sc.records:
            line = r.pop("_line")
            if "_torn" in r:
                m = _UNDO_REF.search(r["_torn"])
                if m:
                    out.append({"id": None, "op": "undo", "ref": int(m.group(1)), "_line": line})
                    problems.append(f"{self.path.name} line {line}: it was an undo of entry {int(m.group(1))}, "
                                    f"which stays undone")
                continue
            why = self._check(r)
            if why is None and r["id"] in ids:
                why = f"id {r['id']} is used twice"
            if why is not None:
                problems.append(f"{self.path.name} line {line}: {why}; this record does not count")
                continue
            ids.add(r["id"])
            out.append(r)
        self.problems = problems
        return out, problems

    def records(self) -> list[dict]:
        return [r for r in self.scan()[0] if r["id"] is not None]

    def current(self) -> dict[str, Label]:
        """sha256 -> its live label: the log replayed, undone records removed."""
        live: dict[int, dict] = {}
        for r in self.scan()[0]:
            if r["op"] == "label":
                live[r["id"]] = r
            else:
                live.pop(r.get("ref"), None)
        out: dict[str, Label] = {}
        for r in live.values():  # in log order; a later live duplicate (impossible via append) would win
            out[r["sha256"]] = Label(r["id"], r["path"], r["sha256"], r["label"], r["source"],
                                     str(r.get("time", "")), r.get("model_version"), r.get("session"))
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
            sha256: Optional[str] = None, session: Optional[str] = None) -> Label:
        """Append a label for ``image`` (a path inside the pool). Refused if its content already has one.

        ``sha256`` is the hash of the bytes the labeller saw (or the queue scored); the file is hashed again
        under the lock and a different content is refused with ``ChangedImageError``, so a label is never
        stored under a hash of bytes nobody looked at."""
        if source not in SOURCES:
            raise ConfigError(f"label source must be one of {', '.join(SOURCES)}, not {source!r}")
        if self.classes is not None and label not in self.classes:
            raise ConfigError(f"unknown class {label!r}; the project's classes are {', '.join(self.classes)}")
        rel = self.relpath(image)
        full = self.pool_root / rel
        with file_lock(self._lock):  # read-check-append is one step even with two labellers
            digest = sha256_file(full)  # DataError for a deleted, special or oversized file
            if sha256 is not None and digest != sha256:
                raise ChangedImageError(f"{rel} changed since it was queued (its content is not what was shown); "
                                        f"not labelled: run `visionlab active query` again to queue it afresh")
            cur = self.current()
            if digest in cur:
                old = cur[digest]
                raise DuplicateLabelError(
                    f"{rel} is already labelled {old.label!r} ({old.source}, entry {old.id}"
                    f"{', as ' + old.path if old.path != rel else ''}); undo that entry to relabel it")
            rec = {"id": self._next_id(), "op": "label", "path": rel, "sha256": digest, "label": label,
                   "source": source, "time": now_iso(), "model_version": model_version}
            if session is not None:
                rec["session"] = session
            append_jsonl(self.path, rec)
        return Label(rec["id"], rel, digest, label, source, rec["time"], model_version, session)

    def undo(self, entry_id: Optional[int] = None, source: Optional[str] = None,
             session: Optional[str] = None) -> Optional[Label]:
        """Cancel the label entry ``entry_id`` (default: the most recent live one, of ``source`` if given).
        With ``session``, only a label that session wrote can be cancelled (another session's is refused).
        Returns the cancelled label, or None when there is nothing to undo."""
        with file_lock(self._lock):
            live = sorted(self.current().values(), key=lambda lab: lab.id)
            if session is not None:
                live = [lab for lab in live if lab.session == session]
            if entry_id is None:
                cands = [lab for lab in live if source is None or lab.source == source]
                if not cands:
                    return None
                target = cands[-1]
            else:
                match = [lab for lab in live if lab.id == entry_id]
                if not match:
                    whose = " of this session" if session is not None else ""
                    raise DataError(f"entry {entry_id} is not a live label{whose} in {self.path} (never written, "
                                    f"undone, or another session's)")
                target = match[0]
            append_jsonl(self.path, {"id": self._next_id(), "op": "undo", "ref": target.id, "path": target.path,
                                     "sha256": target.sha256, "label": target.label, "source": target.source,
                                     "time": now_iso(), **({"session": session} if session else {})})
        return target

    def _next_id(self) -> int:
        # every id of a readable line, valid or not, so a new record never reuses one a reader might know
        ids = [r["id"] for r in read_jsonl(self.path) if isinstance(r.get("id"), int)]
        return max(ids, default=0) + 1

    # --- export -------------------------------------------------------------------------------------------
    def export(self, dest: str | Path, mode: Literal["copy", "link"] = "copy",
               sources: tuple[str, ...] = SOURCES) -> dict[str, int]:
        """Write ``dest/<label>/<file>`` for every live label: copies, or symlinks to the originals.

        The originals are only read. ``dest`` must not be inside the pool (an export must never become part of
        the pool it came from). Returns the number of files per class."""
        return export_files(((self.pool_root / lab.path, lab.label, lab.sha256) for lab in self.labels(sources)),
                            dest, mode, forbid=[self.pool_root])


def check_class_name(name: str) -> str:
    """A class name becomes a folder name in ``export`` and a class folder of a training set: it must be one
    plain, visible path component."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("a class name must not be empty")
    if name != name.strip():
        raise ConfigError(f"class name {name!r} starts or ends with a space; remove it")
    if name in (".", "..") or name.startswith("."):
        raise ConfigError(f"class name {name!r} starts with '.': it would be a hidden (or parent) folder; rename it")
    bad = [c for c in name if c in '/\\\0' or ord(c) < 32]
    if bad:
        raise ConfigError(f"class name {name!r} contains {bad[0]!r}; a class must be a plain folder name "
                          f"(no slashes or control characters)")
    if len(name.encode()) > 200:
        raise ConfigError(f"class name {name[:40]!r}... is over 200 bytes; choose a shorter name")
    return name


def check_class_names(names: list[str]) -> list[str]:
    for n in names:
        check_class_name(n)
    seen: dict[str, str] = {}
    for n in names:
        k = n.casefold()
        if k in seen:
            raise ConfigError(f"class {n!r} is given twice" + ("" if seen[k] == n else f" (as {seen[k]!r})")
                              + "; each class must appear once")
        seen[k] = n
    return names


def fit_name(stem: str, suffix: str, room: int = NAME_MAX - 40) -> str:
    """``stem + suffix`` cut to ``room`` bytes (leaving space for a temporary name's prefix and suffix)."""
    b = os.fsencode(stem)  # a name that is not UTF-8 (b'x\xffy') keeps its bytes
    keep = room - len(os.fsencode(suffix))
    if len(b) > keep:
        stem = os.fsdecode(b[:keep])
    return stem + suffix


def export_files(items, dest: str | Path, mode: str = "copy", forbid: tuple | list = ()) -> dict[str, int]:
    """``items``: (source path, class, sha256). Names clash only across pool sub-folders; the hash then
    disambiguates. Each file appears in ``dest`` whole (copied to a temp name, then renamed). Every class
    name and every target is checked before the first file is written, so a bad one leaves no partial
    export; names too long for the filesystem are shortened."""
    if mode not in ("copy", "link"):
        raise ConfigError(f"export mode must be copy or link, not {mode!r}")
    d = Path(dest).resolve()
    for root in forbid:
        r = Path(root).resolve()
        if d == r or r in d.parents:
            raise ConfigError(f"export folder {d} is inside {r}; choose a folder outside the pool")
    items = list(items)
    for src, cls, _ in items:
        check_class_name(cls)
        if not (d / cls).resolve().parent == d:
            raise ConfigError(f"class {cls!r} would be written outside {d}")
    counts: dict[str, int] = {}
    for src, cls, digest in items:
        src = Path(src)
        folder = d / cls
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise io.write_failed(folder, e) from None
        target = folder / fit_name(src.stem, src.suffix)
        if target.exists() or target.is_symlink():
            if _same(target, digest):
                counts[cls] = counts.get(cls, 0) + 1
                continue
            target = folder / fit_name(src.stem, f"-{digest[:10]}{src.suffix}")
        io.write_via(target, partial(_copy if mode == "copy" else _link, src))
        counts[cls] = counts.get(cls, 0) + 1
    return counts


def _copy(src: Path, tmp: Path) -> None:
    """A copy of a regular file (``DataError`` for a FIFO, device or oversized one), with its times and mode."""
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a killed export of the same process id
    fd = open_regular(src)
    try:
        with os.fdopen(fd, "rb", closefd=False) as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    finally:
        os.close(fd)
    shutil.copystat(src, tmp)


def _link(src: Path, tmp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(src.resolve(), tmp)


def _same(path: Path, digest: str) -> bool:
    try:
        return sha256_file(path) == digest
    except (OSError, DataError):
        return False


def list_images(root: str | Path, skipped: Optional[list[tuple[str, str]]] = None) -> list[Path]:
    """Regular image files under ``root``, recursively, sorted; hidden files and folders are ignored, and so
    are FIFOs, devices and sockets however they are named (listed in ``skipped`` when given). Symlinked
    folders are not followed, so a symlink loop cannot make the walk endless."""
    from ..images import IMAGE_SUFFIXES  # here: images imports numpy and PIL, which `visionlab --help` must not

    r = Path(root)
    out = []
    for dirpath, dirnames, filenames in os.walk(r):
        dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
        for n in sorted(filenames):
            if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_SUFFIXES:
                p = Path(dirpath) / n
                try:
                    regular = stat.S_ISREG(os.stat(p).st_mode)  # follows a symlink to what it names
                except OSError:
                    regular = False
                if regular:
                    out.append(p)
                elif skipped is not None:
                    skipped.append((str(p), "not a regular file (FIFO, device, socket or broken link)"))
    return out


def warn(lines: list[str], limit: int = 10) -> None:
    """Problems found in a project's files, on stderr (the CLI's output stays the answer)."""
    for line in lines[:limit]:
        print(f"warning: {line}", file=sys.stderr, flush=True)
    if len(lines) > limit:
        print(f"warning: ... and {len(lines) - limit} more problems", file=sys.stderr, flush=True)
