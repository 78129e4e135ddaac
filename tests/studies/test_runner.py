"""Studies end to end on synthetic data: parallel workers, a diverged trial, a kill and a resume, the CLI."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from visionlab.errors import ConfigError, VisionlabError
from visionlab.studies import report_study, run_study
from visionlab.studies.folder import RESULTS_JSONL, TRIALS_LOG

from .conftest import DIVERGES, write_spec


def _log(out: Path) -> list[list[str]]:
    return [line.split("\t") for line in (out / TRIALS_LOG).read_text().splitlines()]


BROKEN = {"label": "broken", "model": "inception_v3", "weights": "/nonexistent/weights.pt"}  # fails inside its trial


def test_study_end_to_end_with_diverged_and_failed_trials(spec_dir, tmp_path):
    spec = write_spec(spec_dir, "e2e", [{"label": "adam 0.003", "lr": 0.003}, {"label": "adam 0.01", "lr": 0.01},
                                        DIVERGES, BROKEN])
    out = tmp_path / "out"
    res = run_study(spec, workers=2, out=out, quiet=True)
    assert res.ran == 8 and res.skipped == 0
    status = {r["trial_id"]: r["status"] for r in res.records}
    assert status == {"adam-0.003__s0": "ok", "adam-0.003__s1": "ok", "adam-0.01__s0": "ok", "adam-0.01__s1": "ok",
                      "adam-lr-10__s0": "diverged", "adam-lr-10__s1": "diverged",
                      "broken__s0": "failed", "broken__s1": "failed"}
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 8 and {"trial_id", "label", "seed", "lr", "model", "status", "test_acc"} <= set(rows[0])
    assert all(0 <= float(r["test_acc"]) <= 1 for r in rows if r["status"] == "ok")
    assert all(r["test_acc"] == "" for r in rows if r["status"] != "ok")
    errors = [r["error"] for r in rows if r["status"] == "failed"]
    assert all(e and "\n" not in e for e in errors)  # the one-line error of the exception
    by = {s.label: s for s in res.summary}
    assert by["adam 0.003"].n == 2 and by["adam lr 10"].diverged == 2 and by["adam lr 10"].n == 0
    assert by["broken"].failed == 2
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "Diverged (loss NaN, infinite or exploding): adam lr 10 (2/2)" in html
    assert "2 trial(s) failed" in html
    for f in ("bars.png", "curves.png"):
        assert (out / "plots" / f).stat().st_size > 5_000
    assert (out / "report.md").is_file() and (out / "summary.csv").is_file()
    # two workers ran trials side by side, each trial in its own run folder
    assert len({r[1] for r in _log(out) if r[2] == "start"}) == 2
    assert all((out / "trials" / t / "metrics.json").is_file() for t, st in status.items() if st != "failed")
    # a rerun into the same folder runs the failed trials again and nothing else
    again = run_study(spec, workers=2, out=out, quiet=True)
    assert again.ran == 2 and again.skipped == 6 and len(again.records) == 8
    assert report_study(out).report == out / "report.html"


def test_killed_study_reruns_only_the_missing_trials(spec_dir, tmp_path):
    lrs = (0.001, 0.003, 0.01, 0.03)
    configs = [{"label": f"lr {lr}", "lr": lr, "epochs": 2, "synthetic_per_class": 40} for lr in lrs]
    spec = write_spec(spec_dir, "killme", configs)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "visionlab", "study", "run", str(spec), "--workers", "2",
                             "--out", str(out), "--quiet"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            jl = out / RESULTS_JSONL
            if jl.is_file() and len(jl.read_text().splitlines()) >= 2:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        else:
            pytest.fail("no trial finished in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the study and its workers, mid-way, like a power cut
        proc.wait()
    time.sleep(0.5)
    trial_ids = [f"lr-{lr}__s{s}" for lr in lrs for s in (0, 1)]
    done_before = {t for t in trial_ids if (out / "trials" / t / "metrics.json").is_file()}
    assert 2 <= len(done_before) < len(trial_ids), "the kill should land mid-study"
    mtimes = {t: (out / "trials" / t / "metrics.json").stat().st_mtime for t in done_before}
    n_lines = len(_log(out))

    res = run_study(spec, workers=2, out=out, quiet=True)
    second = _log(out)[n_lines:]
    started = [r[3] for r in second if r[2] == "start"]
    assert sorted(started) == sorted(set(trial_ids) - done_before)  # only the missing ones, each once
    assert res.ran == len(started) and res.skipped == len(done_before)
    assert {t: (out / "trials" / t / "metrics.json").stat().st_mtime for t in done_before} == mtimes
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted(r["trial_id"] for r in rows) == sorted(trial_ids)
    assert all(r["status"] == "ok" for r in rows)


def test_only_runs_the_named_configurations_and_a_later_run_fills_in_the_rest(spec_dir, tmp_path):
    spec = write_spec(spec_dir, "subset", [{"label": "adam 0.003", "lr": 0.003}, {"label": "adam 0.01", "lr": 0.01}])
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="no configuration 'adam 0.3'.*its labels: adam 0.003, adam 0.01"):
        run_study(spec, out=out, quiet=True, only=["adam 0.3"])
    first = run_study(spec, workers=2, out=out, quiet=True, only=["adam 0.01"])
    assert first.ran == 2 and {r["trial_id"] for r in first.records} == {"adam-0.01__s0", "adam-0.01__s1"}
    by = {s.label: s for s in first.summary}
    assert by["adam 0.01"].n == 2 and by["adam 0.003"].n == 0  # the other arm is in the report, as not run
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted(r["trial_id"] for r in rows) == ["adam-0.01__s0", "adam-0.01__s1"]
    rest = run_study(spec, workers=2, out=out, quiet=True)
    assert rest.ran == 2 and rest.skipped == 2
    assert sorted(r["trial_id"] for r in rest.records) == ["adam-0.003__s0", "adam-0.003__s1",
                                                           "adam-0.01__s0", "adam-0.01__s1"]


def test_cli_list_and_bad_input(tmp_path):
    vl = [sys.executable, "-m", "visionlab", "study"]
    p = subprocess.run([*vl, "list"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    for name in ("baseline", "activations", "optimizers", "regularization"):
        assert name in p.stdout
    p = subprocess.run([*vl, "run", "nope"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "unknown study 'nope'" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([*vl, "report", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "not a study folder" in " ".join(p.stderr.split())
    for bad, said in ((["--set", "normalize"], "write FIELD=VALUE"), (["--set", "normalise=scale"], "normalise"),
                      (["--only", "ANN"], "its labels: ANN, full-batch GD")):
        p = subprocess.run([*vl, "run", "baseline", "--out", str(tmp_path / "never"), *bad], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 2 and said in " ".join(p.stderr.split()) and "Traceback" not in p.stderr, p.stderr
        assert not (tmp_path / "never").exists()


def test_set_runs_a_variant_in_its_own_folder(spec_dir, tmp_path, monkeypatch):
    spec = write_spec(spec_dir, "scaled", [{"label": "adam 0.01", "lr": 0.01}], seeds=(0,))
    monkeypatch.chdir(tmp_path)
    res = run_study(spec, workers=1, quiet=True, base={"normalize": "scale"})
    assert res.path == (tmp_path / "runs" / "studies" / "scaled-normalize-scale").resolve() and res.ran == 1
    cfg = yaml.safe_load((res.path / "trials" / "adam-0.01__s0" / "config.yaml").read_text())
    assert cfg["normalize"] == "scale"
    assert "normalize: scale" in (res.path / "report.md").read_text()


def test_a_folder_that_is_not_a_study_is_refused_and_a_study_is_resumed(spec_dir, tmp_path, capsys):
    """Issue 28 item 1: `study run --out` into a user's folder wrote results.csv, report.html... over its files."""
    spec = write_spec(spec_dir, "mine", [{"label": "adam", "lr": 0.003}], seeds=(0,))
    out = tmp_path / "mine-out"
    out.mkdir()
    (out / "results.csv").write_text("precious\n")
    with pytest.raises(ConfigError, match="holds files but is not a study folder"):
        run_study(spec, workers=1, out=out, quiet=True)
    assert sorted(p.name for p in out.iterdir()) == ["results.csv"]
    assert (out / "results.csv").read_text() == "precious\n"
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(VisionlabError, match="is a file, not a folder"):  # before: FileExistsError
        run_study(spec, workers=1, out=f / "study", quiet=True)
    fresh = tmp_path / "fresh"
    assert run_study(spec, workers=1, out=fresh, quiet=True).ran == 1
    capsys.readouterr()
    res = run_study(spec, workers=1, out=fresh, quiet=True)  # resuming is the point: said, nothing re-run
    assert res.ran == 0 and res.skipped == 1
    assert "resuming the study folder" in capsys.readouterr().err
