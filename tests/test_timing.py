"""Times that add up: a run's setup, training and evaluation seconds sum to its total, and the total is the
wall time of ``visionlab.train`` (measured around the call) to within a few seconds."""
from __future__ import annotations

import time

import pytest

import visionlab
import visionlab.evaluation  # noqa: F401  imported before the clock: imports are not the run's time
from visionlab.timing import PhaseClock


def test_phases_sum_to_the_total_and_moved_seconds_change_phase():
    clock = PhaseClock()
    time.sleep(0.05)
    clock.lap("setup")
    time.sleep(0.10)
    clock.lap("training", moved={"setup": 0.04})  # e.g. frozen features computed inside fit
    time.sleep(0.03)
    clock.lap("evaluation")
    s = clock.seconds()
    assert s["setup_seconds"] == pytest.approx(0.09, abs=0.02)
    assert s["train_seconds"] == pytest.approx(0.06, abs=0.02)
    assert s["evaluation_seconds"] == pytest.approx(0.03, abs=0.02)
    parts = s["setup_seconds"] + s["train_seconds"] + s["evaluation_seconds"]
    assert s["total_seconds"] == pytest.approx(parts, abs=0.011)  # each rounded to 0.01
    assert clock.seconds(running="evaluation")["evaluation_seconds"] >= s["evaluation_seconds"]


def test_the_cli_entry_mark_is_used_once_and_forgotten_when_the_command_ends():
    from visionlab import timing

    timing.mark_entry()
    time.sleep(0.05)
    assert PhaseClock().elapsed() >= 0.05  # the first clock starts at the mark
    assert PhaseClock().elapsed() < 0.05  # the next one at its own start
    timing.mark_entry()
    timing.mark_entry(False)
    assert PhaseClock().elapsed() < 0.05


def test_a_runs_times_add_up_to_its_wall_time(tmp_path):
    t0 = time.perf_counter()
    res = visionlab.train(data="synthetic", synthetic_per_class=30, image_size=32, model="small_cnn", epochs=2,
                          quiet=True, threads=1, out=str(tmp_path / "run"))
    wall = time.perf_counter() - t0
    m = res.metrics
    parts = m["setup_seconds"] + m["train_seconds"] + m["evaluation_seconds"]
    assert abs(m["total_seconds"] - parts) <= 0.02
    assert abs(wall - m["total_seconds"]) < 3.0, (wall, m)
    assert m["evaluation_seconds"] > 0.1 and m["setup_seconds"] > 0 and m["train_seconds"] > 0  # each phase timed
    assert m["epoch_seconds"] <= m["train_seconds"] + 0.01  # the epochs are part of training
    html = (res.path / "report.html").read_text()
    for row in ("setup s (data, features)", "training s", "evaluation s (until this report)",
                "total s (until this report)"):
        assert f"<td>{row}</td>" in html, row
