"""The training loop: one function, ``fit``, driven entirely by a RunConfig.

Determinism: the batch order and the dropout RNG of epoch ``e`` are derived from (seed, e) alone, so a run
resumed from the checkpoint of epoch ``e-1`` replays exactly what an uninterrupted run would have done.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import RunConfig
from ..data.types import ImageData, Split
from ..progress import console, progress
from ..runs import RunFolder
from . import checkpoint as ckpt
from .distributed import local_device, setup, wrap
from .features import frozen_feature_splits
from .losses import check_loss, make_loss
from .optim import OPTIMIZERS, effective_batch_size, make_scheduler
from .precision import Precision, resolve_precision
from .regularize import EarlyStopping, penalized_weights, penalty



@dataclass
class FitResult:
    status: str  # ok | diverged | stopped_early
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    rank: int = 0
    setup_seconds: float = 0.0  # before the first epoch: e.g. computing a frozen backbone's features
    compute: dict = field(default_factory=dict)  # precision, memory format, device and CPU capabilities used


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, dtype: Optional[torch.dtype]):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def exploded(loss: float, n_classes: int) -> bool:
    """Divergence: a NaN/infinite loss, or one 100x chance level (ln C), which no learning run comes back from."""
    return not math.isfinite(loss) or loss > 100 * math.log(max(n_classes, 2))


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919) % (2**63 - 1)


def _batches(split: Split, batch_size: int, shuffle: bool, seed: int, epoch: int, augment):
    from ..data.loader import batches

    return batches(split, batch_size, shuffle=shuffle, seed=seed, epoch=epoch, augment=augment)


@torch.no_grad()
def evaluate_split(model: nn.Module, split: Split, batch_size: int = 1024,
                   amp: Optional[torch.dtype] = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``split`` (eval mode)."""
    was_training = model.training
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    for i in range(0, len(split), batch_size):
        xb, yb = split.x[i:i + batch_size], split.y[i:i + batch_size]
        with autocast(xb.device, amp):
            logits = model(xb).float()
        total_loss += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
        n += len(yb)
    model.train(was_training)
    return total_loss / max(n, 1), correct / max(n, 1)


@dataclass
class Plan:
    """Everything an epoch needs, settled once by ``prepare``: what trains, on which tensors, with what."""

    cfg: RunConfig
    model: nn.Module            # the whole Classifier (saved, checkpointed)
    trainable: nn.Module        # what the optimizer moves: the model, or a frozen backbone's head
    step_model: nn.Module       # ``trainable`` wrapped for DDP / torch.compile
    train: Split
    val: Optional[Split]
    device: torch.device
    dist: object
    numpy_net: Optional[nn.Module]  # training kind "numpy": the network whose manual_step trains it
    amp: Optional[torch.dtype]
    channels_last: bool
    augment: "bool | Callable[[torch.Tensor, torch.Generator], torch.Tensor]"  # False or the augmentation
    full_batch: bool
    chunk: int
    steps_per_epoch: int
    n_classes: int
    opt: Optional[torch.optim.Optimizer]
    sched: object
    weights: list
    compute: dict
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # the training loss (losses.py)


