"""L1/L2 penalties added to the loss (Keras kernel_regularizer semantics: weights only, not biases or BN)."""
from __future__ import annotations

import torch
from torch import nn


def penalized_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules()
            if isinstance(m, (nn.Linear, nn.Conv2d)) and m.weight.requires_grad]


def penalty(weights: list[torch.Tensor], l1: float, l2: float) -> torch.Tensor | float:
    if not weights or (l1 == 0 and l2 == 0):
        return 0.0
    total = weights[0].new_zeros(())
    for w in weights:
        if l1:
            total = total + l1 * w.abs().sum()
        if l2:
            total = total + l2 * w.pow(2).sum()
    return total


class EarlyStopping:
    """Stops after ``patience`` epochs without improvement of ``monitor``; remembers the best epoch."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5) -> None:
        self.monitor, self.patience = monitor, patience
        self.best: float | None = None
        self.best_epoch = -1
        self.bad_epochs = 0

    def better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.monitor.endswith("loss") else value > self.best

    def update(self, epoch: int, value: float) -> bool:
        """Record ``value``; True when the run should stop."""
        if self.better(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, s: dict) -> None:
        self.best, self.best_epoch, self.bad_epochs = s["best"], s["best_epoch"], s["bad_epochs"]
