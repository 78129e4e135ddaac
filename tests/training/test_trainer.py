"""The training engine: reproducibility, resume after kill -9, divergence, optimizers, regularisers."""
from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import visionlab
from visionlab.api import train
from visionlab.config import RunConfig
from visionlab.training.optim import OPTIMIZERS, effective_batch_size

SMALL = dict(data="synthetic", synthetic_per_class=40, image_size=32, model="small_cnn", epochs=2,
             batch_size=16, optimizer="adam", lr=0.003, quiet=True, threads=1)


def _hist(path: Path) -> list[dict]:
    with open(path / "history.csv") as f:
        return [{k: v for k, v in r.items() if k not in ("seconds", "train_img_per_s")} for r in csv.DictReader(f)]


def test_same_seed_gives_identical_history(tmp_path):
    a = train(**SMALL, out=str(tmp_path / "a"), dropout=0.3)
    b = train(**SMALL, out=str(tmp_path / "b"), dropout=0.3)
    assert a.status == "ok" and len(a.history) == 2
    assert _hist(a.path) == _hist(b.path)
    c = train(**{**SMALL, "seed": 1}, out=str(tmp_path / "c"), dropout=0.3)
    assert _hist(c.path) != _hist(a.path)


def test_run_folder_contents(tmp_path):
    r = train(**SMALL, out=str(tmp_path / "run"))
    for f in ("config.yaml", "history.csv", "metrics.json", "model.safetensors", "skipped.txt", "model.json",
              "report.html", "plots/learning_curves.png", "plots/confusion_matrix.png"):
        assert (r.path / f).is_file(), f
    m = json.loads((r.path / "metrics.json").read_text())
    assert m["status"] == "ok" and 0.0 <= m["test_acc"] <= 1.0
    assert not (r.path / "checkpoint.pt").exists()
    from visionlab.runs import load_run
    loaded = load_run(r.path)
    assert loaded.classes == ["WithMask", "WithoutMask"]
    probs = loaded.predict_proba(torch.zeros(3, 3, 32, 32, dtype=torch.uint8))
    assert probs.shape == (3, 2) and abs(probs.sum(1) - 1).max() < 1e-5


def test_adam_lr_10_diverges_cleanly(tmp_path):
    out = tmp_path / "div"
    p = subprocess.run([sys.executable, "-m", "visionlab", "train", "--data", "synthetic", "--synthetic-per-class",
                        "40", "--image-size", "32", "--model", "ann_baseline", "--optimizer", "adam", "--lr", "10",
                        "--epochs", "5", "--quiet", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    assert "diverged" in p.stdout + p.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "diverged"
    hist = _hist(out)
    assert 1 <= len(hist) < 5  # ended early, history kept
    assert math.isnan(float(hist[-1]["train_loss"])) or math.isnan(float(hist[-1]["val_loss"]))


def test_kill_9_then_resume_equals_uninterrupted(tmp_path):
    args = ["--data", "synthetic", "--synthetic-per-class", "150", "--image-size", "48", "--model", "small_cnn",
            "--epochs", "5", "--batch-size", "8", "--optimizer", "momentum", "--lr", "0.01", "--dropout", "0.2",
            "--quiet", "--threads", "1"]
    cmd = [sys.executable, "-m", "visionlab", "train", *args]
    ref = tmp_path / "ref"
    subprocess.run([*cmd, "--out", str(ref)], check=True, capture_output=True, timeout=600)

    run = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--out", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill during epoch 3: once epoch 2's history is on disk
        h = run / "history.csv"
        if h.exists() and len(h.read_text().strip().splitlines()) >= 3:
            break
        time.sleep(0.01)
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "model.safetensors").exists(), "the run finished before it could be killed"
    done = len(_hist(run))
    assert 2 <= done < 5
    p = subprocess.run([sys.executable, "-m", "visionlab", "train", "--resume", "--out", str(run), "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert _hist(run) == _hist(ref)
    from safetensors.torch import load_file
    wa, wb = load_file(str(run / "model.safetensors")), load_file(str(ref / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_optimizer_registry_and_batch_semantics():
    assert {"gd", "sgd", "minibatch_sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad",
            "nadam"} <= set(OPTIMIZERS.names())
    p = [torch.nn.Parameter(torch.zeros(3))]
    for name in OPTIMIZERS.names():
        cfg = RunConfig.build(optimizer=name, lr=0.1, batch_size=32)
        assert isinstance(OPTIMIZERS.get(name)(p, cfg), torch.optim.Optimizer)
    assert effective_batch_size(RunConfig.build(optimizer="gd"), 1000) == 1000
    assert effective_batch_size(RunConfig.build(optimizer="sgd"), 1000) == 1
    assert effective_batch_size(RunConfig.build(optimizer="adam", batch_size=32), 1000) == 32


def test_full_batch_gd_takes_one_step_per_epoch(tmp_path):
    r = train(**{**SMALL, "model": "ann_baseline", "optimizer": "gd", "lr": 0.01, "epochs": 3}, out=str(tmp_path / "gd"))
    assert r.status == "ok" and len(r.history) == 3
    losses = [h["train_loss"] for h in r.history]
    assert losses[2] < losses[0]  # gradient descent lowers the full-batch loss


def test_early_stopping_restores_best(tmp_path):
    r = train(**{**SMALL, "epochs": 30, "early_stopping": True, "patience": 2, "monitor": "val_loss",
                 "lr": 0.01}, out=str(tmp_path / "es"))
    assert r.status in ("stopped_early", "ok")
    if r.status == "stopped_early":
        assert len(r.history) < 30
        best = min(h["val_loss"] for h in r.history)
        assert r.metrics["val_loss"] == pytest.approx(best)


def test_l2_penalty_shrinks_weights(tmp_path):
    base = {**SMALL, "model": "ann_baseline", "optimizer": "minibatch_sgd", "lr": 0.05, "epochs": 2}
    from safetensors.torch import load_file
    a = train(**base, out=str(tmp_path / "a"))
    b = train(**base, l2=0.01, out=str(tmp_path / "b"))
    norm = lambda p: sum(v.pow(2).sum().item() for k, v in load_file(str(p / "model.safetensors")).items()
                         if k.endswith("weight"))  # noqa: E731
    assert norm(b.path) < norm(a.path)


def test_existing_run_folder_is_not_overwritten(tmp_path):
    train(**{**SMALL, "epochs": 1}, out=str(tmp_path / "x"))
    with pytest.raises(visionlab.ConfigError, match="already holds a run"):
        train(**{**SMALL, "epochs": 1}, out=str(tmp_path / "x"))
