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
    for col in ("setup s", "train s", "eval s", "total s"):
        assert col in p.stdout, col
    assert "0.0030" in p.stdout  # the mlp's lr


def test_runs_prints_a_small_lr_in_general_format(tmp_path):
    run("train", *TINY, "--model", "mlp", "--widths", "8", "--report", "metrics", "--optimizer", "adam", "--lr", "3e-5",
        "--out", str(tmp_path / "runs" / "tiny"))
    p = run("runs", str(tmp_path / "runs"))
    assert "3e-05" in p.stdout and "0.0000" not in p.stdout


def test_evaluate_other_splits_and_flip_tta(two_runs, tmp_path):
    p = run("evaluate", str(two_runs / "cnn"), "--split", "val", "--out", str(tmp_path / "val"))
    assert p.stdout.startswith("val: accuracy") and "precision (WithMask)" in p.stdout
    val = json.loads((tmp_path / "val" / "metrics.json").read_text())
    train = json.loads((two_runs / "cnn" / "metrics.json").read_text())
    assert val["n"] == train["images"]["val"] and "threshold" not in val  # not chosen on the data it scores
    run("evaluate", str(two_runs / "cnn"), "--split", "train", "--tta", "--out", str(tmp_path / "tr"))
    tr = json.loads((tmp_path / "tr" / "metrics.json").read_text())
    assert tr["n"] == train["images"]["train"] and tr["tta"] is True
    assert "flip TTA" in (tmp_path / "tr" / "report.html").read_text()
    p = run("evaluate", str(two_runs / "cnn"), "--split", "dev", ok=False)
    assert p.returncode == 2 and "dev" in p.stderr and "train" in p.stderr  # the choices are named


def test_report_numbers_have_sensible_precision(two_runs):
    import re

    html = (two_runs / "cnn" / "report.html").read_text()
    assert re.search(r"<td>ms per image \(CPU\)</td><td>\d+\.\d</td>", html)
    assert "<td>precision (WithMask)</td>" in html and "<td>recall (WithMask)</td>" in html
    assert re.search(r"<td>threshold on P\(WithMask\) \(chosen on validation, max F1\)</td>", html)


def test_predict_reports_unreadable_and_goes_on(two_runs, tmp_path):
    from PIL import Image

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.new("RGB", (200, 120), (200, 30, 30)).save(imgs / "a.png")
    Image.new("L", (50, 50), 128).save(imgs / "b.jpg")
    (imgs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    p = run("predict", str(two_runs / "cnn"), str(imgs), "--out", str(tmp_path / "pred"))
    assert "2 images predicted" in p.stdout
    assert f"{imgs / 'broken.jpg'}: truncated image file" in p.stderr  # whole, on one line
    res = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    assert len(res["predictions"]) == 2 and len(res["unreadable"]) == 1
    assert all(r["label"] in ("WithMask", "WithoutMask") for r in res["predictions"])
    assert (tmp_path / "pred" / "annotated" / "a.jpg").is_file()


def test_an_unreadable_files_long_name_with_brackets_is_printed_whole_on_one_line(two_runs, tmp_path):
    from PIL import Image

    imgs = tmp_path / ("a folder whose name is long enough to pass eighty columns " * 2)
    imgs.mkdir()
    Image.new("RGB", (64, 64), (20, 90, 200)).save(imgs / "good.png")
    bad = imgs / "[red]photo[bold] 1.jpg"  # rich markup in a name must stay text
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    p = run("predict", str(two_runs / "cnn"), str(imgs), "--out", str(tmp_path / "pred"))
    assert "1 image" in p.stdout
    assert any(line.endswith(f"{bad}: truncated image file (Truncated File Read); copy it again or delete it")
               for line in p.stderr.splitlines()), p.stderr


def test_predict_applies_the_validation_threshold_and_says_so(two_runs, tmp_path):
    from PIL import Image

    test = json.loads((two_runs / "cnn" / "metrics.json").read_text())["test"]
    t, pos = test["threshold"], test["positive_class"]
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(12):
        Image.new("RGB", (40, 40), (20 * i, 255 - 20 * i, 90)).save(imgs / f"{i}.png")
    p = run("predict", str(two_runs / "cnn"), str(imgs), "--out", str(tmp_path / "pred"), "--no-annotate",
            "--backend", "torch")
    assert f"P({pos}) >= {t:.3f}, the threshold chosen on the run's validation split" in p.stdout.replace("\n", "")
    res = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    assert res["threshold"] == pytest.approx(t)
    for r in res["predictions"]:
        assert (r["label"] == pos) == (r[f"p_{pos}"] >= t)
    p = run("predict", str(two_runs / "cnn"), str(imgs), "--out", str(tmp_path / "arg"), "--no-annotate",
            "--backend", "torch", "--threshold", "argmax", "--tta")
    res = json.loads((tmp_path / "arg" / "predictions.json").read_text())
    assert res["threshold"] is None and res["tta"] is True and "labels: the top class; flip TTA" in p.stdout
    for r in res["predictions"]:
        assert r["label"] == max(res["classes"], key=lambda c: r[f"p_{c}"])


def test_predict_says_when_it_writes_model_onnx_into_the_run(two_runs, tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 40), (200, 30, 30)).save(tmp_path / "a.png")
    onnx = two_runs / "mlp" / "model.onnx"
    onnx.unlink(missing_ok=True)
    p = run("predict", str(two_runs / "mlp"), str(tmp_path / "a.png"), "--out", str(tmp_path / "p1"))
    assert onnx.is_file() and f"wrote {onnx}" in p.stderr.replace("\n", "")
    p = run("predict", str(two_runs / "mlp"), str(tmp_path / "a.png"), "--out", str(tmp_path / "p2"))
    assert "wrote" not in p.stderr  # up to date: nothing written, nothing said


