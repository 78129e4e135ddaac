"""Weight initialisers by their Keras names (the dissertation's seven); biases start at zero."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..registry import Registry

INITIALIZERS: Registry[Callable[[torch.Tensor, str], None]] = Registry("initializer")


def _fans(w: torch.Tensor) -> tuple[int, int]:
    return nn.init._calculate_fan_in_and_fan_out(w)


@INITIALIZERS.register("zeros")
def zeros(w: torch.Tensor, act: str) -> None:
    nn.init.zeros_(w)


@INITIALIZERS.register("random_normal")
def random_normal(w: torch.Tensor, act: str) -> None:
    nn.init.normal_(w, 0.0, 0.05)  # Keras RandomNormal default stddev


@INITIALIZERS.register("random_uniform")
def random_uniform(w: torch.Tensor, act: str) -> None:
    nn.init.uniform_(w, -0.05, 0.05)  # Keras RandomUniform default range


@INITIALIZERS.register("glorot_uniform")
def glorot_uniform(w: torch.Tensor, act: str) -> None:
    nn.init.xavier_uniform_(w)


@INITIALIZERS.register("glorot_normal")
def glorot_normal(w: torch.Tensor, act: str) -> None:
    # Keras uses a truncated normal with std sqrt(2 / (fan_in + fan_out))
    fan_in, fan_out = _fans(w)
    std = (2.0 / (fan_in + fan_out)) ** 0.5
    nn.init.trunc_normal_(w, 0.0, std / 0.87962566, -2 * std / 0.87962566, 2 * std / 0.87962566)


@INITIALIZERS.register("he_uniform")
def he_uniform(w: torch.Tensor, act: str) -> None:
    nn.init.kaiming_uniform_(w, nonlinearity="relu")


@INITIALIZERS.register("he_normal")
def he_normal(w: torch.Tensor, act: str) -> None:
    fan_in, _ = _fans(w)
    std = (2.0 / fan_in) ** 0.5
    nn.init.trunc_normal_(w, 0.0, std / 0.87962566, -2 * std / 0.87962566, 2 * std / 0.87962566)


def apply_init(model: nn.Module, name: str, act: str = "relu") -> None:
    """Initialise every Linear and Conv weight of ``model``; biases to zero; BatchNorm left as is."""
    fn = INITIALIZERS.get(name)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                fn(m.weight, act)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
