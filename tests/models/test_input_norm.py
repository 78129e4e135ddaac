"""Which input scaling each model gets: the training images' statistics, the backbone's own, or /255."""
import pytest
import torch

from visionlab.config import RunConfig
from visionlab.errors import ConfigError
from visionlab.models import build, input_stats, with_input_stats
from visionlab.models.backbones import IMAGENET_MEAN


def _images(n=64, size=16):
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    x[:, 2] = x[:, 2] // 3 + 20  # a dim blue channel: its standardised values must still centre on 0
    return x


def test_scratch_cnn_is_standardised_with_the_training_images():
    x = _images()
    cfg = with_input_stats(RunConfig.build(model="cnn_baseline"), x)
    assert cfg.input_mean is not None and cfg.input_std is not None
    z = build(cfg, 10, 16).normalize(x)
    assert z.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (z.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-2
    assert with_input_stats(cfg, x * 0) is cfg  # measured once, then kept (a resumed run rebuilds the same layer)


def test_given_statistics_are_kept_and_scale_means_divide_by_255():
    x = _images()
    given = RunConfig.build(model="mlp", input_mean=(0.5, 0.5, 0.5), input_std=(0.25, 0.25, 0.25))
    assert with_input_stats(given, x).input_mean == (0.5, 0.5, 0.5)
    z = build(given, 10, 16).normalize(torch.full((1, 3, 2, 2), 255.0))
    assert torch.allclose(z, torch.full_like(z, 2.0))
    plain = with_input_stats(RunConfig.build(model="mlp", normalize="scale"), x)
    assert plain.input_mean is None and input_stats(plain) == (None, None)
    assert torch.allclose(build(plain, 10, 16).normalize(torch.full((1, 3, 2, 2), 255.0)), torch.ones(1, 3, 2, 2))


def test_pretrained_and_numpy_models_keep_their_own_scaling():
    x = _images()
    bb = with_input_stats(RunConfig.build(model="mobilenet_v2", weights="none"), x)
    assert bb.input_mean is None and input_stats(bb)[0] == IMAGENET_MEAN
    np_cfg = with_input_stats(RunConfig.build(model="scratch_mlp"), x)
    assert np_cfg.input_mean is None and input_stats(np_cfg) == (None, None)
    with pytest.raises(ConfigError, match="1/255"):
        input_stats(RunConfig.build(model="scratch_mlp", normalize="dataset"))


def test_dataset_scaling_without_statistics_is_an_error_and_bad_std_is_refused():
    with pytest.raises(ConfigError, match="input_mean"):
        build(RunConfig.build(model="cnn_baseline", normalize="dataset"), 10, 32)
    with pytest.raises(ConfigError, match="std must be positive"):
        RunConfig.build(model="mlp", input_std=(0.2, 0.0, 0.2))
