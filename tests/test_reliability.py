"""Issue 14 items 9, 10, 11: user mistakes with run folders and configs give one clear line, never a
traceback; --resume says what it does; evaluate on a new folder uses every image. Real CLI processes."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

SMALL = ["--model", "mlp", "--widths", "8", "--image-size", "8", "--report", "metrics", "--quiet"]


def vl(*args: str, cwd: Path | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visionlab", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=dict(os.environ, COLUMNS="250"))


def clear(p: subprocess.CompletedProcess, *says: str, rc: int | None = 2) -> None:
    text = p.stdout + p.stderr
    assert "Traceback" not in text, text
    if rc is not None:
        assert p.returncode == rc, text
    for s in says:
        assert s in text, text


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rel-run") / "runs" / "r1"
    p = vl("train", "--data", "synthetic", "--synthetic-per-class", "20", "--epochs", "1", *SMALL, "--out", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    return out


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


@pytest.mark.parametrize("text, says", [(b"model: [mlp\nlr: 0.1\n", "not valid YAML at line"),
                                        (b"- model\n- lr\n", "holds a YAML list"),
                                        (b"\x89PNG\r\n\x1a\n\x00\x00\xff", "not a text file"),
                                        (b"lr: fast\n", "lr:")])
def test_a_broken_config_file_is_a_config_error(tmp_path, text, says):
    from visionlab.config import RunConfig
    from visionlab.errors import ConfigError

    f = tmp_path / "config.yaml"
    f.write_bytes(text)
    with pytest.raises(ConfigError, match=re.escape(says)):  # the CLI prints a ConfigError as one line
        RunConfig.load(f)


def test_a_broken_config_file_is_one_line(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_bytes(b"model: [mlp\nlr: 0.1\n")
    clear(vl("train", "--config", str(f), "--out", str(tmp_path / "r")), "not valid YAML at line 2, column 3")


def test_corrupt_model_json_is_one_line(run, tmp_path):
    from visionlab.errors import ModelError
    from visionlab.runs import load_run

    r = copy_run(run, tmp_path / "r")
    (r / "model.json").write_text('{"model": "mlp", "classes": ')
    clear(vl("evaluate", str(r)), "model.json is corrupt")
    (r / "model.json").write_text('{"model": "mlp"}')
    with pytest.raises(ModelError, match="lacks its classes"):
        load_run(r)


def test_runs_skips_a_corrupt_run_with_a_warning(run, tmp_path):
    root = tmp_path / "runs"
    copy_run(run, root / "good")
    bad = copy_run(run, root / "bad-metrics")
    (bad / "metrics.json").write_bytes(b"\x00garbage{")
    worse = copy_run(run, root / "bad-config")
    (worse / "config.yaml").write_text("epochs: [\n")
    p = vl("runs", str(root))
    clear(p, "skipped run", "bad-metrics", "bad-config", "metrics.json is corrupt", rc=0)
    assert "good" in p.stdout


def test_resume_with_a_truncated_or_foreign_checkpoint_is_one_line(run, tmp_path):
    r = copy_run(run, tmp_path / "r")
    good = torch.nn.Linear(3, 2).state_dict()
    torch.save({"model": good, "epoch": 0, "history": []}, r / "checkpoint.pt")
    data = (r / "checkpoint.pt").read_bytes()
    (r / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    clear(vl("train", "--resume", "--out", str(r)), "is not a readable checkpoint", "truncated")
    torch.save({"model": good, "epoch": 0, "history": []}, r / "checkpoint.pt")  # another model's weights
    clear(vl("train", "--resume", "--out", str(r)), "holds the weights of another model")


def test_resume_says_what_it_does_with_other_options(run, tmp_path):
    r = copy_run(run, tmp_path / "r")
    before = (r / "model.safetensors").read_bytes()
    # before: a finished run was silently trained again from scratch, --model and --epochs ignored
    p = vl("train", "--resume", "--out", str(r), "--model", "cnn_baseline", "--epochs", "3")
    clear(p, "ignoring --epochs 3 (the run has 1), --model cnn_baseline (the run has mlp)", "is a finished run")
    assert (r / "model.safetensors").read_bytes() == before


def test_evaluate_on_a_new_folder_uses_every_image(run, tmp_path):
    data = tmp_path / "new"
    rng = np.random.default_rng(0)
    n = {"WithMask": 23, "WithoutMask": 17}
    for c, k in n.items():
        (data / c).mkdir(parents=True)
        for i in range(k):
            Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(data / c / f"{i}.png")
    classes = json.loads((run / "model.json").read_text())["classes"]
    if sorted(classes) != sorted(n):
        pytest.skip(f"the synthetic run's classes are {classes}")
    p = vl("evaluate", str(run), "--data", str(data), "--out", str(tmp_path / "ev"))
    clear(p, "all 40 images", "(40 images)", rc=0)  # before: a 15% "test split" of it (6 images)
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["n"] == 40


def test_predict_out_with_a_254_character_file_name(run, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    long = src / ("p" * 250 + ".png")
    Image.new("RGB", (10, 10), (200, 30, 30)).save(long)
    p = vl("predict", str(run), str(src), "--out", str(tmp_path / "out"))
    clear(p, rc=0)
    ann = list((tmp_path / "out" / "annotated").iterdir())
    assert len(ann) == 1 and not ann[0].name.startswith(".")
