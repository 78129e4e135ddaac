"""scratch_mlp: the NumPy network as a visionlab model (save/load, forward, manual_step)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from visionlab import models
from visionlab.config import RunConfig
from visionlab.training.checkpoint import load_weights, save_weights


def _build(classes: int, seed: int = 0, size: int = 32, **kw):
    return models.build(RunConfig.build(model="scratch_mlp", seed=seed, **kw), classes, size)


def _pixels(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_registered_with_meta():
    import visionlab.models.scratch_adapter  # noqa: F401  (MODELS.meta alone does not load plugin modules)
    meta = models.MODELS.meta("scratch_mlp")
    assert meta["family"] == "scratch" and meta["image_size"] == 32
    assert models.default_image_size("scratch_mlp") == 32


@pytest.mark.parametrize("classes", [2, 3])
def test_safetensors_round_trip_gives_identical_outputs(tmp_path, classes):
    a = _build(classes, seed=1)
    x = _pixels(5)
    a.net.manual_step(x, torch.arange(5) % classes, lr=0.1)  # trained weights, not just the initial ones
    save_weights(tmp_path / "model.safetensors", a.state_dict())
    b = _build(classes, seed=2)
    assert not torch.equal(a(x), b(x))
    missing, unexpected = b.load_state_dict(load_weights(tmp_path / "model.safetensors"), strict=True)
    assert not missing and not unexpected
    assert torch.equal(a(x), b(x))
    assert sorted(a.state_dict()) == ["net.W1", "net.W2", "net.W3", "net.b1", "net.b2", "net.b3"]


@pytest.mark.parametrize("classes", [2, 4])
def test_forward_matches_the_numpy_network(classes):
    model = _build(classes, widths=[32, 16])
    x = _pixels(6)
    logits = model(x)
    assert logits.shape == (6, classes)
    net = model.net.numpy_network()
    probs = net.probabilities(x.float().reshape(6, -1).numpy() / 255)
    np.testing.assert_allclose(torch.softmax(logits, 1).detach().numpy(), probs, rtol=1e-5, atol=1e-6)
    if classes == 2:
        assert model.net.output == "sigmoid" and net.sizes[-1] == 1
        assert (logits[:, 0] == 0).all()  # [0, z]: softmax gives the sigmoid probability


@pytest.mark.parametrize("classes", [2, 3])
def test_manual_step_lowers_the_loss_on_raw_pixels(classes):
    torch.manual_seed(0)
    model = _build(classes, widths=[64, 32])
    y = torch.arange(60) % classes
    # separable raw pixels: noise, plus one bright colour channel per class
    x = (torch.rand(60, 3, 32, 32) * 100).round()
    x[torch.arange(60), y] += 150
    x = x.to(torch.uint8)
    losses = [model.net.manual_step(x, y, lr=0.02) for _ in range(20)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.2 * losses[0]
    with torch.no_grad():
        loss_now = torch.nn.functional.cross_entropy(model(x), y).item()
    assert loss_now < losses[0]  # the torch forward sees the updated parameters
    assert (model(x).argmax(1) == y).float().mean() > 0.9


def test_manual_step_takes_float_pixels_and_reports_the_loss_before_the_step():
    model = _build(2)
    x, y = _pixels(8).float(), torch.tensor([0, 1] * 4)
    with torch.no_grad():
        before = torch.nn.functional.cross_entropy(model(x), y).item()
    assert model.net.manual_step(x, y, lr=0.01) == pytest.approx(before, rel=1e-5)


def test_parameters_never_require_grad():
    model = _build(2)
    assert all(not p.requires_grad for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 3072 * 128 + 128 + 128 * 64 + 64 + 64 + 1


def test_options_the_numpy_network_lacks_are_refused():
    from visionlab.errors import ConfigError
    for bad in (dict(batchnorm=True), dict(dropout=0.2), dict(activation="tanh")):
        with pytest.raises(ConfigError, match="scratch_mlp"):
            _build(2, **bad)
