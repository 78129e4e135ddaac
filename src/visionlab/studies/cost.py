"""What a study's trial costs on this machine: measured, where a trial of it has run here, else estimated.

Measured: the median wall time of the finished trials in the study's folders under ``runs/studies`` (the full
study and its ``-quick`` variant apart) whose study.json names this host. Estimated: the training arithmetic of
each arm (3 x the forward FLOPs of one image, counted by ``torch.utils.flop_counter``, x training images x epochs)
at the rate this machine's float32 matrix multiply reaches, times ``EFFICIENCY``; a rough figure, and said to be.
"""
from __future__ import annotations

import json
import platform
import statistics
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from .folder import RESULTS_JSONL, STUDY_FILE, default_out
from .spec import StudySpec

# Share of the float32 matmul rate a training step reaches (convolutions, memory traffic, the optimizer, Python).
# From a cnn_baseline epoch on a 2-core Xeon with AMX (0.19 in bf16). It is rough: small models are bound by
# per-batch overhead and large ones run faster in bf16 (dense_cnn took 55 min a trial on a 2-core Zen 4 where
# this says hours), so the list says "estimate" and a measured trial replaces it.
EFFICIENCY = 0.25
CIFAR_TRAIN = 50_000


@dataclass
class TrialCost:
    """Seconds a trial of one arm takes here, ``measured`` over ``n`` finished trials or estimated."""
    label: str
    seconds: Optional[float]
    measured: bool
    n: int = 0


def measured(spec: StudySpec, quick: bool, root: Optional[Path] = None) -> dict[str, TrialCost]:
    """Label -> median wall time of the finished trials of ``spec`` run on this host (``quick`` or full)."""
    folder = default_out(spec, quick)
    if root is not None:
        folder = Path(root) / folder.name
    info_path, results = folder / STUDY_FILE, folder / RESULTS_JSONL
    if not info_path.is_file() or not results.is_file():
        return {}
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError):
        return {}
    if not any(s.get("host") == platform.node() for s in info.get("sessions", [])):
        return {}  # another machine's times say little about this one
    secs: dict[str, list[float]] = {}
    for line in results.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        wall = r.get("wall_seconds") if isinstance(r, dict) else None
        if isinstance(wall, (int, float)) and r.get("status") != "failed":
            secs.setdefault(r["label"], []).append(float(wall))
    return {k: TrialCost(k, statistics.median(v), True, len(v)) for k, v in secs.items()}


@lru_cache(maxsize=1)
def matmul_flops_per_second() -> float:
    """This machine's float32 matrix-multiply rate (FLOP/s), best of a few 512 x 512 products."""
    import torch

    a, b = torch.randn(512, 512), torch.randn(512, 512)
    a @ b
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        best = min(best, (time.perf_counter() - t) / 4)
    return 2 * 512 ** 3 / best


def train_images(fields: dict[str, Any]) -> Optional[int]:
    """Training images a trial sees per epoch, for CIFAR-10 and synthetic data (None for a folder)."""
    from ..config import RunConfig

    cfg = RunConfig.build(fields)
    data = str(cfg.data)
    if data == "cifar10":
        n = CIFAR_TRAIN if cfg.limit_per_class is None else min(CIFAR_TRAIN, 10 * cfg.limit_per_class)
        return int(n * (1 - cfg.val_split))
    if data == "synthetic":
        return int(2 * cfg.synthetic_per_class * (1 - cfg.val_split - cfg.test_split))
    return None


MODEL_KEYS = ("model", "widths", "image_size", "data", "activation", "batchnorm", "mode", "framework")


def forward_flops(fields: dict[str, Any], classes: int = 10) -> float:
    """FLOPs of one image's forward pass through the arm's model."""
    return _forward_flops(json.dumps({k: fields.get(k) for k in MODEL_KEYS}, sort_keys=True, default=str), classes)


@lru_cache(maxsize=None)
def _forward_flops(key: str, classes: int) -> float:
    """``forward_flops`` for the model fields in ``key`` (JSON), counted once per distinct model."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .. import models
    from ..config import RunConfig
    from ..resolve import resolve

    fields = {k: v for k, v in json.loads(key).items() if v is not None}
    cfg = resolve(RunConfig.build(fields, quiet=True, weights="none"), announce=False)
    size = cfg.image_size or 32
    model = models.build(cfg, classes, size).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size, dtype=torch.uint8))
    return float(counter.get_total_flops())


def estimated(fields: dict[str, Any]) -> Optional[float]:
    """Estimated seconds of one trial with ``fields`` here (None where the data's size is unknown)."""
    from ..config import RunConfig
    from ..resolve import resolve

    n = train_images(fields)
    if n is None:
        return None
    cfg = resolve(RunConfig.build(fields, quiet=True), announce=False)
    flops = 3 * forward_flops(fields) * n * cfg.epochs
    return flops / (matmul_flops_per_second() * EFFICIENCY)


def trial_costs(spec: StudySpec, quick: bool = False, root: Optional[Path] = None) -> list[TrialCost]:
    """One cost per arm of ``spec``: measured here where a trial of that arm has finished, else estimated."""
    have = measured(spec, quick, root)
    seed = spec.resolved_seeds(quick)[0]
    out = []
    for t in spec.trials(quick=quick, seeds=[seed]):
        out.append(have.get(t.label) or TrialCost(t.label, estimated(t.config), False))
    return out


def duration(seconds: Optional[float]) -> str:
    """A duration to two significant units: 45 s, 12 min, 3.2 h."""
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe(costs: list[TrialCost], trials_per_arm: int) -> tuple[str, str]:
    """(a trial, the whole study on one worker) as the table shows them, e.g. ('2-55 min, measured', '8.4 h')."""
    known = [c.seconds for c in costs if c.seconds is not None]
    if not known:
        return "? (data of unknown size)", "?"
    lo, hi = min(known), max(known)
    span = duration(lo) if duration(lo) == duration(hi) else f"{duration(lo)} - {duration(hi)}"
    n_measured = sum(c.measured for c in costs)
    how = ("measured here" if n_measured == len(costs) else
           "estimate from model size" if n_measured == 0 else f"{n_measured}/{len(costs)} arms measured here, "
                                                               f"rest estimated")
    total = sum(known) * trials_per_arm
    return f"{span} ({how})", ("~" if n_measured < len(costs) else "") + duration(total)
