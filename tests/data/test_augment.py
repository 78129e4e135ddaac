"""The augmentation registry: crop_flip as before, faces' photometric and squeeze parts on images whose answer
is known, and training through --augment-policy."""
from __future__ import annotations

import pytest
import torch

from visionlab.data.augment import AUGMENTATIONS, photometric, squeeze
from visionlab.data.loader import augment_batch
from visionlab.errors import ConfigError


def test_registry_names_and_unknown():
    x = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    a = AUGMENTATIONS.get("crop_flip")(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, augment_batch(x, torch.Generator().manual_seed(1)))
    with pytest.raises(ConfigError, match="faces"):
        AUGMENTATIONS.get("nope")


def test_faces_shape_dtype_and_seeded():
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    a = AUGMENTATIONS.get("faces")(x, torch.Generator().manual_seed(3))
    b = AUGMENTATIONS.get("faces")(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and a.dtype == torch.uint8 and torch.equal(a, b)
    assert not torch.equal(a, AUGMENTATIONS.get("faces")(x, torch.Generator().manual_seed(4)))


def test_photometric_on_flat_grey():
    """A flat grey 128 image stays flat (contrast works about its mean), at 255 * b * (128/255)^g for b in
    0.5-1.3 and g in 0.7-1.6: between 42 and 206; and the draws differ between images."""
    x = torch.full((40, 3, 8, 8), 128, dtype=torch.uint8)
    out = photometric(x, torch.Generator().manual_seed(0))
    per = out.view(40, -1)
    assert torch.equal(per.min(1).values, per.max(1).values)
    lo, hi = 255 * 0.5 * (128 / 255) ** 1.6, 255 * 1.3 * (128 / 255) ** 0.7
    assert per.min() >= int(lo) and per.max() <= int(hi) + 1
    assert len(per[:, 0].unique()) > 10


def test_squeeze_narrows_a_bar():
    """A white bar 16 px wide on black, every image squeezed to 50-100% of its width: the bar is then 8-16 px
    wide (+1 for a blended edge). Outside the narrowed image the image is mirrored, so copies of the bar may
    appear there: each copy is as narrow, and the widest run of white is what is measured."""
    x = torch.zeros((30, 1, 8, 64), dtype=torch.uint8)
    x[..., 24:40] = 255
    out = squeeze(x, torch.Generator().manual_seed(0), share=1.0, low=0.5)
    widths = []
    for row in (out[:, 0, 4] > 127).tolist():
        best = run = 0
        for v in row:
            run = run + 1 if v else 0
            best = max(best, run)
        widths.append(best)
    assert min(widths) >= 7 and max(widths) <= 17
    assert sum(w < 14 for w in widths) >= 10
    untouched = squeeze(x, torch.Generator().manual_seed(0), share=0.0)
    assert torch.equal(untouched, x)


def test_training_with_the_faces_policy(tmp_path):
    from visionlab.api import train

    res = train(data="synthetic", model="cnn_baseline", epochs=1, augment=True, augment_policy="faces",
                image_size=32, synthetic_per_class=8, out=str(tmp_path / "run"), quiet=True)
    assert res is not None
    with pytest.raises(ConfigError, match="crop_flip"):
        train(data="synthetic", model="cnn_baseline", epochs=1, augment=True, augment_policy="nope",
              image_size=32, synthetic_per_class=8, out=str(tmp_path / "run2"), quiet=True)
