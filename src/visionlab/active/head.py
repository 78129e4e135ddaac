"""The classifier trained each round: a small MLP on frozen features.

It has the same shape as the head of visionlab's backbone models (``Linear(F, 256) + ReLU + Dropout +
Linear(256, C)``), so the head of a frozen-backbone run can seed round 0 and a round's weights warm-start
the next. Dropout doubles as the source of the T stochastic predictions BALD needs (MC dropout).
Full-batch Adam: the labelled set is small (tens to hundreds of rows), so a round takes well under a second.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import torch
from torch import nn

HIDDEN = 256


@dataclass
class HeadParams:
    epochs: int = 200
    lr: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.2
    balanced: bool = True  # weight classes by inverse frequency: a round's labels are rarely balanced


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Heads are small enough that a second OpenMP thread only adds synchronisation, and on a busy machine
    spinning threads make each step many times slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def make_head(feature_dim: int, num_classes: int, dropout: float = 0.2) -> nn.Sequential:
    return nn.Sequential(nn.Linear(feature_dim, HIDDEN), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(HIDDEN, num_classes))


def train_head(x: np.ndarray, y: np.ndarray, num_classes: int, params: HeadParams = HeadParams(), seed: int = 0,
               init: Optional[dict] = None) -> dict[str, torch.Tensor]:
    """Train on features ``x`` (N x F) and labels ``y``; ``init`` warm-starts from earlier weights when the
    shapes fit. Returns the state dict."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.int64)
    weight = None
    if params.balanced:
        counts = torch.bincount(yt, minlength=num_classes).float()
        weight = torch.where(counts > 0, len(yt) / (num_classes * counts.clamp(min=1)), torch.zeros_like(counts))
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    with one_thread(), torch.random.fork_rng(devices=[]):  # initialisation and dropout masks follow `seed` alone
        torch.manual_seed(seed)
        head = make_head(x.shape[1], num_classes, params.dropout)
        if init is not None and {k: tuple(v.shape) for k, v in init.items()} == \
                {k: tuple(v.shape) for k, v in head.state_dict().items()}:
            head.load_state_dict(init)
        head.train()
        opt = Adam(list(head.parameters()), params.lr, params.weight_decay)
        for _ in range(params.epochs):
            loss = loss_fn(head(xt), yt)
            head.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return {k: v.detach().clone() for k, v in head.state_dict().items()}


class Adam:
    """Adam with L2 weight decay, as torch.optim.Adam computes it. Written out because the first
    torch.optim optimizer a process builds imports torch._dynamo (seconds), and every `retrain` is a
    fresh process training for well under a second. tests/active/test_head.py checks it against
    torch.optim.Adam (same parameters after 100 steps to 1e-6) and that training a head leaves
    torch._dynamo unimported."""

    def __init__(self, params: list[torch.Tensor], lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.lr, self.wd, self.betas, self.eps = params, lr, weight_decay, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            g = p.grad.add(p, alpha=self.wd) if self.wd else p.grad
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-self.lr / c1)


def _load(state: dict, dropout: float = 0.2) -> nn.Sequential:
    w0, w3 = state["0.weight"], state["3.weight"]
    head = make_head(w0.shape[1], w3.shape[0], dropout)
    head.load_state_dict(state)
    return head


@torch.no_grad()
def predict_proba(state: dict, x: np.ndarray) -> np.ndarray:
    head = _load(state).eval()
    with one_thread():
        return torch.softmax(head(torch.as_tensor(x, dtype=torch.float32)), 1).numpy()


@torch.no_grad()
def mc_proba(state: dict, x: np.ndarray, samples: int = 20, seed: int = 0, dropout: float = 0.2) -> np.ndarray:
    """T x N x C probabilities with dropout left on (MC dropout)."""
    head = _load(state, dropout).train()
    xt = torch.as_tensor(x, dtype=torch.float32)
    with one_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return np.stack([torch.softmax(head(xt), 1).numpy() for _ in range(samples)])
