"""Names of the files in a face-crop folder (`visionlab data faces`): one place for the writer and its readers."""
from __future__ import annotations

import re
from pathlib import Path

_JITTER = re.compile(r"_j\d+$")


def face_name(stem: str, j: int) -> str:
    """Annotated face ``j`` of photo ``stem``."""
    return f"{stem}_{j:03d}.jpg"


def jitter_name(stem: str, j: int, k: int) -> str:
    """Jittered copy ``k`` of that face (extra training crops of a rare class)."""
    return f"{stem}_{j:03d}_j{k}.jpg"


def is_jitter_copy(path: str | Path) -> bool:
    return bool(_JITTER.search(Path(path).stem))
