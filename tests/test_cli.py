"""The CLI end to end, as a user types it: train -> evaluate -> runs -> predict -> compare; bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

VL = [sys.executable, "-m", "visionlab"]
TINY = ["--data", "synthetic", "--synthetic-per-class", "30", "--image-size", "32", "--epochs", "1", "--quiet",
        "--threads", "1"]


def run(*args: str, ok: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run([*VL, *args], capture_output=True, text=True, timeout=600, cwd=cwd)
    if ok:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    run("train", *TINY, "--model", "small_cnn", "--out", str(d / "cnn"))
    run("train", *TINY, "--model", "mlp", "--widths", "32,16", "--optimizer", "adam", "--lr", "0.003",
        "--out", str(d / "mlp"))
    return d


def test_train_prints_result_and_writes_run(two_runs):
    m = json.loads((two_runs / "cnn" / "metrics.json").read_text())
    assert m["status"] == "ok" and m["epochs_run"] == 1
    cfg = (two_runs / "mlp" / "config.yaml").read_text()
    assert "widths:\n- 32\n- 16" in cfg and "optimizer: adam" in cfg


def test_train_names_the_report_only_when_it_wrote_one(tmp_path):
    p = run("train", *TINY, "--model", "small_cnn", "--report", "metrics", "--out", str(tmp_path / "m"))
    assert not (tmp_path / "m" / "report.html").exists()
    assert "report.html" not in p.stdout and f"metrics: {tmp_path / 'm' / 'metrics.json'}" in p.stdout.replace("\n", "")


def test_evaluate_and_runs_table(two_runs, tmp_path):
    p = run("evaluate", str(two_runs / "cnn"), "--out", str(tmp_path / "ev"))
    assert "accuracy" in p.stdout
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert (tmp_path / "ev" / "report.html").is_file()
    # the reloaded model (rebuilt from config.yaml, input statistics included) scores its test split as in training
    trained = json.loads((two_runs / "cnn" / "metrics.json").read_text())["test"]
    assert m["n"] == trained["n"] and m["confusion_matrix"] == trained["confusion_matrix"]
    assert abs(m["loss"] - trained["loss"]) < 1e-3
    assert "input_mean:" in (two_runs / "cnn" / "config.yaml").read_text()
    p = run("runs", str(two_runs))
    assert "small_cnn" in p.stdout and "mlp" in p.stdout


def test_predict_reports_unreadable_and_goes_on(two_runs, tmp_path):
    from PIL import Image

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.new("RGB", (200, 120), (200, 30, 30)).save(imgs / "a.png")
    Image.new("L", (50, 50), 128).save(imgs / "b.jpg")
    (imgs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    p = run("predict", str(two_runs / "cnn"), str(imgs), "--out", str(tmp_path / "pred"))
    assert "2 images predicted" in p.stdout
    assert "broken.jpg" in p.stderr + p.stdout
    res = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    assert len(res["predictions"]) == 2 and len(res["unreadable"]) == 1
    assert all(r["label"] in ("WithMask", "WithoutMask") for r in res["predictions"])
    assert (tmp_path / "pred" / "annotated" / "a.jpg").is_file()


def test_compare_report(two_runs, tmp_path):
    run("compare", str(two_runs / "cnn"), str(two_runs / "mlp"), "--out", str(tmp_path / "cmp"))
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert "small_cnn" in html and "ROC" in html
    for png in ("metrics_bars.png", "roc_overlay.png", "confusion_grid.png"):
        assert (tmp_path / "cmp" / "plots" / png).stat().st_size > 5000


@pytest.mark.parametrize("args, needle", [
    (["train", "--data", "/no/such/folder", "--quiet"], "/no/such/folder"),
    (["train", "--model", "resnet9000", "--quiet"], "unknown model"),
    (["train", "--optimizer", "sgdd", "--quiet"], "unknown optimizer"),
    (["train", "--lr", "-1", "--quiet"], "lr"),
    (["evaluate", "/no/such/run"], "does not exist"),
    (["train", "--input-std", "0.2,0.2", "--quiet"], "--input-std takes three numbers"),
])
def test_bad_input_is_one_clear_line(args, needle):
    p = run(*args, ok=False)
    assert p.returncode == 2
    assert needle in p.stderr
    assert "Traceback" not in p.stderr


def test_help_lists_every_command_and_group():
    p = run("--help")
    for name in ("train", "evaluate", "runs", "demo", "predict", "compare", "detect", "export", "models", "serve",
                 "data", "study", "active"):
        assert f" {name} " in p.stdout, name


@pytest.mark.parametrize("module, args, needle", [
    ("visionlab.studies.cli", ["run", "no_such_study"], "unknown study"),
    ("visionlab.active.cli", ["status", "/no/such/proj"], "not an active-learning project"),
])
def test_sub_app_entry_points_share_the_one_line_errors(module, args, needle):
    p = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.startswith("error: ") and needle in p.stderr and p.stderr.count("\n") == 1
    assert "Traceback" not in p.stderr
