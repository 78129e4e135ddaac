"""The learning-rate range test (Smith 2015; fastai's ``lr_find``): train from the run's initial weights while
the rate grows exponentially from ``start_lr`` to ``end_lr`` over ``steps`` mini-batches, record the loss,
smooth it (exponential moving average, debiased, beta 0.98 as fastai), stop when it passes 4x its minimum,
and suggest a rate.

Two suggestions, as fastai gives them: ``steep``, the rate where the smoothed loss falls fastest (the most
negative slope of loss against log10 lr, leaving out the first 10% of the steps and the last 5 as fastai
does), and ``min_div10``, a tenth of the rate at the smoothed minimum. ``suggested`` is ``min_div10``
(fastai v1's rule): on a noisy mini-batch curve the steepest point moves a decade from seed to seed, the
minimum much less, and a tenth of it stays safely below the blow-up.

Hand-written rather than taken from a library: fastai's ``Learner.lr_find`` needs a fastai Learner and
DataLoaders and torch-lr-finder is unmaintained; the loop is thirty lines over ``trainer.prepare``'s plan, so
the optimizer, precision, memory format and frozen-feature cache are exactly those ``train`` would use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..progress import progress
from .regularize import penalty
from .trainer import Plan, autocast, epoch_seed, _batches

BETA = 0.98
STOP_FACTOR = 4.0


@dataclass
class LRFindResult:
    lrs: list[float]
    losses: list[float]          # raw mini-batch losses
    smoothed: list[float]        # debiased exponential moving average
    steep: float                 # rate at the steepest descent of the smoothed loss
    min_div10: float             # a tenth of the rate at the smoothed minimum
    suggested: float             # min_div10 (see the module's note)
    stopped_early: bool          # the loss passed STOP_FACTOR x its minimum before the last step
    files: dict = field(default_factory=dict)  # png, csv, json when written

    def summary(self) -> dict:
        return {"suggested_lr": self.suggested, "steep_lr": self.steep, "min_div10_lr": self.min_div10,
                "steps_run": len(self.lrs), "stopped_early": self.stopped_early,
                "lr_range": [self.lrs[0], self.lrs[-1]] if self.lrs else []}


def ramp(start_lr: float, end_lr: float, steps: int) -> np.ndarray:
    """The exponential schedule: ``steps`` rates from ``start_lr`` to ``end_lr`` inclusive."""
    return start_lr * (end_lr / start_lr) ** (np.arange(steps) / max(steps - 1, 1))


def smooth(losses: list[float], beta: float = BETA) -> list[float]:
    """fastai's debiased exponential moving average."""
    avg, out = 0.0, []
    for i, v in enumerate(losses, 1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** i))
    return out


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float, float]:
    """(steep, min_div10) from the smoothed curve, on fastai's window: the first 10% of the steps (the moving
    average still settling) and the last 5 (the blow-up) are left out."""
    lr, s = np.asarray(lrs), np.asarray(smoothed)
    lo, hi = len(s) // 10, len(s) - 5
    if hi - lo < 3:
        lo, hi = 0, len(s)
    lr, s = lr[lo:hi], s[lo:hi]
    min_div10 = float(lr[int(np.argmin(s))] / 10)
    if len(s) < 3:
        return min_div10, min_div10
    slope = np.gradient(s, np.log10(lr))
    return float(lr[int(np.argmin(slope))]), min_div10


def run_range_test(p: Plan, start_lr: float, end_lr: float, steps: int, quiet: bool = False) -> LRFindResult:
    """The range test on a prepared plan (``trainer.prepare``): one optimizer step per mini-batch."""
    if p.full_batch:
        raise ConfigError(f"lr-find takes a step per mini-batch; --optimizer {p.cfg.optimizer} takes one step per "
                          f"epoch: use minibatch_sgd (or another mini-batch optimizer) with --batch-size")
    if not 0 < start_lr < end_lr:
        raise ConfigError(f"--start-lr {start_lr} and --end-lr {end_lr}: need 0 < start-lr < end-lr")
    if steps < 5:
        raise ConfigError(f"--steps {steps}: the range test needs at least 5 steps (100 is usual)")
    cfg = p.cfg
    rates = ramp(start_lr, end_lr, steps)
    scale = [g["lr"] / cfg.lr for g in p.opt.param_groups] if p.opt is not None else []  # finetune groups keep ratios
    lrs: list[float] = []
    losses: list[float] = []
    best, stopped, epoch = math.inf, False, 0
    p.trainable.train()
    with progress(disable=quiet) as bar:
        task = bar.add_task("lr-find", total=steps, info="")
        while len(lrs) < steps and not stopped:
            torch.manual_seed(epoch_seed(cfg.seed, epoch))
            for xb, yb in _batches(p.train, p.chunk, True, cfg.seed, epoch, p.augment):
                lr = float(rates[len(lrs)])
                if p.channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                if p.numpy_net is not None:
                    loss = float(p.numpy_net.manual_step(xb, yb, lr))
                else:
                    for g, k in zip(p.opt.param_groups, scale):
                        g["lr"] = lr * k
                    with autocast(p.device, p.amp):
                        logits = p.step_model(xb)
                    t = p.loss_fn(logits.float(), yb)
                    p.opt.zero_grad(set_to_none=True)
                    (t + penalty(p.weights, cfg.l1, cfg.l2)).backward()
                    p.opt.step()
                    loss = t.item()
                lrs.append(lr)
                losses.append(loss if math.isfinite(loss) else float("inf"))
                s = smooth(losses)[-1]
                best = min(best, s)
                bar.update(task, advance=1, info=f"lr {lr:.2e} loss {s:.3f}")
                if not math.isfinite(s) or (len(lrs) > 10 and s > STOP_FACTOR * best):
                    stopped = True
                    break
                if len(lrs) == steps:
                    break
            epoch += 1
    finite = [i for i, v in enumerate(losses) if math.isfinite(v)]
    lrs, losses = [lrs[i] for i in finite], [losses[i] for i in finite]
    sm = smooth(losses)
    steep, min_div10 = suggest(lrs, sm)
    return LRFindResult(lrs, losses, sm, steep, min_div10, min_div10, stopped)


def plot(res: LRFindResult, path: Path, title: str = "") -> Path:
    """The loss-vs-lr curve (log x), raw and smoothed, with both suggestions marked."""
    from ..plots import _save, plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(res.lrs, res.losses, color="0.75", lw=0.8, label="mini-batch loss")
    ax.plot(res.lrs, res.smoothed, color="C0", lw=1.8, label="smoothed (EMA 0.98)")
    sm = np.asarray(res.smoothed)
    for lr, name, c in ((res.steep, "steepest", "C3"), (res.min_div10, "min / 10", "C2")):
        i = int(np.argmin(np.abs(np.log(np.asarray(res.lrs)) - math.log(lr))))
        ax.axvline(lr, color=c, ls="--", lw=1)
        ax.plot([res.lrs[i]], [sm[i]], "o", color=c, label=f"{name}: {lr:.2e}" + (" (suggested)" if lr == res.suggested else ""))
    ax.set_xscale("log")
    top = float(np.percentile(sm, 95)) if len(sm) else 1.0
    ax.set_ylim(min(sm.min(), np.min(res.losses)) * 0.95 if len(sm) else 0, max(top, sm[0]) * 1.15 if len(sm) else 1)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title or "Learning-rate range test")
    return _save(fig, path)
