"""Batches from tensors already in memory (CPU or GPU): no workers, no per-image Python.

The order and the augmentation of an epoch depend only on (seed, epoch), drawn from local generators, so a run
resumed at epoch k sees exactly the batches an uninterrupted run would have seen, whatever else used the RNG.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Iterator, Optional

import torch

from .types import Split


def stream_seed(seed: int, epoch: int, stream: str) -> int:
    """A well-mixed 63-bit seed per (seed, epoch, stream): neighbouring seeds give unrelated orders."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def pad_for(size: int) -> int:
    """Crop padding: 4 px at 32 px (the CIFAR recipe), size/8 in general."""
    return max(1, size // 8)


def augment_batch(x: torch.Tensor, gen: torch.Generator, pad: Optional[int] = None) -> torch.Tensor:
    """Random crop with reflect padding and random horizontal flip of a uint8 (or float) N x C x H x W batch.

    The batch is reflect-padded once (two index_selects: works for uint8, where F.pad's reflect mode does not),
    then a strided view holds every possible crop of every image and one gather picks each image's crop.
    Random numbers come from ``gen`` on the CPU, so CPU and GPU runs draw the same crops.
    """
    n, c, h, w = x.shape
    p = pad_for(min(h, w)) if pad is None else pad
    if not 0 < p < min(h, w):
        raise ValueError(f"crop padding must be between 1 and {min(h, w) - 1} for {h}x{w} images, not {p}")
    dy = torch.randint(0, 2 * p + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * p + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    dev = x.device
    rows = _reflect(torch.arange(-p, h + p), h).to(dev)
    cols = _reflect(torch.arange(-p, w + p), w).to(dev)
    padded = x.index_select(2, rows).index_select(3, cols).contiguous()
    sn, sc, sh, sw = padded.stride()
    crops = padded.as_strided((n, c, 2 * p + 1, 2 * p + 1, h, w), (sn, sc, sh, sw, sh, sw))
    out = crops[torch.arange(n, device=dev), :, dy.to(dev), dx.to(dev)]  # n x c x h x w
    return torch.where(flip.to(dev).view(n, 1, 1, 1), out.flip(3), out)


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Reflect indices into 0..n-1 without repeating the edge (numpy/torch 'reflect' padding)."""
    period = 2 * (n - 1) if n > 1 else 1
    i = i.remainder(period)
    return torch.where(i >= n, period - i, i)


def batches(split: Split, batch_size: int, shuffle: bool = True, seed: int = 0, epoch: int = 0,
            augment: "bool | Callable[[torch.Tensor, torch.Generator], torch.Tensor]" = False,
            device: Optional[torch.device | str] = None,
            drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches of ``split``: x keeps its dtype (uint8 pixels), y int64.

    ``shuffle`` draws a permutation from (seed, epoch); ``augment`` applies ``augment_batch`` with its own
    (seed, epoch) stream (a function in its place: that augmentation, e.g. one of data/augment.py's
    AUGMENTATIONS). ``device`` moves each batch there (a split already on that device is just indexed).
    """
    x, y = split.x, split.y
    n = len(split)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    order: Optional[torch.Tensor] = None
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(stream_seed(seed, epoch, "order")))
        order = order.to(x.device)
    aug_gen = torch.Generator().manual_seed(stream_seed(seed, epoch, "augment")) if augment else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, n)
        if order is None:
            xb, yb = x[start:end], y[start:end]
        else:
            idx = order[start:end]  # index_select copies whole rows: ~10x faster than x[idx] for uint8 images
            xb, yb = x.index_select(0, idx), y.index_select(0, idx if y.device == x.device else idx.to(y.device))
        if device is not None:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        if aug_gen is not None:
            xb = augment(xb, aug_gen) if callable(augment) else augment_batch(xb, aug_gen)
        yield xb, yb
