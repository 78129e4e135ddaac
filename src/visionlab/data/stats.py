"""Per-channel statistics of decoded images, for standardising a model's input."""
from __future__ import annotations

import torch


def channel_stats(x: torch.Tensor, chunk: int = 8192) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Mean and standard deviation of each RGB channel of a uint8 N x 3 x H x W tensor, on the 0..1 scale.

    Sums run in float64 over chunks, so 50,000 CIFAR images take a fraction of a second and no float copy of
    the whole set is made.
    """
    if x.ndim != 4 or x.shape[1] != 3 or len(x) == 0:
        raise ValueError(f"expected a non-empty N x 3 x H x W tensor, got shape {tuple(x.shape)}")
    s = torch.zeros(3, dtype=torch.float64)
    sq = torch.zeros(3, dtype=torch.float64)
    for i in range(0, len(x), chunk):
        b = x[i:i + chunk].to(torch.float64)
        s += b.sum(dim=(0, 2, 3))
        sq += b.square().sum(dim=(0, 2, 3))
    n = x.shape[0] * x.shape[2] * x.shape[3]
    mean = s / n
    std = (sq / n - mean.square()).clamp_min(1e-12).sqrt().clamp_min(1.0)  # at least one grey level
    return tuple(round(v / 255.0, 6) for v in mean.tolist()), tuple(round(v / 255.0, 6) for v in std.tolist())
