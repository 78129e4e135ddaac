"""Names of the files in a face-crop folder (`visionlab data faces`): one place for the writer and its readers."""
from __future__ import annotations

import re
from pathlib import Path

_COPY = re.compile(r"_[jt]\d+$")  # a jittered (_j) or turned-face (_t) extra copy
_SYNTH = "synth_"


def face_name(stem: str, j: int) -> str:
    """Annotated face ``j`` of photo ``stem``."""
    return f"{stem}_{j:03d}.jpg"


def jitter_name(stem: str, j: int, k: int) -> str:
    """Jittered copy ``k`` of that face (extra training crops of a rare class)."""
    return f"{stem}_{j:03d}_j{k}.jpg"


def turned_name(crop: str | Path, k: int) -> str:
    """Copy ``k`` of a Train crop of a turned face (turned.py: hard examples repeated)."""
    return f"{Path(crop).stem}_t{k}.jpg"


def synthetic_name(n: int, wearer: str | Path, donor: str | Path) -> str:
    """Synthetic incorrectly-worn crop ``n`` (synthmask.py), named after its two source crops."""
    return f"{_SYNTH}{n:05d}_{Path(wearer).stem}__{Path(donor).stem}.jpg"


def is_synthetic(path: str | Path) -> bool:
    return Path(path).name.startswith(_SYNTH)


def is_jitter_copy(path: str | Path) -> bool:
    """An extra copy of an annotated face (jittered, or a turned face repeated), not a face of its own."""
    return bool(_COPY.search(Path(path).stem))
