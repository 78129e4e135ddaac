"""Training losses (training/losses.py): each against a hand-computed case, chosen by `--loss` on the CLI and the
API, recorded with the run, and refused in one line by trainers that only minimise cross-entropy."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from visionlab.api import train
from visionlab.config import RunConfig
from visionlab.errors import ConfigError
from visionlab.runs import load_run
from visionlab.training.losses import LOSSES, class_weights, make_loss

SMALL = dict(data="synthetic", synthetic_per_class=30, image_size=32, model="small_cnn", epochs=2,
             batch_size=16, optimizer="adam", lr=0.003, quiet=True, threads=1)


def test_focal_loss_against_a_hand_computed_case():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([0, 2])
    # p_true by hand: e^2 / (e^2 + 2) and 1 / (1 + e + 1)
    p = [math.exp(2) / (math.exp(2) + 2), 1 / (2 + math.e)]
    want = sum((1 - q) ** 2 * -math.log(q) for q in p) / 2
    got = make_loss(RunConfig(loss="focal", focal_gamma=2.0), torch.tensor([5, 5, 5]))(logits, y)
    assert got.item() == pytest.approx(want, rel=1e-6)
    # gamma 0 is plain cross-entropy, label smoothing included
    cfg = RunConfig(loss="focal", focal_gamma=0.0, label_smoothing=0.1)
    assert make_loss(cfg, torch.tensor([5, 5, 5]))(logits, y).item() == pytest.approx(
        F.cross_entropy(logits, y, label_smoothing=0.1).item(), rel=1e-6)
    # an image the network gets right weighs less than under cross-entropy, a wrong one nearly as much
    easy, hard = torch.tensor([[6.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    fl = make_loss(RunConfig(loss="focal"), torch.tensor([1, 1]))
    zero = torch.tensor([0])
    assert fl(easy, zero) / F.cross_entropy(easy, zero) < 1e-4 < 0.9 < fl(hard, zero) / F.cross_entropy(hard, zero)


def test_balanced_weights_against_a_hand_computed_case():
    # 8 images of class 0, 2 of class 1, none of class 2: n / (k * count) over the classes present
    w = class_weights(torch.tensor([8, 2, 0]))
    assert w.tolist() == pytest.approx([10 / (2 * 8), 10 / (2 * 2), 0.0])
    logits, y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.2, 0.1, 0.0]]), torch.tensor([0, 1, 1])
    ce = F.cross_entropy(logits, y, reduction="none")
    want = (0.625 * ce[0] + 2.5 * ce[1] + 2.5 * ce[2]) / (0.625 + 2.5 + 2.5)
    got = make_loss(RunConfig(loss="balanced"), torch.tensor([8, 2, 0]))(logits, y)
    assert got.item() == pytest.approx(want.item(), rel=1e-6)


def test_every_registered_loss_trains_a_run_that_records_it(tmp_path):
    assert LOSSES.names() == ["balanced", "cross_entropy", "focal"]
    runs = {name: train(**SMALL, loss=name, out=str(tmp_path / name)) for name in LOSSES.names()}
    for name, r in runs.items():
        assert r.status == "ok" and all(math.isfinite(h["train_loss"]) for h in r.history)
        assert load_run(r.path).config.loss == name
    # the losses differ, so do the runs; the validation loss stays cross-entropy (one scale for all)
    assert runs["focal"].history[0]["train_loss"] < runs["cross_entropy"].history[0]["train_loss"]
    assert runs["focal"].history[-1]["val_loss"] != runs["cross_entropy"].history[-1]["val_loss"]


def test_the_cli_takes_loss_and_a_wrong_name_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "visionlab", "train", "--data", "synthetic", "--synthetic-per-class",
                        "10", "--image-size", "32", "--model", "small_cnn", "--epochs", "1", "--quiet",
                        "--threads", "1", "--loss", "focl", "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    err = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "unknown loss 'focl' (--loss); choose one of: balanced, cross_entropy, focal" in err[0], p.stderr
    p = subprocess.run([sys.executable, "-m", "visionlab", "train", "--data", "synthetic", "--synthetic-per-class",
                        "10", "--image-size", "32", "--model", "small_cnn", "--epochs", "1", "--quiet",
                        "--threads", "1", "--loss", "focal", "--focal-gamma", "1", "--out", str(tmp_path / "f")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    cfg = load_run(tmp_path / "f").config
    assert (cfg.loss, cfg.focal_gamma) == ("focal", 1.0)


def test_the_numpy_trainer_refuses_another_loss_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="--loss focal: scratch_mlp's hand-written NumPy steps trains with "
                                          "cross-entropy only"):
        train(**{**SMALL, "model": "scratch_mlp", "optimizer": "minibatch_sgd"}, loss="focal",
              out=str(tmp_path / "n"))


def test_keras_refuses_another_loss_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "torch"))  # before keras is first imported
    pytest.importorskip("keras")
    with pytest.raises(ConfigError, match="--loss balanced: --framework keras trains with cross-entropy only"):
        train(**SMALL, framework="keras", loss="balanced", out=str(tmp_path / "k"))
