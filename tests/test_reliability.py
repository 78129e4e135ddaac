"""Issue 14 items 9, 10, 11: user mistakes with run folders and configs give one clear line, never a
traceback; --resume says what it does; evaluate on a new folder uses every image. Issue 28 items 1, 3, 4, 9 for
predict, evaluate, compare, export and train: an existing output folder never loses a file, non-UTF-8 names,
--out that is a file or read-only, FIFOs and devices listed. Real CLI processes."""
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

from conftest import mounted  # tests/conftest.py (rootdir conftest, on sys.path)

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


# --- issue 28 ----------------------------------------------------------------------------------------------
def images(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (12, 12), (40 * i, 200, 30)).save(folder / f"{i}.png")
    return folder


def keep(folder: Path) -> dict[str, bytes]:
    """A user's folder with files whose names visionlab writes; returns its content to compare with later."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("predictions.csv", "predictions.json", "metrics.json", "report.html", "comparison.csv", "0.jpg"):
        (folder / name).write_text(f"precious {name}\n")
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def top_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_predict_evaluate_compare_never_replace_a_users_files(run, tmp_path):
    """Item 1: each wrote into an existing --out over files of the same names."""
    src = images(tmp_path / "in")
    for cmd in (["predict", str(run), str(src)], ["evaluate", str(run)], ["compare", str(run), str(run)]):
        out = tmp_path / cmd[0]
        before = keep(out)
        p = vl(*cmd, "--out", str(out))
        clear(p, "already holds files: this run writes into", rc=0)
        assert top_files(out) == before, cmd  # before: predictions.csv, metrics.json, report.html replaced
        sub = [d for d in out.iterdir() if d.is_dir()]
        assert len(sub) == 1 and sub[0].name.startswith(f"{cmd[0]}-") and str(sub[0]) in p.stdout + p.stderr
    pred = next(d for d in (tmp_path / "predict").iterdir() if d.is_dir())
    assert len(json.loads((pred / "predictions.json").read_text())["predictions"]) == 3


def test_evaluate_twice_keeps_the_first_report(run, tmp_path):
    r = copy_run(run, tmp_path / "r")
    clear(vl("evaluate", str(r)), rc=0)
    first = top_files(r / "eval")
    p = vl("evaluate", str(r))
    clear(p, "writes into", rc=0)
    assert top_files(r / "eval") == first
    sub = next(d for d in (r / "eval").iterdir() if d.is_dir() and d.name.startswith("evaluate-"))
    assert f"report: {sub / 'report.html'}" in p.stdout.replace("\n", "")


def test_export_never_replaces_a_users_file(run, tmp_path):
    r = copy_run(run, tmp_path / "r")
    mine = tmp_path / "mine.onnx"
    mine.write_text("precious\n")
    clear(vl("export", str(r), "--out", str(mine)), "already exists")  # before: replaced it
    assert mine.read_text() == "precious\n"
    clear(vl("export", str(r)), rc=0)
    clear(vl("export", str(r)), rc=0)  # the run's own model.onnx is re-exported in place


def test_predict_and_train_with_a_non_utf8_file_name(tmp_path):
    """Item 3: UnicodeEncodeError tracebacks from data/cache.py (train) and write_csv (predict)."""
    data = tmp_path / "data"
    rng = np.random.default_rng(1)
    for c in ("a", "b"):
        (data / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(data / c / f"{i}.png")
    odd = os.fsdecode(bytes(data) + b"/a/x\xffy.png")
    shutil.copy(data / "a" / "0.png", odd)
    out = tmp_path / "r"
    clear(vl("train", "--data", str(data), "--epochs", "1", *SMALL, "--out", str(out)), rc=0)
    p = vl("predict", str(out), str(data / "a"), "--out", str(tmp_path / "pred"))
    clear(p, "11 images predicted", rc=0)
    csv = (tmp_path / "pred" / "predictions.csv").read_text(encoding="utf-8")  # still UTF-8 text
    assert "x\\xffy.png" in csv
    rows = json.loads((tmp_path / "pred" / "predictions.json").read_text())["predictions"]
    assert any(os.fsencode(r["path"]).endswith(b"/x\xffy.png") for r in rows)  # JSON keeps the exact name
    assert os.path.exists(os.fsdecode(bytes(tmp_path) + b"/pred/annotated/x\xffy.jpg"))


def test_out_that_is_a_file_or_read_only_is_one_line(run, tmp_path):
    """Item 4: FileExistsError, NotADirectoryError, OSError [Errno 30] tracebacks from predict and train."""
    src = images(tmp_path / "in", 1)
    f = tmp_path / "afile"
    f.write_text("precious\n")
    for out in (f, f / "sub"):
        clear(vl("predict", str(run), str(src), "--out", str(out)), "is a file, not a folder")
        clear(vl("train", "--data", "synthetic", "--synthetic-per-class", "4", *SMALL, "--epochs", "1", "--out",
                 str(out)), "is a file, not a folder")
    assert f.read_text() == "precious\n"
    with mounted(tmp_path / "ro", readonly=True) as ro:
        clear(vl("predict", str(run), str(src), "--out", str(ro / "p")), "read-only file system")
        clear(vl("train", "--data", "synthetic", "--synthetic-per-class", "4", *SMALL, "--epochs", "1", "--out",
                 str(ro / "r")), "read-only file system")


def test_predict_lists_fifos_and_devices(run, tmp_path):
    """Item 9: left out without a word."""
    src = images(tmp_path / "in", 2)
    os.mkfifo(src / "pipe.jpg")
    os.symlink("/dev/null", src / "null.png")
    p = vl("predict", str(run), str(src), "--out", str(tmp_path / "out"))
    clear(p, "pipe.jpg: is a FIFO, not a regular file", "null.png: is a device, not a regular file", rc=0)
    skipped = json.loads((tmp_path / "out" / "predictions.json").read_text())["unreadable"]
    assert sorted(Path(s["path"]).name for s in skipped) == ["null.png", "pipe.jpg"]
