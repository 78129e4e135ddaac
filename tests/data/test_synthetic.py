"""The synthetic face-mask set: deterministic, varied, learnable by a small CNN, not by a single pixel."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from visionlab.data.checks import check_layout
from visionlab.data.synthetic import CLASSES, synthetic_images, write_synthetic_folder
from visionlab.images import decode_image


def test_same_seed_same_pixels_and_subsets_are_stable():
    x, y, classes = synthetic_images(6, 32, seed=5)
    assert x.shape == (12, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert classes == CLASSES == ["WithMask", "WithoutMask"] and y.tolist() == [0] * 6 + [1] * 6
    assert torch.equal(x, synthetic_images(6, 32, seed=5)[0])
    assert not torch.equal(x, synthetic_images(6, 32, seed=6)[0])
    more = synthetic_images(9, 32, seed=5)[0]
    assert torch.equal(more[:6], x[:6]) and torch.equal(more[9:15], x[6:])  # image i never depends on n


def test_images_vary():
    x, _, _ = synthetic_images(20, 32, seed=0)
    flat = x.reshape(len(x), -1).float()
    assert torch.cdist(flat, flat).add(torch.eye(len(x)) * 1e9).min() > 100  # no two alike
    assert x.float().std(dim=(1, 2, 3)).min() > 10  # not flat images


def _best_single_feature_accuracy(x: torch.Tensor, y: torch.Tensor) -> float:
    """The best accuracy any one pixel value with one threshold reaches (both directions)."""
    f = x.reshape(len(x), -1).float().numpy()
    yy = y.numpy()
    ys = yy[np.argsort(f, axis=0, kind="stable")]
    below_pos = np.cumsum(ys, axis=0)  # positives at or below each cut
    k = np.arange(1, len(yy) + 1)[:, None]
    acc = (k - below_pos + (yy.sum() - below_pos)) / len(yy)
    return float(np.maximum(acc, 1 - acc).max())


def test_no_single_pixel_gives_the_label_away():
    x, y, _ = synthetic_images(150, 24, seed=0)
    assert _best_single_feature_accuracy(x, y) < 0.8


def _fit_small_cnn(size: int, n: int, epochs: int) -> float:
    torch.manual_seed(0)
    x, y, _ = synthetic_images(n, size, seed=0)
    xv, yv, _ = synthetic_images(100, size, seed=1)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(32 * (size // 8) ** 2, 64), nn.ReLU(), nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 32):
            b = perm[i:i + 32]
            loss = F.cross_entropy(net(x[b].float() / 127.5 - 1), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return (net(xv.float() / 127.5 - 1).argmax(1) == yv).float().mean().item()


@pytest.mark.slow
def test_a_small_cnn_learns_it_in_a_few_epochs():
    assert _fit_small_cnn(32, 300, 5) > 0.9


def test_write_synthetic_folder_layouts(tmp_path):
    root = write_synthetic_folder(tmp_path / "s", 8, size=24, seed=0)
    lay = check_layout(root)
    assert lay.is_split and lay.classes == CLASSES
    assert {s: sum(len(f) for f in c.values()) for s, c in lay.files.items()} == {"train": 12, "val": 2, "test": 2}
    names = [p.name for p in (root / "Train" / "WithMask").iterdir()]
    assert any(n.endswith(".png") for n in names) and any(n.endswith(".jpg") for n in names)
    png = next(p for p in sorted((root / "Train" / "WithMask").iterdir()) if p.suffix == ".png")
    i = int(png.stem.split("_")[1])
    assert torch.equal(decode_image(png), synthetic_images(i + 1, 24, 0)[0][i])  # PNGs keep the exact pixels
    flat = check_layout(write_synthetic_folder(tmp_path / "f", 5, size=24, layout="flat"))
    assert not flat.is_split and [len(v) for v in flat.files["all"].values()] == [5, 5]
    with pytest.raises(ValueError):
        write_synthetic_folder(tmp_path / "x", 2, layout="nested")
