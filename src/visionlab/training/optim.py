"""Optimizers by the dissertation's names; a new one is one registered function.

Meta ``batch`` says how the optimizer sees the data: ``full`` (one step per epoch over every training
image: gradient descent proper), ``one`` (a step per image: plain SGD) or ``mini`` (``--batch-size``).
Meta ``keras`` builds the same optimizer for ``--framework keras`` from ``keras.optimizers`` and the config.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch

from ..config import RunConfig
from ..registry import Registry

Params = Iterable[torch.nn.Parameter] | list[dict]
OPTIMIZERS: Registry[Callable[[Params, RunConfig], torch.optim.Optimizer]] = Registry("optimizer")


@OPTIMIZERS.register("gd", batch="full", keras=lambda o, c: o.SGD(c.lr))
def gd(params: Params, cfg: RunConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("sgd", batch="one", keras=lambda o, c: o.SGD(c.lr))
def sgd(params: Params, cfg: RunConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("minibatch_sgd", batch="mini", keras=lambda o, c: o.SGD(c.lr))
def minibatch_sgd(params: Params, cfg: RunConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("momentum", batch="mini", keras=lambda o, c: o.SGD(c.lr, momentum=c.momentum))
def momentum(params: Params, cfg: RunConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("nesterov", batch="mini", keras=lambda o, c: o.SGD(c.lr, momentum=c.momentum, nesterov=True))
def nesterov(params: Params, cfg: RunConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("rmsprop", batch="mini", keras=lambda o, c: o.RMSprop(c.lr))
def rmsprop(params: Params, cfg: RunConfig) -> torch.optim.Optimizer:
    # Keras defaults: rho 0.9, eps 1e-7 (torch's alpha is Keras' rho)
    return torch.optim.RMSprop(params, lr=cfg.lr, alpha=0.9, eps=1e-7, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("adam", batch="mini", keras=lambda o, c: o.Adam(c.lr))
def adam(params: Params, cfg: RunConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr, eps=1e-7, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("adamw", batch="mini", keras=lambda o, c: o.AdamW(c.lr))
def adamw(params: Params, cfg: RunConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay or 0.01)


@OPTIMIZERS.register("adagrad", batch="mini", keras=lambda o, c: o.Adagrad(c.lr))
def adagrad(params: Params, cfg: RunConfig) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("nadam", batch="mini", keras=lambda o, c: o.Nadam(c.lr))
def nadam(params: Params, cfg: RunConfig) -> torch.optim.Optimizer:
    return torch.optim.NAdam(params, lr=cfg.lr, eps=1e-7, weight_decay=cfg.weight_decay)


def effective_batch_size(cfg: RunConfig, n_train: int) -> int:
    kind = OPTIMIZERS.meta(cfg.optimizer)["batch"]
    return n_train if kind == "full" else 1 if kind == "one" else cfg.batch_size


def make_scheduler(opt: torch.optim.Optimizer, cfg: RunConfig, steps_per_epoch: int):
    """A per-step LR schedule (stepped after every optimizer step)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    if cfg.schedule == "step":  # x0.1 at one third and two thirds of training
        third = max(1, total // 3)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 ** (s // third))
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    max_lr = [g["lr"] for g in opt.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total + 1)
