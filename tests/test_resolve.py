"""resolve(cfg): the recipe applied and said, every registry name checked at once, the image size fixed."""
from __future__ import annotations

import pytest

from visionlab.config import RunConfig
from visionlab.errors import ConfigError
from visionlab.models import MODELS
from visionlab.resolve import resolve


def test_recipe_is_applied_and_printed_only_for_unset_fields(capsys):
    cfg = resolve(RunConfig.build(model="fast_cifar10", epochs=3))
    recipe = MODELS.meta("fast_cifar10")["recipe"]
    assert cfg.lr == recipe["lr"] and cfg.optimizer == recipe["optimizer"] and cfg.epochs == 3
    out = capsys.readouterr().err  # the console is stderr's
    assert f"lr={recipe['lr']}" in out and "epochs=" not in out  # the user's epochs win and are not listed


def test_quiet_prints_nothing(capsys):
    resolve(RunConfig.build(model="fast_cifar10", quiet=True))
    assert capsys.readouterr().err == ""


def test_every_bad_name_in_one_error():
    with pytest.raises(ConfigError) as e:
        resolve(RunConfig.build(model="resnet_9000", optimizer="adamm", activation="swishy", init="ones"))
    msg = str(e.value)
    for what in ("unknown model 'resnet_9000'", "unknown optimizer 'adamm'", "unknown activation 'swishy'",
                 "'ones' (--init)"):
        assert what in msg
    assert "minibatch_sgd" in msg and "cnn_baseline" in msg  # the valid choices are listed


@pytest.mark.parametrize("fields,size", [
    (dict(model="mask_cnn", data="some/folder"), 128),          # the model's registry default
    (dict(model="mask_cnn", data="cifar10"), 32),               # CIFAR-10 stays at its native side
    (dict(model="mask_cnn", data="some/folder", image_size=96), 96),  # explicit wins
    (dict(model="efficientnet_lite0", data="some/folder"), MODELS.meta("efficientnet_lite0")["image_size"]),
])
def test_image_size_is_fixed_once(fields, size):
    assert resolve(RunConfig.build(**fields, quiet=True)).image_size == size
