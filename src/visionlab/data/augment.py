"""Training-batch augmentations by name (``--augment --augment-policy NAME``): a registry, so a new one is an entry.

Each takes a uint8 (or float) N x C x H x W batch and a CPU generator (numbers drawn on the CPU, so CPU and GPU
runs see the same batch) and returns a batch of the same shape and dtype.

- ``crop_flip``: random crop with reflect padding and horizontal flip (the CIFAR recipe; loader.augment_batch).
- ``faces``: ``crop_flip`` plus, per image, brightness x0.5-1.3, contrast x0.7-1.3 and gamma 0.7-1.6 (dark,
  low-light and over-exposed faces; dark masks) and, for half of the images, a horizontal squeeze to 65-100% of
  the width, centred at a random place with the rest filled by the image's stretched edge (faces turned to the
  side look narrower and off-centre in their box). The slices of docs/special_cases.md that fell short
  (side faces, low light) are what it is for.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..registry import Registry
from .loader import augment_batch

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")


@AUGMENTATIONS.register("crop_flip")
def crop_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return augment_batch(x, gen)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def photometric(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-image brightness, contrast (about the image's mean) and gamma; values stay in 0..255."""
    n = x.shape[0]
    b = _uniform(n, 0.5, 1.3, gen).view(n, 1, 1, 1)
    c = _uniform(n, 0.7, 1.3, gen).view(n, 1, 1, 1)
    g = _uniform(n, 0.7, 1.6, gen).view(n, 1, 1, 1)
    dev = x.device
    v = x.float() / 255.0
    v = v.clamp(0, 1).pow(g.to(dev))
    mean = v.mean(dim=(1, 2, 3), keepdim=True)
    v = ((v - mean) * c.to(dev) + mean) * b.to(dev)
    v = (v.clamp(0, 1) * 255.0)
    return v.round().to(x.dtype) if x.dtype == torch.uint8 else v


def squeeze(x: torch.Tensor, gen: torch.Generator, share: float = 0.5, low: float = 0.65) -> torch.Tensor:
    """Half of the images (``share``) narrowed to ``low``-100% of their width at a random horizontal place, by a
    sampling grid (torch's grid_sample: bilinear, the image mirrored outside)."""
    n, _, h, w = x.shape
    pick = torch.rand(n, generator=gen) < share
    scale = torch.where(pick, _uniform(n, low, 1.0, gen), torch.ones(n))
    room = 1.0 - scale  # how far the narrowed image may move from the centre, in grid units (-1..1 spans the width)
    shift = (torch.rand(n, generator=gen) * 2 - 1) * room
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = 1.0 / scale  # output x -> input x: the image occupies scale of the width
    theta[:, 0, 2] = -shift / scale
    theta[:, 1, 1] = 1.0
    dev = x.device
    grid = F.affine_grid(theta.to(dev), [n, x.shape[1], h, w], align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    out = torch.where(pick.to(dev).view(n, 1, 1, 1), out, x.float())
    return out.round().clamp(0, 255).to(x.dtype) if x.dtype == torch.uint8 else out


@AUGMENTATIONS.register("faces")
def faces(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return photometric(squeeze(augment_batch(x, gen), gen), gen)
