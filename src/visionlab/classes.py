"""Class-name conventions shared by training, evaluation and the light runtime (detection, predict, serve).

Torch-free and dependency-free: the runtime (``pip install visionlab`` without extras) imports it.
"""
from __future__ import annotations

from typing import Optional

from .errors import ConfigError


def positive_index(classes: list[str], positive_class: Optional[str]) -> int:
    """Index of the positive class for binary metrics: the configured one, else a 'with'/'pos'/'1' class, else 1."""
    if positive_class is not None:
        if positive_class not in classes:
            raise ConfigError(f"positive class {positive_class!r} is not one of {classes}")
        return classes.index(positive_class)
    for i, c in enumerate(classes):
        if c.lower().startswith(("withmask", "with_mask", "pos", "1", "yes", "true")):
            return i
    return 1
