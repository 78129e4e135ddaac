"""Training losses by name; a new one is one registered function ``make(cfg, class_counts) -> loss(logits, y)``.

- ``cross_entropy`` (the default): with ``--label-smoothing``.
- ``balanced``: cross-entropy with each class weighted by the inverse of its share of the training images
  (scikit-learn's ``compute_class_weight("balanced")``), so a rare class weighs as much in total as a common one.
- ``focal``: cross-entropy scaled by ``(1 - p_true) ** --focal-gamma`` per image (Lin et al. 2017), so images the
  network already gets right weigh little; ``--focal-gamma 0`` is plain cross-entropy.

The loss is what training and ``lr-find`` minimise; the validation loss a run reports and early stopping watch
stays plain cross-entropy, so runs trained with different losses are compared on one scale.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..config import RunConfig
from ..errors import ConfigError
from ..registry import Registry

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: Registry[Callable[[RunConfig, torch.Tensor], Loss]] = Registry("loss")
DEFAULT_LOSS: str = RunConfig.model_fields["loss"].default  # the config says what trains by default


@LOSSES.register("cross_entropy")
def cross_entropy(cfg: RunConfig, class_counts: torch.Tensor) -> Loss:
    return lambda logits, y: F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)


@LOSSES.register("balanced")
def balanced(cfg: RunConfig, class_counts: torch.Tensor) -> Loss:
    weight = class_weights(class_counts)
    return lambda logits, y: F.cross_entropy(logits, y, weight=weight.to(logits.device),
                                             label_smoothing=cfg.label_smoothing)


@LOSSES.register("focal")
def focal(cfg: RunConfig, class_counts: torch.Tensor) -> Loss:
    # torchvision's sigmoid_focal_loss is one-vs-all (sigmoid); the softmax form over classes is written here
    gamma = float(cfg.focal_gamma)

    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, y, reduction="none", label_smoothing=cfg.label_smoothing)
        p_true = F.softmax(logits, 1).gather(1, y[:, None])[:, 0]
        return ((1.0 - p_true).clamp_min(0.0) ** gamma * ce).mean()

    return loss


def class_weights(class_counts: torch.Tensor) -> torch.Tensor:
    """n / (k * count) for each of k classes, as scikit-learn's ``compute_class_weight("balanced")``; a class with
    no training images gets weight 0 (it cannot appear in a batch)."""
    from sklearn.utils.class_weight import compute_class_weight

    counts = class_counts.cpu().numpy().astype(np.int64)
    present = np.flatnonzero(counts)
    labels = np.repeat(present, counts[present])
    w = np.zeros(len(counts))
    w[present] = compute_class_weight("balanced", classes=present, y=labels)
    return torch.tensor(w, dtype=torch.float32)


def make_loss(cfg: RunConfig, class_counts: torch.Tensor) -> Loss:
    """The training loss ``cfg.loss`` names (a wrong name lists the choices)."""
    return LOSSES.get(cfg.loss)(cfg, class_counts)


def check_loss(cfg: RunConfig, trainer: str) -> None:
    """A trainer that only minimises cross-entropy (``trainer`` names it) refuses another loss in one line."""
    LOSSES.get(cfg.loss)
    if cfg.loss != DEFAULT_LOSS:
        raise ConfigError(f"--loss {cfg.loss}: {trainer} trains with cross-entropy only; leave --loss at "
                          f"{DEFAULT_LOSS}")
