"""The data layer's output: decoded uint8 image tensors, labels and what was skipped."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch


@dataclass
class Split:
    """One split held in memory. ``x`` is uint8 N x 3 x H x W (RGB), ``y`` int64 N."""

    x: torch.Tensor
    y: torch.Tensor
    paths: Optional[list[str]] = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, idx: torch.Tensor | list[int]) -> "Split":
        idx = torch.as_tensor(idx, dtype=torch.long)
        paths = [self.paths[i] for i in idx.tolist()] if self.paths is not None else None
        return Split(self.x[idx], self.y[idx], paths)


@dataclass
class ImageData:
    """Everything a run trains and evaluates on."""

    classes: list[str]
    train: Split
    val: Optional[Split]
    test: Optional[Split]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    source: str = ""
    location: str = ""
    cache_key: str = ""  # identifies the decoded content (files, sizes, mtimes, image size, split)

    @property
    def image_size(self) -> int:
        return int(self.train.x.shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def splits(self) -> dict[str, Split]:
        return {k: v for k, v in (("train", self.train), ("val", self.val), ("test", self.test)) if v is not None}