def prepare(cfg: RunConfig, model: nn.Module, data: ImageData, kind: str = "torch") -> Plan:
    """Device, what trains (the whole model on pixels, or a frozen backbone's head on cached features),
    memory format, precision, batch plan, optimizer and schedule."""
    device = resolve_device(local_device(cfg.device))
    d = setup(device)
    model.to(device)
    net = model.net
    numpy_kind = kind == "numpy"
    if numpy_kind and d.active:
        from ..errors import ConfigError
        raise ConfigError(f"{cfg.model} trains by hand-written NumPy steps and cannot run under torchrun")
    if numpy_kind:
        check_loss(cfg, f"{cfg.model}'s hand-written NumPy steps")

    trainable: nn.Module = model
    train_split, val_split = data.train, data.val
    if net.frozen and not cfg.augment and cfg.feature_cache:
        train_split, val_split = frozen_feature_splits(cfg, model, data, device)
        trainable = net.head
    augment = cfg.augment and train_split.x.dtype == torch.uint8
    if augment:
        from ..data.augment import AUGMENTATIONS

        augment = AUGMENTATIONS.get(cfg.augment_policy)
    if device.type != "cpu":
        train_split = Split(train_split.x.to(device), train_split.y.to(device))
        val_split = Split(val_split.x.to(device), val_split.y.to(device)) if val_split is not None else None
    channels_last = cfg.channels_last is not False and train_split.x.dim() == 4 and _has_conv(trainable)
    if channels_last:
        trainable.to(memory_format=torch.channels_last)
    precision = Precision(None, cfg.precision, "hand-written NumPy steps") if numpy_kind else \
        resolve_precision(cfg.precision, device)
    compute = precision.record(device, "channels_last" if channels_last else "contiguous")
    if not cfg.quiet and d.main:
        console.print(f"compute: {compute['precision']} ({precision.reason}), {compute['memory_format']}, "
                      f"{device}" + (f" - {compute['cpu']['model']}" if "cpu" in compute else ""), highlight=False)
    step_model = wrap(trainable, d, device)
    if cfg.compile and not numpy_kind:
        step_model = torch.compile(step_model)

    n_train = len(train_split)
    bs = effective_batch_size(cfg, n_train)
    full_batch = bs >= n_train and OPTIMIZERS.meta(cfg.optimizer)["batch"] == "full"
    steps_per_epoch = 1 if full_batch else math.ceil(n_train / bs)
    params = net.param_groups(cfg.lr) if trainable is model else [p for p in trainable.parameters() if p.requires_grad]
    opt = None if numpy_kind else OPTIMIZERS.get(cfg.optimizer)(params, cfg)
    return Plan(cfg, model, trainable, step_model, train_split, val_split, device, d, net if numpy_kind else None,
                precision.dtype, channels_last, augment, full_batch,
                min(bs, 2048) if full_batch else bs,  # full-batch GD accumulates gradients over chunks
                steps_per_epoch, data.num_classes, opt,
                make_scheduler(opt, cfg, steps_per_epoch) if opt is not None else None,
                penalized_weights(trainable), compute,
                make_loss(cfg, torch.bincount(data.train.y.cpu(), minlength=data.num_classes)))


@dataclass
class EpochSums:
    loss: float
    correct: int
    seen: int
    diverged: bool


