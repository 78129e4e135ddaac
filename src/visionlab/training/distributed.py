"""Data-parallel training through PyTorch DDP, launched by torchrun (never a home-made cluster).

``torchrun --nproc-per-node N -m visionlab train ...`` sets RANK/WORLD_SIZE; every rank loads the same data,
walks the same global batch order and trains on its strided share of each batch, so the averaged gradient
is the gradient of the whole batch and the run matches one process up to reduction order. Only rank 0
writes files.
"""
from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.active:
            return x, y
        return x[self.rank::self.world], y[self.rank::self.world]

    def sum(self, *values: float) -> list[float]:
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def setup(device: torch.device) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        # PyTorch asks for destroy_process_group before exit: left to the interpreter's teardown, a gloo group's
        # threads can be destroyed while still joinable ("terminate called without an active exception", SIGABRT
        # on one rank; seen once in 2 processes on a loaded 2-core machine after a finished step)
        atexit.register(teardown)
    return Dist(dist.get_rank(), dist.get_world_size())


def teardown() -> None:
    """Destroy the process group this process joined (nothing when there is none), once every rank is here: a
    rank that destroyed its group while a peer still used the connection aborted that peer (SIGABRT, "terminate
    called without an active exception"; seen again with the atexit destroy alone, under load)."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()  # a peer that died already makes this fail fast (torchrun ends the run then anyway)
        except RuntimeError:
            pass
        dist.destroy_process_group()


def wrap(model: nn.Module, d: Dist, device: torch.device) -> nn.Module:
    if not d.active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def local_device(name: str) -> str:
    """With several ranks on one GPU machine each rank takes its own GPU."""
    if name in ("auto", "cuda") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    return name
