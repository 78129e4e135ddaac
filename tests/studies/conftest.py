"""Tiny study specs on synthetic data: an MLP, one epoch, seconds per trial."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

TINY_BASE = {"data": "synthetic", "synthetic_per_class": 20, "image_size": 32, "model": "mlp", "widths": [32],
             "epochs": 1, "optimizer": "adam", "batch_size": 8}
# Adam at lr 10: the loss explodes within the first epoch and the trainer ends the run as diverged
DIVERGES = {"label": "adam lr 10", "lr": 10.0}


def write_spec(folder: Path, name: str, configs: list[dict], seeds=(0, 1), **extra) -> Path:
    spec = {"name": name, "description": f"test study {name}", "base": dict(TINY_BASE), "configs": configs,
            "seeds": list(seeds), **extra}
    path = Path(folder) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture
def spec_dir(tmp_path) -> Path:
    return tmp_path
