"""The dissertation's presets have the documented shapes; activations and initialisers do what they say."""
import pytest
import torch
from torch import nn

from visionlab.config import RunConfig
from visionlab.models import ACTIVATIONS, INITIALIZERS, apply_recipe, build


def _linear_shapes(m):
    return [(l.in_features, l.out_features) for l in m.modules() if isinstance(l, nn.Linear)]


def test_ann_presets():
    m = build(RunConfig.build(model="ann_baseline"), 10, 32)
    assert _linear_shapes(m) == [(3072, 128), (128, 64), (64, 10)]
    widths = [o for _, o in _linear_shapes(build(RunConfig.build(model="dense_ann"), 10, 32))]
    assert widths == [256, 512, 512, 256, 128, 128, 64, 64, 10]


def test_cnn_presets():
    m = build(RunConfig.build(model="cnn_baseline"), 10, 32)
    assert [c.out_channels for c in m.modules() if isinstance(c, nn.Conv2d)] == [32, 64]
    assert [o for _, o in _linear_shapes(m)] == [128, 64, 10]
    d = build(RunConfig.build(model="dense_cnn"), 10, 32)
    assert [c.out_channels for c in d.modules() if isinstance(c, nn.Conv2d)] == [256, 256, 128]
    assert [o for _, o in _linear_shapes(d)] == [128, 128, 64, 64, 10]


@pytest.mark.parametrize("act", ACTIVATIONS.names())
def test_every_activation_builds_and_runs(act):
    m = build(RunConfig.build(model="cnn_baseline", activation=act, batchnorm=True, dropout=0.2), 3, 32)
    assert m(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)).shape == (2, 3)


def test_initialisers():
    def first_weight(init):
        torch.manual_seed(0)
        return build(RunConfig.build(model="ann_baseline", init=init), 10, 32).net[1].weight
    assert set(INITIALIZERS.names()) == {"zeros", "random_normal", "random_uniform", "glorot_uniform",
                                         "glorot_normal", "he_uniform", "he_normal"}
    assert first_weight("zeros").abs().max() == 0
    assert first_weight("random_uniform").abs().max() <= 0.05
    assert first_weight("random_normal").std().item() == pytest.approx(0.05, rel=0.05)
    assert first_weight("glorot_uniform").abs().max() <= (6 / (3072 + 128)) ** 0.5
    assert first_weight("he_normal").std().item() == pytest.approx((2 / 3072) ** 0.5 * 0.88 / 0.8796, rel=0.1)


def test_models_take_raw_pixels():
    m = build(RunConfig.build(model="cnn_baseline"), 10, 32).eval()
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert torch.allclose(m(x), m(x.float()))


def test_fast_cifar10_recipe_fills_only_unset_fields():
    cfg = apply_recipe(RunConfig.build(model="fast_cifar10", epochs=3))
    assert cfg.epochs == 3 and cfg.schedule == "onecycle" and cfg.label_smoothing == 0.2 and cfg.augment
    m = build(cfg, 10, 32).eval()
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    flipped = torch.flip(x, dims=[3])
    assert torch.allclose(m(x), m(flipped), atol=1e-5)  # flip test-time augmentation is symmetric
