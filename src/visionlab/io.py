"""The ground floor for files: atomic writes that report a full disk in one line, a durable append, the cache
folder, file hashes.

No torch import: the terminal labeller and the data layer use it without starting torch. Every writer goes
through a temporary file in the same folder, fsync and a rename, so a crash or a full disk leaves the old file
(or none), never half a file; ``sync_folder=True`` also makes the rename itself survive a power cut.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import DataError
from .files import open_regular


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()


class WriteError(DataError, OSError):
    """A file could not be written (a full disk, a read-only folder): one line for the CLI, and still an
    OSError for callers that treat a failed cache write as a lost speed-up."""


def write_failed(path: Path, e: OSError) -> WriteError:
    """One line for a failed write of ``path``; ``.path`` and ``.reason`` (without the advice) let a command that
    had written other files first say what it wrote."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = "no space left on the device"
        why = f"{reason} (nothing was changed); free some space and run the command again"
    elif e.errno == errno.ENAMETOOLONG:
        why = reason = "the file name is too long for the filesystem"
    else:
        why = reason = e.strerror or str(e)
    err = WriteError(f"cannot write {shown(path)}: {why}")
    err.errno = e.errno  # (strerror and filename unset: str() stays the one line above)
    err.path, err.reason = Path(path), reason  # type: ignore[attr-defined]
    return err


def shown(path: "str | os.PathLike | bytes") -> str:
    """``path`` with each byte that is not UTF-8 (a surrogate escape from ``os.fsdecode``) as ``\\xNN``, so it
    can be printed and written into a UTF-8 report; ``os.fsencode`` of the raw name gives the file back."""
    try:
        raw = path if isinstance(path, bytes) else os.fsencode(path)
    except UnicodeEncodeError:  # a lone surrogate that no file name decodes to
        return str(path).encode("utf-8", "backslashreplace").decode()
    return raw.decode("utf-8", errors="backslashreplace")


def short(name: str, room: int = 200) -> str:
    """``name`` cut to ``room`` bytes, for a temporary name beside it: a 254-byte file name plus a prefix and
    a suffix would pass the filesystem's 255."""
    b = os.fsencode(name)  # a name that is not UTF-8 (b'x\xffy.jpg') keeps its bytes
    return name if len(b) <= room else os.fsdecode(b[:room])


def fsync_folder(path: Path) -> None:
    """fsync a folder, so a rename or a new file in it survives a power cut; a no-op where a filesystem does not
    let a folder be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, sync_folder: bool = False) -> None:
    """Write ``path`` through a temporary file and a rename; a failure (a full disk) leaves the old file, no
    temporary file, and raises ``WriteError`` (one line). ``sync_folder``: the folder is fsync'd after the
    rename too (a label store's files: what was acknowledged must survive a power cut)."""
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
    if sync_folder:
        fsync_folder(path.parent)


def text_bytes(text: str) -> bytes:
    """UTF-8 of ``text``; a file name that is not UTF-8 (held as surrogate escapes, ``os.fsdecode``) is written
    with its bytes escaped (``x\\xffy.jpg``), so a report stays UTF-8 text and the writer never fails on it."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").encode()
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace")


def atomic_write_text(path: Path, text: str, *, sync_folder: bool = False) -> None:
    atomic_write_bytes(path, text_bytes(text), sync_folder=sync_folder)


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


def write_via(path: Path, writer: Callable[[Path], None], *, suffix: str = "") -> None:
    """``writer(tmp)`` writes a temporary file beside ``path`` (a library's own saver, a copy, a symlink, a
    download), then fsync and rename; an exception from ``writer`` leaves the old file and no temporary file.
    ``suffix`` ends the temporary name, for libraries that pick a format by it (OpenCV's ``.onnx``). The name
    holds the process and thread ids: two threads saving the same cache entry never write into one file."""
    path = Path(path)
    tmp = path.with_name(f".{short(path.name)}.{os.getpid()}.{threading.get_ident()}.tmp{suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer(tmp)
        if not tmp.is_symlink():  # a link's target is someone else's file, and may be a FIFO
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
        with contextlib.suppress(OSError):  # on a read-only filesystem the unlink fails too: keep the first error
            tmp.unlink(missing_ok=True)


def _nearly_full(folder: Path, slack: int = 1 << 20) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < slack


def append_line(path: Path, line: str) -> None:
    """Append ``line`` and a newline durably: every byte written (a short ``write`` is continued) and fsync'd
    before this returns. A file that ends mid-line (torn by a kill) gets a newline first, so the new line starts
    fresh; a failed write (a full disk) cuts the file back to its old length, so no torn line is left, and raises
    ``WriteError``."""
    p = Path(path)
    data = (line + "\n").encode()
    try:
        fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as e:
        raise write_failed(p, e) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # a FIFO or /dev/null would swallow the line and report it written
            err = WriteError(f"cannot write {shown(p)}: it is not a regular file (a FIFO, a device or a folder); "
                             f"nothing was written")
            err.errno = errno.EINVAL
            raise err
        size = st.st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
            os.fsync(fd)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
                os.fsync(fd)
            raise write_failed(p, e) from None
    finally:
        os.close(fd)


def cache_root(cache_dir: Optional[str | Path] = None) -> Path:
    """Where visionlab caches decoded images, features and models: the argument, else ``$VISIONLAB_CACHE``, else
    ``~/.cache/visionlab`` (``~`` expanded in the first two)."""
    d = cache_dir or os.environ.get("VISIONLAB_CACHE") or Path.home() / ".cache" / "visionlab"
    return Path(d).expanduser()


def sha256_file(path: str | Path, chunk: int = 1 << 20, *, max_bytes: Optional[int] = None) -> str:
    """The hex SHA-256 of a regular file, read in 1 MiB chunks. A FIFO, device, socket or folder is refused, never
    read (``DataError``, as for a missing file); with ``max_bytes``, so is a file larger than that (a user's
    image pool: a symlink to a disk image must not be hashed for minutes)."""
    fd = open_regular(path, max_bytes if max_bytes is not None else 1 << 62)
    h, n = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            for block in iter(lambda: f.read(chunk), b""):
                n += len(block)
                if max_bytes is not None and n > max_bytes:  # it grew after the check
                    raise DataError(f"{path}: over the {max_bytes / 2 ** 20:g} MiB limit for one image")
                h.update(block)
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None
    finally:
        os.close(fd)
    return h.hexdigest()