def test_compare_report(two_runs, tmp_path):
    run("compare", str(two_runs / "cnn"), str(two_runs / "mlp"), "--out", str(tmp_path / "cmp"))
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert "small_cnn" in html and "ROC" in html
    for col in ("setup s", "train s", "eval s", "total s"):
        assert f"<th>{col}</th>" in html, col
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    for r in rows:  # the phases add up to the total (each rounded to 0.1)
        assert abs(r["setup s"] + r["train s"] + r["eval s"] - r["total s"]) <= 0.2
    for png in ("metrics_bars.png", "roc_overlay.png", "confusion_grid.png"):
        assert (tmp_path / "cmp" / "plots" / png).stat().st_size > 5000


@pytest.mark.parametrize("args, needle", [
    (["train", "--data", "/no/such/folder", "--quiet"], "/no/such/folder"),
    (["train", "--model", "resnet9000", "--quiet"], "unknown model"),
    (["train", "--optimizer", "sgdd", "--quiet"], "unknown optimizer"),
    (["train", "--lr", "-1", "--quiet"], "lr"),
    (["evaluate", "/no/such/run"], "does not exist"),
    (["train", "--input-std", "0.2,0.2", "--quiet"], "--input-std takes three numbers"),
    (["train", "--model", "mlp", "--quiet"], "no --data given: pass an image folder"),
    (["train", "--mode", "frozn", "--quiet"], "frozen"),
])
def test_bad_input_is_one_clear_line(args, needle):
    p = run(*args, ok=False)
    assert p.returncode == 2
    assert needle in p.stderr
    assert "Traceback" not in p.stderr


def test_train_help_lists_choices_and_real_defaults():
    p = subprocess.run([*VL, "train", "--help"], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "COLUMNS": "200"})
    assert "(default: None)" not in p.stdout and "[default: None]" not in p.stdout
    for choices in ("frozen|finetune|full", "constant|step|cosine|onecycle", "val_loss|val_acc", "auto|fp32|bf16"):
        assert choices in p.stdout, choices
    for default in ("[default: 0.01]", "[default: 64]", "[default: cnn_baseline]", "[default: frozen]"):
        assert default in p.stdout, default
    data_line = next(l for l in p.stdout.splitlines() if "--data " in l)
    assert "default" not in data_line


def test_help_lists_every_command_and_group():
    p = run("--help")
    for name in ("train", "evaluate", "runs", "demo", "predict", "compare", "detect", "export", "models", "serve",
                 "data", "study", "active"):
        assert f" {name} " in p.stdout, name


@pytest.mark.parametrize("group", [[], ["data"], ["active"], ["study"]])
def test_command_lists_wrap_only_where_the_next_word_does_not_fit(group):
    """A command's description in `--help` wraps where the terminal ends, never where the docstring's source line
    ended: each line but a command's last is filled until its next word would not fit (80 columns)."""
    p = subprocess.run([*VL, *group, "--help"], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "COLUMNS": "80"})
    lines = p.stdout.splitlines()
    top = next(i for i, ln in enumerate(lines) if "Commands" in ln and ln.lstrip().startswith("╭"))
    rows = [ln for ln in lines[top + 1:] if ln.startswith("│")]
    name_w = len(rows[0]) - len(rows[0][1:].lstrip()) + len(rows[0][1:].lstrip().split("  ")[0])  # "│ name"
    col = next(i for i in range(name_w, len(rows[0])) if rows[0][i] != " ")  # where the descriptions start
    text = [(ln[1:col].strip(), ln[col:-1].rstrip()) for ln in rows]
    assert len(text) >= 3
    for (name, here), (next_name, after) in zip(text, text[1:]):
        if next_name or not after:  # the command's last line
            continue
        room = len(rows[0]) - 2 - col - len(here)  # columns left on this line, inside the panel's right edge
        assert len(after.split()[0]) + 1 > room, (here, after)
    assert {n for n, _ in text if n} >= ({"train", "detect", "active"} if not group else set())


@pytest.mark.parametrize("module, args, needle", [
    ("visionlab.studies.cli", ["run", "no_such_study"], "unknown study"),
    ("visionlab.active.cli", ["status", "/no/such/proj"], "not an active-learning project"),
])
def test_sub_app_entry_points_share_the_one_line_errors(module, args, needle):
    p = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.startswith("error: ") and needle in p.stderr and p.stderr.count("\n") == 1
    assert "Traceback" not in p.stderr
