"""Progress where nobody watches a terminal: plain lines at a task's start, every few seconds and at its end;
nothing with --quiet. End to end: a training run with stderr sent to a file says where each phase is."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from visionlab.progress import LineProgress, Steps, progress

LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] ")


def test_a_stream_that_is_not_a_terminal_gets_a_line_at_start_on_news_and_at_the_end(capsys):
    bar = progress()
    assert isinstance(bar, LineProgress)  # pytest's captured stderr is no terminal
    bar.every = 0  # a line for every update that brings news (the default: at most one per 10 s)
    with bar:
        task = bar.add_task("decode images", total=10, info="")
        bar.update(task, advance=2)
        bar.update(task, advance=0)  # no news: no line
        bar.update(task, advance=3, info="halfway")
        bar.update(task, advance=5)
    lines = capsys.readouterr().err.splitlines()
    assert all(LINE.match(l) for l in lines), lines
    texts = [LINE.sub("", l) for l in lines]
    assert texts[0] == "decode images: started 10 steps"
    assert texts[1].startswith("decode images: 2/10 (20%), 0:00 elapsed, eta ")
    assert texts[2].startswith("decode images: 5/10 (50%), 0:00 elapsed, eta ") and texts[2].endswith(" - halfway")
    assert texts[3].startswith("decode images: done 10/10 in 0:00")  # the end is said once, as "done"
    assert len(texts) == 4


def test_a_long_step_without_news_still_gets_a_line_every_few_seconds(capsys):
    with LineProgress(every=0.2) as bar:
        bar.add_task("report", total=6, info="predicting 478 images")
        time.sleep(0.9)  # one long step: no update at all
    texts = [LINE.sub("", l) for l in capsys.readouterr().err.splitlines()]
    beats = [t for t in texts if t.startswith("report: 0/6 (0%), ") and t.endswith(" - predicting 478 images")]
    assert 2 <= len(beats) <= 5, texts
    assert texts[-1].startswith("report: done 0/6 in ")


def test_a_task_that_stops_early_still_ends_with_a_line(capsys):
    with progress() as bar:
        task = bar.add_task("train", total=100, info="")
        bar.update(task, advance=40, info="epoch 2/5 loss 0.7000")
    texts = [LINE.sub("", l) for l in capsys.readouterr().err.splitlines()]
    assert texts[-1].startswith("train: done 40/100 in ") and "epoch 2/5" in texts[-1]


def test_quiet_prints_nothing(capsys):
    with progress(disable=True) as bar:
        task = bar.add_task("train", total=3, info="")
        bar.update(task, advance=3)
    with Steps("report", 2, quiet=True) as s:
        s.next("plots")
        s.next("page")
    assert capsys.readouterr().err == ""


def test_steps_name_the_phase_and_end_with_done(capsys):
    with Steps("report", 3) as s:
        s.next("predicting")
        s.next("plots")
        s.next("page")
    texts = [LINE.sub("", l) for l in capsys.readouterr().err.splitlines()]
    assert texts[0] == "report: started 3 steps" and texts[-1].startswith("report: done 3/3 in ")
    with Steps("page", 1) as s:
        s.next("page")
    assert [LINE.sub("", l) for l in capsys.readouterr().err.splitlines()][0] == "page: started 1 step"


def _train(tmp_path, *extra: str) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / "log.txt"
    env = {**os.environ, "VISIONLAB_PROGRESS_SECONDS": "0"}
    with open(log, "w") as f:
        p = subprocess.run([sys.executable, "-m", "visionlab", "train", "--data", "synthetic", "--synthetic-per-class",
                            "20", "--model", "small_cnn", "--image-size", "32", "--epochs", "2", "--threads", "1",
                            "--out", str(tmp_path / "run"), *extra], stdout=subprocess.PIPE, stderr=f, text=True,
                           env=env, timeout=300)
    return p, log.read_text()


def test_a_run_with_stderr_in_a_file_shows_every_phase(tmp_path):
    p, log = _train(tmp_path)
    assert p.returncode == 0, log
    assert re.search(r"^data: synthetic .*ready after [\d.]+ s$", log, re.M), log
    for phase in ("train", "report"):
        assert re.search(rf"^\[[\d:]+\] {phase}: started \d+ steps$", log, re.M), (phase, log)
        assert re.search(rf"^\[[\d:]+\] {phase}: done (\d+)/\1 in \d+:\d\d", log, re.M), (phase, log)
    assert re.search(r"train: 1/2 \(50%\), .* - epoch 1/2 loss [\d.]+$", log, re.M), log  # a line per step here
    assert re.search(r"train: done 2/2 in .* - epoch 2/2 loss [\d.]+$", log, re.M), log
    assert len(re.findall(r"train: 1/2", log)) == 1  # a line says something new or is not printed
    assert "\x1b[" not in log  # no terminal escapes in a log file
    assert re.search(r"s in all: setup [\d.]+ \(data, features\), training [\d.]+, evaluation/report [\d.]+", p.stdout)


def test_quiet_run_writes_nothing_to_stderr(tmp_path):
    p, log = _train(tmp_path, "--quiet")
    assert p.returncode == 0
    assert log == ""
    assert p.stdout.startswith("ok: ") and "run folder:" in p.stdout  # the result and where it went, no more
    assert "started" not in p.stdout and "data:" not in p.stdout


def test_detect_logs_progress_lines_and_quiet_silences_them(tmp_path):
    """`visionlab detect` on a folder, stderr to a file: a start and an end line; with --quiet none, and the result
    lines still on stdout."""
    photos = Path(__file__).resolve().parents[1] / "src" / "visionlab" / "assets" / "photos"
    runs = {}
    for flag in ("", "--quiet"):
        out = tmp_path / f"out{flag}"
        p = subprocess.run([sys.executable, "-m", "visionlab", "detect", str(photos), "--out", str(out),
                            "--quality", "fast", *([flag] if flag else [])], capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 0, p.stderr
        runs[flag] = p
    loud, quiet = runs[""], runs["--quiet"]
    assert "started" in loud.stderr and "done" in loud.stderr
    assert quiet.stderr == ""
    assert "faces (" in quiet.stdout and "output:" in quiet.stdout
