"""``fast_cifar10``: a small residual-free VGG-style net in the manner of airbench (Keller Jordan), built for
time-to-accuracy on CIFAR-10: BatchNorm + GELU conv blocks, max-pool downsampling, a scaled linear head and
horizontal-flip test-time augmentation in eval mode. Its training recipe travels with it (see ``RECIPE``)."""
from __future__ import annotations

import torch
from torch import nn

from .contract import Network

RECIPE = dict(optimizer="nesterov", lr=0.2, momentum=0.85, weight_decay=5e-4, batch_size=512, epochs=10,
              schedule="onecycle", label_smoothing=0.2, augment=True, init="he_uniform")


def _conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out, momentum=0.4), nn.GELU()]


class FastNet(Network, nn.Module):
    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (64, 256, 256), tta: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = [*_conv_bn(3, 32)]
        c = 32
        for w in widths:  # each block: conv, pool (halve), conv
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(w, momentum=0.4),
                       nn.GELU(), *_conv_bn(w, w)]
            c = w
        self.features = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c, num_classes, bias=False)
        self.tta = tta

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return features if pre_logits else self.fc(features) / 9.0  # a small output scale steadies early steps

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.tta:
            return self._logits(x)
        return 0.5 * (self._logits(x) + self._logits(torch.flip(x, dims=[3])))
