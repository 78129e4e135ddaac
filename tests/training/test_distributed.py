"""DDP through torchrun with the gloo backend on the CPU: gradients are all-reduced, and a 2-process run
matches a 1-process run within float noise."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from visionlab.config import RunConfig
from visionlab.models import build

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def test_gradients_are_all_reduced(tmp_path):
    p = subprocess.run([*TORCHRUN, str(Path(__file__).with_name("ddp_probe.py")), str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    g0, g1 = load_file(str(tmp_path / "grad0.safetensors")), load_file(str(tmp_path / "grad1.safetensors"))
    # what one process computes on the whole batch
    torch.manual_seed(0)
    model = build(RunConfig.build(model="small_cnn"), 3, 32)
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    F.cross_entropy(model(x), torch.arange(16) % 3).backward()
    for n, prm in model.named_parameters():
        assert torch.equal(g0[n], g1[n]), f"ranks disagree on {n}"
        assert torch.allclose(g0[n], prm.grad, atol=1e-6, rtol=1e-4), f"{n} is not the whole-batch gradient"


def _rows(path: Path) -> list[dict]:
    with open(path / "history.csv") as f:
        return list(csv.DictReader(f))


def test_two_process_training_matches_one(tmp_path):
    args = ["train", "--data", "synthetic", "--synthetic-per-class", "48", "--image-size", "32", "--model",
            "small_cnn", "--epochs", "2", "--batch-size", "16", "--optimizer", "momentum", "--lr", "0.02",
            "--precision", "fp32", "--device", "cpu", "--threads", "1", "--quiet"]
    one = tmp_path / "one"
    two = tmp_path / "two"
    p1 = subprocess.run([sys.executable, "-m", "visionlab", *args, "--out", str(one)], capture_output=True, text=True,
                        timeout=300)
    assert p1.returncode == 0, p1.stderr[-2000:]
    p2 = subprocess.run([*TORCHRUN, "-m", "visionlab", *args, "--out", str(two)], capture_output=True, text=True,
                        timeout=300)
    assert p2.returncode == 0, p2.stderr[-3000:]
    h1, h2 = _rows(one), _rows(two)
    assert len(h1) == len(h2) == 2
    for a, b in zip(h1, h2):
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), abs=2e-3)
        assert float(a["val_loss"]) == pytest.approx(float(b["val_loss"]), abs=2e-3)
    w1, w2 = load_file(str(one / "model.safetensors")), load_file(str(two / "model.safetensors"))
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=1e-3), k
