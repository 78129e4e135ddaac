"""Atomic, safe-to-load files: model weights as safetensors, training state through torch.load(weights_only=True)."""
from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..errors import DataError


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


def _tmp_then_replace(path: Path, writer) -> None:
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


def save_weights(path: Path, state: dict[str, torch.Tensor]) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    _tmp_then_replace(path, lambda p: save_file(tensors, str(p)))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def save_state(path: Path, state: dict) -> None:
    _tmp_then_replace(path, lambda p: torch.save(state, p))


STATE_KEYS = ("model", "epoch", "history")


def load_state(path: Path) -> dict:
    """A training checkpoint written by ``save_state``; ``ModelError`` (one line) for a truncated, corrupt or
    foreign file."""
    from ..errors import ModelError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle of a forbidden type, not a torch file at all
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path} is not a readable checkpoint ({msg[:200]}); it is truncated or not written by "
                         f"visionlab: delete it to train the run from the start") from None
    if not isinstance(state, dict) or any(k not in state for k in STATE_KEYS):
        raise ModelError(f"{path} is not a visionlab training checkpoint (no {', '.join(STATE_KEYS)}); delete it "
                         f"to train the run from the start")
    return state


def restore_model(model: torch.nn.Module, weights: dict, path: Path) -> None:
    """``model.load_state_dict(weights)`` with one ``ModelError`` line when they belong to another model."""
    from ..errors import ModelError

    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        first = str(e).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else (first[0] if first else type(e).__name__)
        raise ModelError(f"{path} holds the weights of another model ({detail[:160]}); resume with the run's own "
                         f"settings, or delete the checkpoint to start again") from None
