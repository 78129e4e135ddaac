"""Frozen-backbone feature cache: the backbone runs once over the data, later epochs train only the head."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from ..config import RunConfig
from ..data.types import ImageData, Split
from ..io import cache_root
from ..progress import progress
from . import checkpoint as ckpt


@torch.no_grad()
def extract_features(model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 64,
                     quiet: bool = False, label: str = "features") -> torch.Tensor:
    """Pooled backbone features of uint8 images ``x`` (N x F float32, on the CPU)."""
    net = model.net
    model.eval()
    out = []
    with progress(disable=quiet, transient=True) as bar:
        task = bar.add_task(label, total=len(x), info="")
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device)
            out.append(net.forward_features(model.normalize(xb)).float().cpu())
            bar.update(task, advance=len(xb))
    return torch.cat(out) if out else torch.zeros(0)


def frozen_feature_splits(cfg: RunConfig, model: nn.Module, data: ImageData,
                          device: torch.device) -> tuple[Split, Split | None]:
    """Train and validation features, from the disk cache when the same data and backbone were seen before."""
    weights_id = cfg.weights if cfg.weights in ("imagenet", "none") else hashlib.sha256(
        Path(cfg.weights).read_bytes()).hexdigest()[:16]
    key = hashlib.sha256(f"{data.cache_key}|{cfg.model}|{weights_id}|{data.image_size}|v1".encode()).hexdigest()[:24]
    path = cache_root(cfg.cache_dir) / "features" / f"{key}.safetensors"
    if path.exists():
        t = ckpt.load_weights(path)
    else:
        t = {}
        for name, split in data.splits().items():
            if name == "test":
                continue
            t[name] = extract_features(model, split.x, device, quiet=cfg.quiet, label=f"features {name}")
        ckpt.save_weights(path, t)
    train = Split(t["train"], data.train.y)
    val = Split(t["val"], data.val.y) if "val" in t and data.val is not None else None
    return train, val
