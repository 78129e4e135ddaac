"""Per-channel statistics match NumPy's on the 0..1 scale, whatever the chunking."""
import numpy as np
import pytest
import torch

from visionlab.data.stats import channel_stats


@pytest.mark.parametrize("chunk", [7, 8192])
def test_matches_numpy(chunk):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (50, 3, 9, 11), generator=g, dtype=torch.uint8)
    x[:, 1] //= 4  # channels differ, so a mix-up of axes shows
    mean, std = channel_stats(x, chunk=chunk)
    a = x.numpy().astype(np.float64) / 255.0
    np.testing.assert_allclose(mean, a.mean(axis=(0, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(std, a.std(axis=(0, 2, 3)), atol=1e-6)
    assert mean[1] < 0.2 < mean[0]


def test_constant_channel_has_a_floor_and_bad_shapes_are_refused():
    x = torch.full((4, 3, 5, 5), 128, dtype=torch.uint8)
    mean, std = channel_stats(x)
    assert mean == pytest.approx((128 / 255,) * 3, abs=1e-6)
    assert min(std) == pytest.approx(1 / 255, abs=1e-6)  # never a division by zero
    with pytest.raises(ValueError, match="N x 3"):
        channel_stats(torch.zeros(4, 1, 5, 5, dtype=torch.uint8))
