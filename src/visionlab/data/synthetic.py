"""A deterministic face-mask-like data set: tests, demos and a first run need images without any download.

Each image is drawn from its own RNG stream (seed, class, index), so the same seed gives identical pixels and
a subset never changes when more images are asked for. Faces vary in position, size, tilt, skin tone, hair and
background; WithMask covers the lower face with masks of varied colour and shape, WithoutMask shows nose and
mouth (sometimes a beard). The label is in the shape of the lower face, not in any fixed pixel.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

FORMAT = "synthetic-v1"  # bump when the drawing changes, so cached renders are not reused
CLASSES = ["WithMask", "WithoutMask"]
PREFIX = {"WithMask": "wm", "WithoutMask": "nm"}
SPLIT_DIRS = (("Train", 0.7), ("Validation", 0.15), ("Test", 0.15))

SKIN = np.array([(255, 224, 196), (241, 194, 160), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 60, 40)], float)
MASK_COLOURS = np.array([(170, 210, 235), (236, 236, 236), (32, 32, 38), (120, 160, 215), (90, 120, 90),
                         (230, 170, 190)], float)


def _ellipse(u: np.ndarray, v: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    return ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2 <= 1.0


def render(rng: np.random.Generator, with_mask: bool, size: int) -> np.ndarray:
    """One H x W x 3 uint8 image. Drawn at twice the size and averaged 2 x 2, so small sizes keep soft edges."""
    s2 = 2 * size
    v, u = (np.mgrid[0:s2, 0:s2] + 0.5) / s2  # v: down, u: right, both in 0..1

    # background: a gradient between two colours, sometimes with stripes
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    ang = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + (u - 0.5) * np.cos(ang) + (v - 0.5) * np.sin(ang), 0, 1)[..., None]
    img = c1 * (1 - t) + c2 * t
    if rng.random() < 0.4:
        f, a2 = rng.uniform(3, 9), rng.uniform(0, np.pi)
        img += rng.uniform(10, 35) * np.sin(2 * np.pi * f * (u * np.cos(a2) + v * np.sin(a2)))[..., None]

    # face geometry, in a frame rotated by a small tilt: fx, fy are -1..1 across the face ellipse
    cx, cy = rng.uniform(0.36, 0.64), rng.uniform(0.4, 0.62)
    rx = rng.uniform(0.17, 0.27)
    ry = rx * rng.uniform(1.15, 1.4)
    tilt = rng.uniform(-0.3, 0.3)
    du, dv = u - cx, v - cy
    fx = (du * np.cos(tilt) + dv * np.sin(tilt)) / rx
    fy = (-du * np.sin(tilt) + dv * np.cos(tilt)) / ry
    face = fx ** 2 + fy ** 2 <= 1.0

    if rng.random() < 0.65:  # hair behind the face, above it
        hair = rng.uniform(10, 90, 3) * rng.uniform(0.5, 1.6)
        img[(fx / 1.12) ** 2 + ((fy + 0.25) / 1.0) ** 2 <= 1.0] = hair

    skin = SKIN[rng.integers(len(SKIN))] + rng.normal(0, 10, 3)
    img[face] = skin
    img[face] *= (1.0 - 0.12 * np.clip(fx, -1, 1)[face] * rng.choice([-1, 1]))[:, None]  # side light

    eye_y, eye_x = rng.uniform(-0.3, -0.15), rng.uniform(0.32, 0.45)
    eye = np.array(rng.uniform(15, 70, 3))
    for sx in (-1, 1):
        img[_ellipse(fx, fy, sx * eye_x, eye_y, 0.13, 0.08)] = eye

    if with_mask:
        colour = MASK_COLOURS[rng.integers(len(MASK_COLOURS))] if rng.random() < 0.75 else rng.uniform(0, 255, 3)
        if np.abs(colour - skin).sum() < 120:  # a mask the colour of the skin would be a label without a signal
            colour = 255.0 - colour
        colour = colour + rng.normal(0, 8, 3)
        top = rng.uniform(-0.08, 0.12)
        shape = rng.integers(3)
        if shape == 0:  # pleated surgical mask: a band across the lower face
            m = (fy > top) & (fy < rng.uniform(0.75, 0.95)) & (fx ** 2 + fy ** 2 <= 1.1)
        elif shape == 1:  # rounded cloth or N95 mask
            m = (fx / rng.uniform(0.75, 0.95)) ** 2 + ((fy - 0.45) / (0.55 - top / 2)) ** 2 <= 1.0
        else:  # fitted mask following the jaw
            m = (fy > top) & (fx ** 2 + fy ** 2 <= 1.0)
        shade = np.ones_like(u)
        if rng.random() < 0.5:  # pleats or a print
            shade = 1.0 + rng.uniform(0.06, 0.15) * np.sin(2 * np.pi * rng.uniform(3, 6) * fy)
        img[m] = colour * shade[m][:, None]
        strap = (np.abs(fy - top - 0.1) < 0.04) & (np.abs(fx) > 0.8) & (np.abs(fx) < 1.15)
        img[strap & ~m] = colour * 0.85
    else:
        if rng.random() < 0.1:  # a beard: dark lower face, but the mouth stays visible
            img[face & (fy > rng.uniform(0.25, 0.45))] = rng.uniform(20, 80, 3)
        nose = skin * rng.uniform(0.7, 0.85)
        img[_ellipse(fx, fy, 0, rng.uniform(0.05, 0.18), 0.11, 0.17)] = nose
        lips = np.array([rng.uniform(110, 190), rng.uniform(20, 60), rng.uniform(30, 70)])
        img[_ellipse(fx, fy, 0, rng.uniform(0.45, 0.6), rng.uniform(0.3, 0.42), rng.uniform(0.09, 0.15))] = lips

    img *= rng.uniform(0.75, 1.15)  # exposure
    img = (img[0::2, 0::2] + img[1::2, 0::2] + img[0::2, 1::2] + img[1::2, 1::2]) / 4.0
    img += rng.normal(0, rng.uniform(2, 7), img.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8)


def _image(seed: int, c: int, i: int, size: int) -> np.ndarray:
    return render(np.random.default_rng([seed, c, i]), CLASSES[c] == "WithMask", size)


def synthetic_images(n_per_class: int, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """``n_per_class`` images of each class: (x uint8 N x 3 x S x S, y int64 N, class names), class by class."""
    x = np.empty((len(CLASSES) * n_per_class, 3, size, size), np.uint8)
    for c in range(len(CLASSES)):
        for i in range(n_per_class):
            x[c * n_per_class + i] = _image(seed, c, i, size).transpose(2, 0, 1)
    y = np.repeat(np.arange(len(CLASSES)), n_per_class)
    return torch.from_numpy(x), torch.from_numpy(y).long(), list(CLASSES)


def write_synthetic_folder(dir: str | Path, n_per_class: int, size: int = 64, seed: int = 0,
                           layout: Literal["split", "flat"] = "split") -> Path:
    """Write the synthetic set as image files: ``split`` gives Train/Validation/Test/<class>/ (70/15/15),
    ``flat`` gives <class>/. Every fourth image is a PNG, the rest JPEGs, so both decoders are exercised."""
    root = Path(dir)
    n_tr = int(round(SPLIT_DIRS[0][1] * n_per_class))
    n_va = int(round(SPLIT_DIRS[1][1] * n_per_class))
    for c, name in enumerate(CLASSES):
        for i in range(n_per_class):
            if layout == "split":
                split = "Train" if i < n_tr else "Validation" if i < n_tr + n_va else "Test"
                folder = root / split / name
            elif layout == "flat":
                folder = root / name
            else:
                raise ValueError(f"layout must be 'split' or 'flat', not {layout!r}")
            folder.mkdir(parents=True, exist_ok=True)
            im = Image.fromarray(_image(seed, c, i, size))
            stem = folder / f"{PREFIX[name]}_{i:05d}"
            if i % 4 == 3:
                im.save(stem.with_suffix(".png"))
            else:
                im.save(stem.with_suffix(".jpg"), quality=92)
    return root