def _step(p: Plan, xb: torch.Tensor, yb: torch.Tensor, n_train: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch: (loss, logits). Full-batch GD only accumulates gradients (the step is taken at the epoch's end)."""
    cfg = p.cfg
    if p.numpy_net is not None:
        loss = torch.tensor(float(p.numpy_net.manual_step(xb, yb, cfg.lr)))
        with torch.no_grad():
            return loss, p.model(xb)
    with autocast(p.device, p.amp):
        logits = p.step_model(xb)
    loss = p.loss_fn(logits.float(), yb)
    if p.full_batch:
        share = len(yb) * p.dist.world / n_train  # DDP averages over ranks; undo that for a sum over chunks
        ((loss + penalty(p.weights, cfg.l1, cfg.l2)) * share).backward()
    else:
        total = loss + penalty(p.weights, cfg.l1, cfg.l2)
        p.opt.zero_grad(set_to_none=True)
        total.backward()
        p.opt.step()
        p.sched.step()
    return loss, logits


def train_one_epoch(p: Plan, epoch: int, bar, task) -> EpochSums:
    """One pass over the training split in the epoch's seeded order; the running loss is checked for
    divergence every ``sync_every`` steps (a GPU must not wait for the host every step)."""
    cfg = p.cfg
    sync_every = 1 if p.device.type == "cpu" else 50
    torch.manual_seed(epoch_seed(cfg.seed, epoch))  # dropout and any other global-RNG use
    p.trainable.train()
    # running sums stay on the device; reading them (a sync) happens every `sync_every` steps only
    sum_loss_t = torch.zeros((), dtype=torch.float64, device=p.device)
    correct_t = torch.zeros((), dtype=torch.long, device=p.device)
    seen, step, diverged, n_train = 0, 0, False, len(p.train)
    if p.full_batch:
        p.opt.zero_grad(set_to_none=True)
    for xb, yb in _batches(p.train, p.chunk, not p.full_batch, cfg.seed, epoch, p.augment):
        xb, yb = p.dist.shard(xb, yb)
        if p.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        loss, logits = _step(p, xb, yb, n_train)
        sum_loss_t += loss.detach().double() * len(yb)
        correct_t += (logits.detach().argmax(1) == yb).sum()
        seen += len(yb)
        step += 1
        if step % sync_every == 0:
            running = sum_loss_t.item() / seen
            if exploded(running, p.n_classes) and not p.dist.active:  # ranks agree at the epoch's end instead
                diverged = True
                break
            if not p.full_batch:
                bar.update(task, advance=sync_every, info=f"epoch {epoch + 1}/{cfg.epochs} loss {running:.4f}")
    sums = EpochSums(sum_loss_t.item(), int(correct_t.item()), seen, diverged)
    sums.diverged = sums.diverged or exploded(sums.loss / max(seen, 1), p.n_classes)
    if not p.full_batch:
        bar.update(task, completed=(epoch + 1) * p.steps_per_epoch)
    return sums


def _finish_epoch(p: Plan, epoch: int, sums: EpochSums, bar, task) -> EpochSums:
    """Ranks agree on the sums; full-batch GD takes its one step."""
    if p.dist.active:
        loss, correct, seen = p.dist.sum(sums.loss, sums.correct, sums.seen)
        sums = EpochSums(loss, correct, seen, exploded(loss / max(seen, 1), p.n_classes))
    if p.full_batch and not sums.diverged:
        p.opt.step()
        p.sched.step()
        bar.update(task, advance=1, info=f"epoch {epoch + 1}/{p.cfg.epochs} loss {sums.loss / sums.seen:.4f}")
    return sums


def _history_row(p: Plan, epoch: int, sums: EpochSums, t0: float, train_time: float) -> tuple[dict, str]:
    """The epoch's history row and the status it implies (ok, or diverged)."""
    ok = sums.seen and not sums.diverged
    row = {"epoch": epoch + 1,
           "train_loss": sums.loss / sums.seen if ok else float("nan"),
           "train_acc": sums.correct / sums.seen if ok else float("nan"),
           "val_loss": float("nan"), "val_acc": float("nan"),
           "lr": p.opt.param_groups[-1]["lr"] if p.opt is not None else p.cfg.lr}
    status = "diverged" if sums.diverged else "ok"
    if not sums.diverged and p.val is not None and len(p.val):
        row["val_loss"], row["val_acc"] = evaluate_split(p.trainable, p.val, amp=p.amp)
        if not math.isfinite(row["val_loss"]):
            status = "diverged"
    row["seconds"] = round(time.perf_counter() - t0, 3)
    row["train_img_per_s"] = round(sums.seen / max(train_time, 1e-9), 1)
    return row, status


@dataclass
class EpochEnd:
    """The epoch-end hooks: early stopping (remembering the best weights), the checkpoint + history, and the
    experiment trackers (``--track``)."""

    plan: Plan
    folder: RunFolder
    early: Optional[EarlyStopping]
    history: list[dict] = field(default_factory=list)
    best_state: Optional[dict] = None
    status: str = "ok"
    trackers: object = None  # tracking.Trackers, or None

    def track(self, row: dict) -> None:
        if self.trackers is not None and self.plan.dist.main:
            self.trackers.log_epoch(row)

    def early_stop(self, epoch: int, row: dict) -> None:
        if self.early is None or self.status != "ok":
            return
        value = row[self.plan.cfg.monitor]
        if self.early.better(value):
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.plan.model.state_dict().items()}
        if self.early.update(epoch, value):
            self.status = "stopped_early"

    def save(self, epoch: int) -> None:
        p = self.plan
        if not p.dist.main:
            return
        ckpt.save_state(self.folder.checkpoint, {
            "epoch": epoch, "model": p.model.state_dict(), "history": self.history, "status": self.status,
            "optimizer": p.opt.state_dict() if p.opt is not None else {},
            "scheduler": p.sched.state_dict() if p.sched is not None else {},
            "early": self.early.state_dict() if self.early is not None else None, "best_model": self.best_state,
        })
        self.folder.write_history(self.history)

    def resume(self) -> int:
        """Restore the last checkpoint; returns the first epoch still to run."""
        p, path = self.plan, self.folder.checkpoint
        state = ckpt.load_state(path)
        ckpt.restore_model(p.model, state["model"], path)
        if p.opt is not None:
            p.opt.load_state_dict(state["optimizer"])
            p.sched.load_state_dict(state["scheduler"])
        self.history = list(state["history"])
        self.best_state = state.get("best_model")
        if self.early is not None and state.get("early"):
            self.early.load_state_dict(state["early"])
        self.status = state.get("status", "ok")
        start = int(state["epoch"]) + 1
        console.print(f"resuming {self.folder.path} after epoch {start} of {p.cfg.epochs}", markup=False,
                      highlight=False)
        return start


def fit(cfg: RunConfig, model: nn.Module, data: ImageData, run_dir: Path, resume: bool = False,
        kind: str = "torch", trackers=None) -> FitResult:
    """Train ``model`` (a models.Classifier) on ``data`` as ``cfg`` says, checkpointing every epoch into
    ``run_dir``. ``kind`` is the registry's training kind: ``torch`` (autograd) or ``numpy`` (manual_step).
    ``trackers`` (tracking.Trackers) get each epoch's history row."""
    t_setup = time.perf_counter()
    p = prepare(cfg, model, data, kind)
    early = EarlyStopping(cfg.monitor, cfg.patience) if cfg.early_stopping and p.val is not None else None
    end = EpochEnd(p, RunFolder(run_dir), early, trackers=trackers)
    start_epoch = end.resume() if resume and end.folder.checkpoint.exists() else 0
    t_start = time.perf_counter()
    with progress(disable=cfg.quiet or not p.dist.main) as bar:
        task = bar.add_task("train", total=cfg.epochs * p.steps_per_epoch, info="",
                            completed=start_epoch * p.steps_per_epoch)
        for epoch in range(start_epoch, cfg.epochs):
            if end.status != "ok":
                break
            t0 = time.perf_counter()
            sums = train_one_epoch(p, epoch, bar, task)
            train_time = time.perf_counter() - t0
            sums = _finish_epoch(p, epoch, sums, bar, task)
            row, end.status = _history_row(p, epoch, sums, t0, train_time)
            end.history.append(row)
            end.early_stop(epoch, row)
            end.save(epoch)
            end.track(row)

    p.dist.barrier()
    if early is not None and cfg.restore_best and end.best_state is not None and end.status != "diverged":
        model.load_state_dict(end.best_state)
    if p.trainable is not model:
        model.to(memory_format=torch.contiguous_format)
    best_epoch = early.best_epoch + 1 if early is not None and early.best_epoch >= 0 else len(end.history)
    return FitResult(end.status, end.history, best_epoch, time.perf_counter() - t_start, rank=p.dist.rank,
                     setup_seconds=t_start - t_setup, compute=p.compute)


def _has_conv(m: nn.Module) -> bool:
    return any(isinstance(x, nn.Conv2d) for x in m.modules())
