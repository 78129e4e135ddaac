"""Model registry: one way to build any model from a RunConfig.

Every built model is ``nn.Sequential(Normalize, net)``: it takes raw 0..255 RGB pixels (see
docs/architecture.md), so export, detection and the service never re-implement preprocessing.
"""
from __future__ import annotations

import importlib

from torch import nn

from ..config import RunConfig
from ..errors import ConfigError
from .cnn import CNN
from .contract import Network
from .fast import RECIPE as FAST_RECIPE
from .fast import FastNet
from .init import INITIALIZERS, apply_init
from .layers import ACTIVATIONS, Normalize
from .mlp import MLP

from .catalog import MODELS, Builder


class Classifier(nn.Sequential):
    """Normalize + network; ``net`` is a ``Network`` (models/contract.py: forward_features, forward_head,
    param_groups, frozen)."""

    def __init__(self, normalize: Normalize, net: nn.Module) -> None:
        super().__init__()
        self.normalize = normalize
        self.net = net

    def forward(self, x):
        return self.net(self.normalize(x))


def _mlp(widths: list[int]) -> Builder:
    def build(cfg: RunConfig, num_classes: int, image_size: int) -> nn.Module:
        net = MLP(3 * image_size * image_size, cfg.widths or widths, num_classes, cfg.activation, cfg.batchnorm, cfg.dropout)
        apply_init(net, cfg.init, cfg.activation)
        return net
    return build


def _cnn(spec: str) -> Builder:
    def build(cfg: RunConfig, num_classes: int, image_size: int) -> nn.Module:
        s = spec
        if cfg.widths:  # `--model cnn --widths 32,64`: conv-pool per width, then one fc128
            s = "-".join(f"conv{w}-pool" for w in cfg.widths) + "-fc128"
        net = CNN(s, num_classes, image_size, cfg.activation, cfg.batchnorm, cfg.dropout)
        apply_init(net, cfg.init, cfg.activation)
        return net
    return build


# The dissertation's networks (chapter 3: CIFAR-10 32x32; chapter 4: face masks at 128x128).
def _register_mlp(name: str, widths: list[int], image_size: int) -> None:
    MODELS.register(name, family="mlp", image_size=image_size, widths=widths)(_mlp(widths))


def _register_cnn(name: str, spec: str, image_size: int, recipe: dict | None = None) -> None:
    MODELS.register(name, family="cnn", image_size=image_size, spec=spec, recipe=recipe)(_cnn(spec))


# Chapter 4's face-mask CNN: Adam for 10 epochs. BatchNorm and flip/crop augmentation are part of the preset:
# without them it overfits the 2,231 training images (91.8% test against 96% validation, seed 0).
MASK_RECIPE = dict(optimizer="adam", lr=1e-3, epochs=10, batch_size=32, batchnorm=True, augment=True)


_register_mlp("mlp", [128, 64], 32)
_register_mlp("ann_baseline", [128, 64], 32)
_register_mlp("dense_ann", [256, 512, 512, 256, 128, 128, 64, 64], 32)
_register_mlp("mask_ann", [256, 128, 64], 128)
_register_cnn("cnn", "conv32-pool-conv64-pool-fc128", 32)
_register_cnn("cnn_baseline", "conv32-pool-conv64-pool-fc128-fc64", 32)
_register_cnn("dense_cnn", "conv256-pool-conv256-pool-conv128-fc128-fc128-fc64-fc64", 32)
_register_cnn("mask_cnn", "conv32-pool-conv64-pool-conv128-pool-conv128-pool-fc128", 128, MASK_RECIPE)
_register_cnn("small_cnn", "conv16-pool-conv32-pool-conv64-pool-fc64", 64)



