"""Fully connected networks (the dissertation's ANNs)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .contract import Network
from .layers import activation


def dense_block(n_in: int, n_out: int, act: str, batchnorm: bool, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(n_out))
    layers.append(activation(act))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers


class MLP(Network, nn.Sequential):
    """Flatten, hidden blocks (Linear, [BatchNorm], activation, [Dropout]), then the output Linear."""

    def __init__(self, in_features: int, widths: Sequence[int], num_classes: int, act: str = "relu",
                 batchnorm: bool = False, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        n = in_features
        for w in widths:
            layers += dense_block(n, w, act, batchnorm, dropout)
            n = w
        layers.append(nn.Linear(n, num_classes))
        super().__init__(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for layer in list(self)[:-1]:  # (slicing an nn.Sequential subclass would call this __init__)
            x = layer(x)
        return x

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return features if pre_logits else self[-1](features)
