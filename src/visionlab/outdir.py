"""Output folders: a run never loses a file it did not create.

Every command that writes a folder of results (``detect``, ``predict``, ``evaluate``, ``compare``, ``data faces``,
``study run``) claims it here first. A new or empty folder is used as it is; a folder that already holds files is
left alone and the run writes into a new sub-folder, which is said on stderr (``policy="refuse"``: one line and
no output instead). ``is_output_folder`` knows a folder by the file each command writes first, so a later
``detect DIR --out DIR/out`` does not read ``DIR/out`` as input. A path that is a file, lies under a file or on a
read-only filesystem is one ``WriteError`` line, never a traceback.

No torch import here.
"""
from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Literal, Optional

from .errors import ConfigError
from .io import WriteError, shown, write_failed

# the file each command's output folder holds (no marker file of its own: output folders list only results)
OUTPUT_FILES = ("detections.jsonl", "predictions.csv", "comparison.csv", "faces.json", "inspect.json")


def is_output_folder(path: Path) -> bool:
    """True for a folder visionlab wrote results into: detect's detections.jsonl, predict's predictions.csv,
    compare's comparison.csv, a face-crop set's faces.json, inspect.json, or an evaluation (metrics.json and
    report.html)."""
    try:
        return path.is_dir() and (any((path / f).is_file() for f in OUTPUT_FILES) or
                                  ((path / "metrics.json").is_file() and (path / "report.html").is_file()))
    except OSError:
        return False


def _say(line: str) -> None:
    from .progress import say

    say("note:", line)


def _fresh_sub(parent: Path, command: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    sub, k = parent / f"{command}-{stamp}", 1
    while sub.exists() or sub.is_symlink():
        k += 1
        sub = parent / f"{command}-{stamp}.{k}"
    return sub


def make_folder(path: Path, option: str = "--out") -> None:
    """``path`` and its parents created, and writable; a file in the way, a read-only disk or a folder without
    write permission is one ``WriteError`` line naming ``option``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [path, *path.parents] if p.exists() and not p.is_dir()), path)
        raise WriteError(f"{option} {shown(path)}: {shown(blocker)} is a file, not a folder; pass a folder "
                         f"path (a new one or an empty one)") from None
    except OSError as e:
        raise _unwritable(path, option, e) from None
    if not os.access(path, os.W_OK):  # an existing folder on a read-only disk, or not ours to write
        raise _unwritable(path, option, OSError(errno.EROFS if _read_only(path) else errno.EACCES, ""))


def _unwritable(path: Path, option: str, e: OSError) -> WriteError:
    if e.errno == errno.EROFS:
        err = WriteError(f"{option} {shown(path)} is on a read-only file system; pass a folder on a writable disk")
        err.errno = e.errno
        return err
    if e.errno in (errno.EACCES, errno.EPERM):
        err = WriteError(f"{option} {shown(path)}: permission denied; pass a folder you can write to")
        err.errno = e.errno
        return err
    return write_failed(path, e)


def claim_out(path: "str | os.PathLike", command: str, *, option: str = "--out",
              policy: Literal["subfolder", "refuse"] = "subfolder", quiet: bool = False) -> Path:
    """The folder this run of ``command`` writes into: ``path`` when it is new or empty, else (``subfolder``) a
    new ``path/<command>-<time>`` that is said on stderr, or (``refuse``) a ``ConfigError``. The folder exists
    and is writable when this returns; nothing already in ``path`` is changed."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise WriteError(f"{option} {shown(path)} is a broken symbolic link; pass a folder path")
    if path.exists() and not path.is_dir():
        raise WriteError(f"{option} {shown(path)} is a file, not a folder; pass a folder path (a new one or an "
                         f"empty one)")
    if path.is_dir():
        try:
            busy = any(True for _ in os.scandir(path))
        except OSError as e:
            raise _unwritable(path, option, e) from None
        if busy:
            if policy == "refuse":
                raise ConfigError(f"{option} {shown(path)} already holds files; pass a new or empty folder "
                                  f"(nothing was written)")
            sub = _fresh_sub(path, command)
            make_folder(sub, option)
            if not quiet:
                _say(f"{option} {shown(path)} already holds files: this run writes into {shown(sub)} and changes "
                     f"nothing else there")
            path = sub
    make_folder(path, option)
    return path


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def claim_file(path: "str | os.PathLike", *, option: str = "--out", owned: Optional[Path] = None) -> Path:
    """A single output file (``export --out``): refused when it exists, unless it is ``owned`` (a file visionlab
    writes in a run folder of its own, such as ``RUN/model.onnx``); its folder is created."""
    path = Path(path)
    if (path.exists() or path.is_symlink()) and (owned is None or path.resolve() != Path(owned).resolve()):
        raise ConfigError(f"{option} {shown(path)} already exists; pass a new file name (nothing was written)")
    make_folder(path.parent, option)
    return path
