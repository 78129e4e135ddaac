"""Convolutional networks described by a layer string such as ``conv32-pool-conv64-pool-fc128-fc64``."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .contract import Network
from .layers import ACTIVATIONS, activation
from .mlp import MLP


class CNN(Network, nn.Module):
    """``features`` (the conv stack) then ``classifier`` (an MLP on the flattened map)."""

    def __init__(self, spec: str, num_classes: int, image_size: int, act: str = "relu",
                 batchnorm: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        conv: list[nn.Module] = []
        fc_widths: list[int] = []
        channels = 3
        last_act = None
        for tok in spec.split("-"):
            if tok.startswith("conv"):
                if fc_widths:
                    raise ConfigError(f"cnn spec {spec!r}: conv layers must come before fc layers")
                out = int(tok[4:])
                conv.append(nn.Conv2d(channels, out, 3))  # 'valid' padding, as Keras' default
                if batchnorm:
                    conv.append(nn.BatchNorm2d(out))
                last_act = activation(act)
                conv.append(last_act)
                channels = out
            elif tok == "pool":
                # max(f(a), f(b)) == f(max(a, b)) for a non-decreasing f, so pooling before the activation gives
                # the same outputs and gradients (bit for bit) while the activation and its backward touch a
                # quarter of the values: cnn_baseline trains ~20% faster on a CPU. Both modules have no
                # parameters, so the state-dict keys stay those of conv-act-pool.
                if conv and conv[-1] is last_act and ACTIVATIONS.meta(act)["monotonic"]:
                    conv.insert(len(conv) - 1, nn.MaxPool2d(2))
                else:
                    conv.append(nn.MaxPool2d(2))
            elif tok == "gap":
                conv.append(nn.AdaptiveAvgPool2d(1))
            elif tok.startswith("fc"):
                fc_widths.append(int(tok[2:]))
            else:
                raise ConfigError(f"cnn spec {spec!r}: unknown layer {tok!r} (use convN, pool, gap, fcN)")
        self.features = nn.Sequential(*conv)
        with torch.no_grad():
            try:
                flat = self.features(torch.zeros(1, 3, image_size, image_size)).numel()
            except RuntimeError:
                flat = 0
        if flat == 0:
            raise ConfigError(f"cnn spec {spec!r} shrinks a {image_size}px image to nothing; use a larger --image-size")
        # the fully connected part is an MLP on the flattened features (same modules, same state-dict keys)
        self.classifier = MLP(flat, fc_widths, num_classes, act, batchnorm, dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:
            return self.classifier.forward_features(features)
        return self.classifier(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
