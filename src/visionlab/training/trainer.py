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
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import RunConfig
from ..data.types import ImageData, Split
from ..progress import console, progress
from . import checkpoint as ckpt
from .distributed import local_device, setup, wrap
from .features import frozen_feature_splits
from .optim import OPTIMIZERS, effective_batch_size, make_scheduler
from .precision import Precision, resolve_precision
from .regularize import EarlyStopping, penalized_weights, penalty

CHECKPOINT = "checkpoint.pt"


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


def _batches(split: Split, batch_size: int, shuffle: bool, seed: int, epoch: int, augment: bool):
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


def write_history(path: Path, history: list[dict]) -> None:
    if history:
        ckpt.write_csv(path, history)


def fit(cfg: RunConfig, model: nn.Module, data: ImageData, run_dir: Path, resume: bool = False) -> FitResult:
    """Train ``model`` on ``data`` as ``cfg`` says, checkpointing every epoch into ``run_dir``."""
    t_setup = time.perf_counter()
    device = resolve_device(local_device(cfg.device))
    d = setup(device)
    model.to(device)
    net = getattr(model, "net", model)
    manual = hasattr(net, "manual_step")
    if manual and d.active:
        from ..errors import ConfigError
        raise ConfigError(f"{cfg.model} trains by hand-written NumPy steps and cannot run under torchrun")

    # What is trained, and on what: the whole model on pixels, or a frozen backbone's head on cached features.
    trainable: nn.Module = model
    train_split, val_split = data.train, data.val
    if getattr(net, "frozen", False) and hasattr(net, "features") and not cfg.augment and cfg.feature_cache:
        train_split, val_split = frozen_feature_splits(cfg, model, data, device)
        trainable = net.head
    augment = cfg.augment and train_split.x.dtype == torch.uint8
    if device.type != "cpu":
        train_split = Split(train_split.x.to(device), train_split.y.to(device))
        val_split = Split(val_split.x.to(device), val_split.y.to(device)) if val_split is not None else None
    channels_last = cfg.channels_last is not False and train_split.x.dim() == 4 and _has_conv(trainable)
    if channels_last:
        trainable.to(memory_format=torch.channels_last)
    precision = Precision(None, cfg.precision, "hand-written NumPy steps") if manual else \
        resolve_precision(cfg.precision, device)
    amp = precision.dtype
    compute = precision.record(device, "channels_last" if channels_last else "contiguous")
    if not cfg.quiet and d.main:
        console.print(f"compute: {compute['precision']} ({precision.reason}), {compute['memory_format']}, "
                      f"{device}" + (f" - {compute['cpu']['model']}" if "cpu" in compute else ""), highlight=False)
    step_model = wrap(trainable, d, device)
    if cfg.compile and not manual:
        step_model = torch.compile(step_model)

    n_train = len(train_split)
    n_classes = data.num_classes
    bs = effective_batch_size(cfg, n_train)
    full_batch = bs >= n_train and OPTIMIZERS.meta(cfg.optimizer)["batch"] == "full"
    chunk = min(bs, 2048) if full_batch else bs  # full-batch GD accumulates gradients over chunks
    steps_per_epoch = 1 if full_batch else math.ceil(n_train / bs)

    params = net.param_groups(cfg.lr) if hasattr(net, "param_groups") and trainable is model else \
        [p for p in trainable.parameters() if p.requires_grad]
    opt = OPTIMIZERS.get(cfg.optimizer)(params, cfg) if not manual else None
    sched = make_scheduler(opt, cfg, steps_per_epoch) if opt is not None else None
    weights = penalized_weights(trainable)
    early = EarlyStopping(cfg.monitor, cfg.patience) if cfg.early_stopping and val_split is not None else None

    history: list[dict] = []
    best_state: Optional[dict] = None
    start_epoch = 0
    status = "ok"
    ck_path = Path(run_dir) / CHECKPOINT
    if resume and ck_path.exists():
        state = ckpt.load_state(ck_path)
        ckpt.restore_model(model, state["model"], ck_path)
        if opt is not None:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
        history = list(state["history"])
        best_state = state.get("best_model")
        if early is not None and state.get("early"):
            early.load_state_dict(state["early"])
        start_epoch = int(state["epoch"]) + 1
        status = state.get("status", "ok")
        console.print(f"resuming {run_dir} after epoch {start_epoch} of {cfg.epochs}")

    sync_every = 1 if device.type == "cpu" else 50  # a GPU must not wait for the host every step
    t_start = time.perf_counter()
    setup_seconds = t_start - t_setup
    done = status != "ok" or start_epoch >= cfg.epochs
    with progress(disable=cfg.quiet or not d.main) as bar:
        task = bar.add_task("train", total=cfg.epochs * steps_per_epoch, info="",
                            completed=start_epoch * steps_per_epoch)
        for epoch in range(start_epoch, cfg.epochs):
            if done:
                break
            t0 = time.perf_counter()
            torch.manual_seed(epoch_seed(cfg.seed, epoch))  # dropout and any other global-RNG use
            trainable.train()
            # running sums stay on the device; reading them (a sync) happens every `sync_every` steps only
            sum_loss_t = torch.zeros((), dtype=torch.float64, device=device)
            correct_t = torch.zeros((), dtype=torch.long, device=device)
            seen, step = 0, 0
            diverged = False
            if full_batch:
                opt.zero_grad(set_to_none=True)
            for xb, yb in _batches(train_split, chunk, not full_batch, cfg.seed, epoch, augment):
                xb, yb = d.shard(xb, yb)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                if manual:
                    loss = torch.tensor(float(net.manual_step(xb, yb, cfg.lr)))
                    with torch.no_grad():
                        logits = model(xb)
                elif full_batch:
                    with autocast(device, amp):
                        logits = step_model(xb)
                    loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
                    share = len(yb) * d.world / n_train  # DDP averages over ranks; undo that for a sum over chunks
                    ((loss + penalty(weights, cfg.l1, cfg.l2)) * share).backward()
                else:
                    with autocast(device, amp):
                        logits = step_model(xb)
                    loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
                    total = loss + penalty(weights, cfg.l1, cfg.l2)
                    opt.zero_grad(set_to_none=True)
                    total.backward()
                    opt.step()
                    sched.step()
                sum_loss_t += loss.detach().double() * len(yb)
                correct_t += (logits.detach().argmax(1) == yb).sum()
                seen += len(yb)
                step += 1
                if step % sync_every == 0:
                    running = sum_loss_t.item() / seen
                    if exploded(running, n_classes) and not d.active:  # ranks agree at the epoch's end instead
                        diverged = True
                        break
                    if not full_batch:
                        bar.update(task, advance=sync_every,
                                   info=f"epoch {epoch + 1}/{cfg.epochs} loss {running:.4f}")
            sum_loss, correct = sum_loss_t.item(), int(correct_t.item())
            diverged = diverged or exploded(sum_loss / max(seen, 1), n_classes)
            if not full_batch:
                bar.update(task, completed=(epoch + 1) * steps_per_epoch)
            train_time = time.perf_counter() - t0
            if d.active:
                sum_loss, correct, seen = d.sum(sum_loss, correct, seen)
                diverged = exploded(sum_loss / max(seen, 1), n_classes)
            if full_batch and not diverged:
                opt.step()
                sched.step()
                bar.update(task, advance=1, info=f"epoch {epoch + 1}/{cfg.epochs} loss {sum_loss / seen:.4f}")
            row = {"epoch": epoch + 1,
                   "train_loss": sum_loss / seen if seen and not diverged else float("nan"),
                   "train_acc": correct / seen if seen and not diverged else float("nan"),
                   "val_loss": float("nan"), "val_acc": float("nan"),
                   "lr": opt.param_groups[-1]["lr"] if opt is not None else cfg.lr}
            if diverged:
                status = "diverged"
            elif val_split is not None and len(val_split):
                row["val_loss"], row["val_acc"] = evaluate_split(trainable, val_split, amp=amp)
                if not math.isfinite(row["val_loss"]):
                    status = "diverged"
            row["seconds"] = round(time.perf_counter() - t0, 3)
            row["train_img_per_s"] = round(seen / max(train_time, 1e-9), 1)
            history.append(row)
            if early is not None and status == "ok":
                value = row[cfg.monitor]
                if early.better(value):
                    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                if early.update(epoch, value):
                    status = "stopped_early"
            if d.main:
                ckpt.save_state(ck_path, {
                    "epoch": epoch, "model": model.state_dict(), "history": history, "status": status,
                    "optimizer": opt.state_dict() if opt is not None else {},
                    "scheduler": sched.state_dict() if sched is not None else {},
                    "early": early.state_dict() if early is not None else None, "best_model": best_state,
                })
                write_history(Path(run_dir) / "history.csv", history)
            if status != "ok":
                break

    d.barrier()
    if early is not None and cfg.restore_best and best_state is not None and status != "diverged":
        model.load_state_dict(best_state)
    if trainable is not model:
        model.to(memory_format=torch.contiguous_format)
    best_epoch = early.best_epoch + 1 if early is not None and early.best_epoch >= 0 else len(history)
    return FitResult(status, history, best_epoch, time.perf_counter() - t_start, rank=d.rank,
                     setup_seconds=setup_seconds, compute=compute)


def _has_conv(m: nn.Module) -> bool:
    return any(isinstance(x, nn.Conv2d) for x in m.modules())
