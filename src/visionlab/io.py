"""The ground floor for files: atomic writes that report a full disk in one line, the cache folder, file hashes.

No torch import: the terminal labeller and the data layer use it without starting torch. Every writer goes
through a temporary file in the same folder, fsync and a rename, so a crash or a full disk leaves the old file
(or none), never half a file.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import DataError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()


class WriteError(DataError, OSError):
    """A file could not be written (a full disk, a read-only folder): one line for the CLI, and still an
    OSError for callers that treat a failed cache write as a lost speed-up."""


def write_failed(path: Path, e: OSError) -> WriteError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        why = "no space left on the device; free some space and run the command again"
    elif e.errno == errno.ENAMETOOLONG:
        why = "the file name is too long for the filesystem"
    else:
        why = e.strerror or str(e)
    err = WriteError(f"cannot write {path}: {why}")
    err.errno = e.errno  # (strerror and filename unset: str() stays the one line above)
    return err


def short(name: str, room: int = 200) -> str:
    """``name`` cut to ``room`` bytes, for a temporary name beside it: a 254-byte file name plus a prefix and
    a suffix would pass the filesystem's 255."""
    b = name.encode()
    return name if len(b) <= room else b[:room].decode(errors="ignore")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file and a rename; a failure (a full disk) leaves the old file, no
    temporary file, and raises ``WriteError`` (one line)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{short(path.name)}.", suffix=".tmp")
    except OSError as e:
        raise write_failed(path, e) from None
    try:
        os.fchmod(fd, 0o666 & ~UMASK)  # mkstemp makes 0600; a report should be as readable as any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise write_failed(path, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows of dicts (keys of the first row as header) to a CSV, atomically; an empty list writes an empty file."""
    import csv
    import io

    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_via(path: Path, writer: Callable[[Path], None]) -> None:
    """``writer(tmp)`` writes a temporary file beside ``path`` (a library's own saver), then fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{short(path.name)}.{os.getpid()}.tmp")
    try:
        writer(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise write_failed(path, e) from None
    except RuntimeError:  # torch.save reports a full disk as a RuntimeError of its zip writer ("unexpected pos")
        if _nearly_full(path.parent):
            raise write_failed(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _nearly_full(folder: Path, slack: int = 1 << 20) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < slack




def cache_root(cache_dir: Optional[str | Path] = None) -> Path:
    """Where visionlab caches decoded images, features and models: the argument, else ``$VISIONLAB_CACHE``, else
    ``~/.cache/visionlab``."""
    return Path(cache_dir or os.environ.get("VISIONLAB_CACHE") or Path.home() / ".cache" / "visionlab")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
