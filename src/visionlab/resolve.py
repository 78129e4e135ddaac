"""Settle a RunConfig once, at the top of ``visionlab.train``, before any data is decoded.

``resolve(cfg)``:

1. applies the model's recipe (fields the user did not set; e.g. ``fast_cifar10`` trains with nesterov at
   lr 0.2 for 10 epochs) and says so on the console, so a run never trains at settings nobody printed;
2. checks every registry name at once (model, optimizer, activation, initialiser), scikit-learn style: one
   ``ConfigError`` listing each bad name with its valid choices, before a single image is read;
3. fixes the image size: the one place that decides it (``image_size`` if given; CIFAR-10's native 32 for
   ``--data cifar10``; else the model's default from the registry). Only a folder whose model has no default
   is left to the data layer, which then uses the images' own size.

The result is what config.yaml records, so evaluate, predict, export and resume rebuild the same run.
"""
from __future__ import annotations

from typing import Optional

from .config import RunConfig
from .errors import ConfigError
from .progress import console


def _check_names(cfg: RunConfig) -> None:
    from .models import ACTIVATIONS, INITIALIZERS, MODELS, model_names
    from .training.losses import LOSSES
    from .training.optim import OPTIMIZERS

    model_names()  # registers the optional model families
    wrong = []
    for field, registry in (("model", MODELS), ("optimizer", OPTIMIZERS), ("activation", ACTIVATIONS),
                            ("init", INITIALIZERS), ("loss", LOSSES)):
        value = getattr(cfg, field)
        if value not in registry:  # the registry's own wording: "unknown model 'x'; choose one of: ..."
            wrong.append(f"unknown {registry.kind} {value!r} (--{field.replace('_', '-')}); choose one of: "
                         f"{', '.join(registry.names())}")
    if wrong:
        raise ConfigError("; ".join(wrong))


def image_size(cfg: RunConfig) -> Optional[int]:
    """The input side a run trains at: explicit, CIFAR-10's 32, else the model's registry default."""
    from .models import default_image_size

    if cfg.image_size:
        return cfg.image_size
    if cfg.source in ("auto", "cifar10") and str(cfg.data) == "cifar10":
        return 32  # CIFAR-10's native side; a model's larger default would only upsample
    return default_image_size(cfg.model)


def resolve(cfg: RunConfig, announce: bool = True) -> RunConfig:
    """``cfg`` with its recipe applied, its names checked and its image size fixed (see the module doc)."""
    from .models import apply_recipe

    _check_names(cfg)
    settled = apply_recipe(cfg)
    changed = {k: getattr(settled, k) for k in settled.model_fields_set - cfg.model_fields_set}
    if changed and announce and not cfg.quiet:
        console.print(f"{cfg.model}'s recipe sets " + ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
                      + " (pass any of them to override)", highlight=False, soft_wrap=True)
    size = image_size(settled)
    if size is not None and settled.image_size is None:
        settled = settled.model_copy(update={"image_size": size})
    return settled
