"""The face simulation skeleton on a handful of annotated shared photos: results per round, the starting and
fully supervised references, a plot."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from visionlab.active.facesimulate import simulate_faces
from visionlab.errors import ConfigError

SHARED = Path(os.environ.get("VISIONLAB_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
BOXES = SHARED / "data" / "facemask_boxes"


@pytest.mark.slow
def test_simulate_faces_tiny(tmp_path):
    if not (BOXES / "boxes.csv").is_file():
        pytest.skip(f"{BOXES} is absent (set VISIONLAB_SHARED to the folder holding data/)")
    s = simulate_faces(BOXES, ["random", "hybrid"], rounds=2, k=3, seeds=1, init=3, out=tmp_path / "sim", epochs=1,
                       holdout=0.25, max_photos=8)
    rows = list(csv.DictReader(open(tmp_path / "sim" / "results.csv")))
    assert [(r["strategy"], r["round"], r["labels"]) for r in rows] == [
        ("random", "1", "3"), ("random", "2", "6"), ("hybrid", "1", "3"), ("hybrid", "2", "6")]
    assert all(0 <= float(r["map50"]) <= 1 and 0 <= float(r["accuracy"]) <= 1 for r in rows)
    assert 0 <= s["start_map50"] <= 1 and s["full"]["labels"] >= 6
    assert json.loads((tmp_path / "sim" / "summary.json").read_text())["curves"]["hybrid"]["map50"][1]["labels"] == 6
    assert Path(s["plot"]).stat().st_size > 5000


@pytest.mark.slow
def test_budgets_and_resume(tmp_path):
    """--budgets measures at those label counts; a second call reads finished runs instead of redoing them, and a
    run killed part-way (no finished-run file) is done again, to the same figures."""
    if not (BOXES / "boxes.csv").is_file():
        pytest.skip(f"{BOXES} is absent (set VISIONLAB_SHARED to the folder holding data/)")
    kw = dict(seeds=1, out=tmp_path / "sim", epochs=1, holdout=0.25, max_photos=8, map=False, full_supervised=False,
              budgets=[2, 5])
    s = simulate_faces(BOXES, ["random", "margin"], **kw)
    assert [p["labels"] for p in s["curves"]["random"]["accuracy"]] == [2, 5]
    assert s["budgets"] == [2, 5] and s["init"] == 2
    runs = tmp_path / "sim" / "runs"
    kept = (runs / "random-s0" / "rounds.jsonl").stat().st_mtime_ns
    (runs / "margin-s0.json").unlink()  # as if killed during margin's run
    again = simulate_faces(BOXES, ["random", "margin"], **kw)
    assert (runs / "random-s0" / "rounds.jsonl").stat().st_mtime_ns == kept  # read, not redone
    assert (runs / "margin-s0.json").is_file()
    assert again["curves"] == s["curves"]
    with pytest.raises(Exception, match="increasing"):
        simulate_faces(BOXES, ["random"], **{**kw, "budgets": [5, 2]})
    # resumed with other settings: one line naming them, and the kept runs are not read as if they matched
    before = {p: p.read_bytes() for p in (tmp_path / "sim").rglob("*.json")}
    with pytest.raises(ConfigError, match=r"epochs=1.*this call asks epochs=2"):
        simulate_faces(BOXES, ["random", "margin"], **{**kw, "epochs": 2})
    with pytest.raises(ConfigError, match=r"steps=\[3\].*asks steps=\[4\]"):
        simulate_faces(BOXES, ["random", "margin"], **{**kw, "budgets": [2, 6]})
    assert {p: p.read_bytes() for p in (tmp_path / "sim").rglob("*.json")} == before


def test_vs_random_is_paired_by_seed_and_round():
    """Hand-made rows: margin minus random per seed, 0.1 and 0.3 in round 1 (mean 0.2), round 2 only one seed."""
    from visionlab.active.facesimulate import _vs_random

    rows = [{"strategy": "random", "seed": 0, "round": 1, "labels": 50, "accuracy": 0.5, "map50": 0.40},
            {"strategy": "random", "seed": 1, "round": 1, "labels": 50, "accuracy": 0.5, "map50": 0.50},
            {"strategy": "margin", "seed": 0, "round": 1, "labels": 50, "accuracy": 0.5, "map50": 0.50},
            {"strategy": "margin", "seed": 1, "round": 1, "labels": 50, "accuracy": 0.5, "map50": 0.80},
            {"strategy": "random", "seed": 0, "round": 2, "labels": 100, "accuracy": 0.5, "map50": 0.45},
            {"strategy": "margin", "seed": 0, "round": 2, "labels": 100, "accuracy": 0.5, "map50": 0.40}]
    v = _vs_random(rows, ["random", "margin"])["margin"]
    assert [p["round"] for p in v] == [1, 2] and v[0]["seeds"] == 2 and v[1]["seeds"] == 1
    assert v[0]["diff"] == pytest.approx(0.2) and v[1]["diff"] == pytest.approx(-0.05)
    # t interval, 1 degree of freedom: 0.2 +- 12.706 * 0.1414 / sqrt(2)
    assert v[0]["low"] == pytest.approx(0.2 - 12.7062 * 0.1, abs=1e-3)
    assert v[0]["high"] == pytest.approx(0.2 + 12.7062 * 0.1, abs=1e-3)
    assert _vs_random(rows, ["margin"]) == {}


@pytest.mark.slow
def test_a_folder_of_the_users_files_is_left_alone(tmp_path):
    """--out naming a folder that holds the user's files (one named like the study's own): the study goes into a
    new sub-folder and their files keep their bytes."""
    if not (BOXES / "boxes.csv").is_file():
        pytest.skip(f"{BOXES} is absent (set VISIONLAB_SHARED to the folder holding data/)")
    mine = tmp_path / "mine"
    (mine / "runs").mkdir(parents=True)
    (mine / "results.csv").write_text("my,own\n1,2\n")
    (mine / "runs" / "random-s0.json").write_text('{"rows": "mine"}')
    s = simulate_faces(BOXES, ["random"], seeds=1, out=mine, epochs=1, holdout=0.25, max_photos=8, map=False,
                       full_supervised=False, budgets=[2, 4])
    assert (mine / "results.csv").read_text() == "my,own\n1,2\n"
    assert (mine / "runs" / "random-s0.json").read_text() == '{"rows": "mine"}'
    assert [p["labels"] for p in s["curves"]["random"]["accuracy"]] == [2, 4]
    assert len([d for d in mine.iterdir() if d.name.startswith("simulate-")]) == 1
    assert Path(s["out"]).parent == mine and (Path(s["out"]) / "results.csv").is_file()


def test_budgets_option_parsing():
    from visionlab.active.cli import _budgets
    from visionlab.errors import ConfigError

    assert _budgets("50, 100,200,400") == [50, 100, 200, 400] and _budgets(None) is None
    with pytest.raises(ConfigError, match="whole label counts"):
        _budgets("2,x")
