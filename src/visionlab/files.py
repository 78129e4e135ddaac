"""Reading a user's files safely: only regular files, never more than a size cap. No torch import here: the
data layer and the active-learning store (whose terminal labeller must start without torch) both read through it.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import DataError

# No image file is read past this size (a photo is a few MB; a symlink to a disk image or /dev/zero is not).
MAX_FILE_BYTES = int(float(os.environ.get("VISIONLAB_MAX_FILE_MB", "256")) * 2 ** 20)


def special_kind(path: str | Path) -> "str | None":
    """"a FIFO", "a device" or "a socket" for such a file (a symlink followed, nothing opened), else None (a
    regular file, a folder, a missing path): what a folder listing names instead of leaving it out silently."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def open_regular(path: str | Path, max_bytes: int = MAX_FILE_BYTES,
                 advice: str = "only regular image files are read") -> int:
    """A read-only descriptor of ``path`` if it is a regular file of at most ``max_bytes``, else ``DataError``.

    Opened with O_NONBLOCK, so a FIFO named ``x.jpg`` cannot block the open, and checked with fstat on the
    descriptor itself (no race between the check and the read). FIFOs, devices (a symlink to /dev/zero), sockets
    and folders are refused, never read."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise DataError(f"{name}: file not found (deleted or moved)") from None
    except OSError as e:
        raise DataError(f"{name}: cannot be read ({e.strerror or e}); check its permissions") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode) or
                    stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else
                    "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file")
            raise DataError(f"{name}: is {kind}, not a regular file; {advice}")
        if st.st_size > max_bytes:
            raise DataError(f"{name}: {st.st_size / 2 ** 20:.0f} MiB is over the {max_bytes / 2 ** 20:g} MiB limit "
                            f"for one image (VISIONLAB_MAX_FILE_MB raises it)")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | Path, max_bytes: int = MAX_FILE_BYTES,
                 advice: str = "only regular image files are read") -> bytes:
    """The bytes of a regular file (see ``open_regular``), never more than ``max_bytes``."""
    fd = open_regular(path, max_bytes, advice)
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e}); check its permissions") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew after the check
        raise DataError(f"{path}: over the {max_bytes / 2 ** 20:g} MiB limit for one image")
    return data
