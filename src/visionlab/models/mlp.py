"""Fully connected networks (the dissertation's ANNs)."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from .layers import activation


def dense_block(n_in: int, n_out: int, act: str, batchnorm: bool, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(n_out))
    layers.append(activation(act))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers


class MLP(nn.Sequential):
    def __init__(self, in_features: int, widths: Sequence[int], num_classes: int, act: str = "relu",
                 batchnorm: bool = False, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        n = in_features
        for w in widths:
            layers += dense_block(n, w, act, batchnorm, dropout)
            n = w
        layers.append(nn.Linear(n, num_classes))
        super().__init__(*layers)