@MODELS.register("fast_cifar10", family="cnn", image_size=32, recipe=FAST_RECIPE,
                 mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
def _fast(cfg: RunConfig, num_classes: int, image_size: int) -> nn.Module:
    net = FastNet(num_classes, tuple(cfg.widths) if cfg.widths else (64, 256, 256))
    apply_init(net, cfg.init, "relu")
    return net


def apply_recipe(cfg: RunConfig) -> RunConfig:
    """Fill the fields the user did not set from the model's recipe (e.g. fast_cifar10's schedule)."""
    _load_plugins()
    recipe = MODELS.meta(cfg.model).get("recipe") or {}
    update = {k: v for k, v in recipe.items() if k not in cfg.model_fields_set}
    return cfg.model_copy(update=update) if update else cfg


def _load_plugins() -> None:
    # Optional model families live in their own modules and register themselves on import.
    for mod in ("backbones", "scratch_adapter"):
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{mod}":
                raise


def _input_policy(cfg: RunConfig) -> str:
    """'scale' (/255 only), 'model' (the registry's mean/std) or 'dataset' (the training images' statistics)."""
    _load_plugins()
    meta = MODELS.meta(cfg.model)
    if meta.get("input") == "scale":
        if cfg.normalize == "dataset":
            raise ConfigError(f"{cfg.model} scales its own input by 1/255; drop --normalize dataset")
        return "scale"
    if cfg.normalize == "auto":
        return "model" if meta.get("mean") is not None else "dataset"
    return cfg.normalize


def input_stats(cfg: RunConfig) -> tuple[tuple | None, tuple | None]:
    """(mean, std) on the 0..1 scale the model's Normalize layer uses; (None, None) means divide by 255 only.

    Pretrained backbones (and fast_cifar10) carry their own statistics in the registry; a model whose meta says
    ``input="scale"`` (the NumPy network, which scales its own batches) always takes /255. Otherwise
    ``normalize=dataset`` standardises with the training images' per-channel statistics, which
    ``with_input_stats`` records in the config (``auto`` means the same once they are recorded; before, /255).
    Without centred inputs plain SGD on the CIFAR-10 CNN swings between epochs (validation accuracy 41-59% in
    epochs 9-15 of a plain fp32 loop, seed 0) and ends at 45-60% test; standardised, 59-67% over seeds 0-2.
    """
    policy = _input_policy(cfg)
    if policy == "model":
        meta = MODELS.meta(cfg.model)
        return meta["mean"], meta["std"]
    if policy == "scale":
        return None, None
    if cfg.input_mean is None or cfg.input_std is None:
        if cfg.normalize == "dataset":
            raise ConfigError("--normalize dataset needs input_mean and input_std: train through visionlab.train "
                              "(it measures them on the training images) or pass --input-mean and --input-std")
        return None, None  # auto before any data was seen (a bare build, or a run from before the statistics)
    return cfg.input_mean, cfg.input_std


def with_input_stats(cfg: RunConfig, train_x) -> RunConfig:
    """``cfg`` with input_mean/input_std measured on the training images, where the model standardises with them."""
    from ..data.stats import channel_stats

    if _input_policy(cfg) != "dataset" or (cfg.input_mean is not None and cfg.input_std is not None):
        return cfg
    mean, std = channel_stats(train_x)
    return cfg.model_copy(update={"input_mean": cfg.input_mean or mean, "input_std": cfg.input_std or std})


def default_image_size(name: str) -> int | None:
    _load_plugins()
    return MODELS.meta(name).get("image_size")


def build(cfg: RunConfig, num_classes: int, image_size: int) -> Classifier:
    """Build ``cfg.model`` for ``num_classes`` classes at ``image_size`` x ``image_size`` input."""
    _load_plugins()
    ACTIVATIONS.get(cfg.activation)
    INITIALIZERS.get(cfg.init)
    mean, std = input_stats(cfg)
    net = MODELS.get(cfg.model)(cfg, num_classes, image_size)
    if not isinstance(net, Network):
        raise TypeError(f"the builder of {cfg.model!r} returned a {type(net).__name__}, not a models.contract.Network")
    return Classifier(Normalize(mean, std), net)


def training_kind(cfg: RunConfig) -> str:
    """How ``cfg.model`` trains: ``torch`` (autograd), ``numpy`` (the network's own ``manual_step``) or ``keras``
    (``--framework keras``: Keras' fit on the Keras twin). The registry's ``training`` field, default torch."""
    if cfg.framework == "keras":
        return "keras"
    _load_plugins()
    return MODELS.meta(cfg.model).get("training", "torch")


def model_names() -> list[str]:
    _load_plugins()
    return MODELS.names()


__all__ = ["training_kind", "Network", "apply_recipe", "input_stats", "with_input_stats", "MODELS", "ACTIVATIONS", "INITIALIZERS", "Classifier", "build", "default_image_size", "model_names"]

_load_plugins()  # backbones and scratch_mlp register themselves; MODELS exists by now


def list_models() -> list[dict]:
    """``visionlab.models()``, the twin of `visionlab models`: each registered model with its family and default
    input side."""
    return [{"model": n, "family": MODELS.meta(n).get("family", ""), "image_size": MODELS.meta(n).get("image_size")}
            for n in model_names()]


from ..verbs import make_callable  # noqa: E402

make_callable(__name__, list_models)
