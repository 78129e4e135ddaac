"""Activations and the pixel-normalising first layer every visionlab model starts with."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import nn

from ..registry import Registry

ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry("activation")
# monotonic: non-decreasing, so it commutes with max-pooling (the CNN pools first; see models/cnn.py)
ACTIVATIONS.register("relu", gain="relu", monotonic=True)(nn.ReLU)
ACTIVATIONS.register("tanh", gain="tanh", monotonic=True)(nn.Tanh)
ACTIVATIONS.register("elu", gain="relu", monotonic=True)(nn.ELU)
ACTIVATIONS.register("selu", gain="selu", monotonic=True)(nn.SELU)
ACTIVATIONS.register("sigmoid", gain="sigmoid", monotonic=True)(nn.Sigmoid)
ACTIVATIONS.register("gelu", gain="relu", monotonic=False)(nn.GELU)  # dips below 0 near x = -0.75
ACTIVATIONS.register("leaky_relu", gain="leaky_relu", monotonic=True)(nn.LeakyReLU)

def activation(name: str) -> nn.Module:
    return ACTIVATIONS.get(name)()


class Normalize(nn.Module):
    """Raw 0..255 RGB pixels in, normalised floats out, so every consumer (ONNX, service) feeds raw pixels."""

    def __init__(self, mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None) -> None:
        super().__init__()
        mean_t = torch.tensor(mean if mean is not None else [0.0, 0.0, 0.0], dtype=torch.float32)
        std_t = torch.tensor(std if std is not None else [1.0, 1.0, 1.0], dtype=torch.float32)
        # scale and shift folded so the forward pass is one multiply-add
        self.register_buffer("scale", (1.0 / (255.0 * std_t)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", (-mean_t / std_t).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float()
        return x * self.scale + self.shift
