"""What a study's trial costs here: the median of the trials that ran on this host, else an estimate from the
model's training arithmetic that says it is one."""
from __future__ import annotations

import json
import platform

import pytest

from visionlab.studies.cost import describe, estimated, forward_flops, measured, trial_costs
from visionlab.studies.spec import load_spec

from .conftest import TINY_BASE, write_spec


def _study_folder(root, name: str, host: str, walls: dict[str, list[float]]) -> None:
    d = root / name
    d.mkdir(parents=True)
    (d / "study.json").write_text(json.dumps({"name": name, "sessions": [{"host": host}]}))
    lines = [json.dumps({"trial_id": f"{label}__s{i}", "label": label, "seed": i, "status": "ok", "wall_seconds": w})
             for label, ws in walls.items() for i, w in enumerate(ws)]
    lines.append(json.dumps({"trial_id": "x", "label": "small", "seed": 9, "status": "failed", "wall_seconds": 999}))
    (d / "results.jsonl").write_text("\n".join(lines) + "\n")


def test_trials_run_on_this_host_give_the_measured_median(spec_dir):
    spec = load_spec(write_spec(spec_dir, "costly", [{"label": "small", "widths": [8]}, {"label": "big", "widths": [64]}]))
    root = spec_dir / "studies"
    _study_folder(root, "costly", platform.node(), {"small": [10.0, 12.0, 30.0]})
    got = measured(spec, quick=False, root=root)
    assert got["small"].seconds == 12.0 and got["small"].n == 3 and got["small"].measured  # the failed one left out
    costs = {c.label: c for c in trial_costs(spec, root=root)}
    assert costs["small"].measured and not costs["big"].measured and costs["big"].seconds > 0
    trial, whole = describe(list(costs.values()), trials_per_arm=2)
    assert "1/2 arms measured here, rest estimated" in trial and whole.startswith("~")


def test_another_hosts_trials_are_not_this_machines_cost(spec_dir):
    spec = load_spec(write_spec(spec_dir, "elsewhere", [{"label": "small", "widths": [8]}]))
    root = spec_dir / "studies"
    _study_folder(root, "elsewhere", platform.node() + "-other", {"small": [5.0]})
    assert measured(spec, quick=False, root=root) == {}
    trial, _ = describe(trial_costs(spec, root=root), 1)
    assert "estimate from model size" in trial


def test_the_estimate_scales_with_epochs_images_and_model_size():
    base = dict(TINY_BASE, widths=[64])
    one = estimated(base)
    assert one is not None and one > 0
    assert estimated({**base, "epochs": 4}) == pytest.approx(4 * one, rel=0.3)  # the matmul rate is measured once
    assert estimated({**base, "synthetic_per_class": 200}) == pytest.approx(10 * one, rel=0.3)
    # an MLP on 32 x 32 x 3 inputs: about 2 x 3072 x 64 multiply-adds in its first layer
    assert forward_flops(base) == pytest.approx(2 * (3072 * 64 + 64 * 10), rel=0.05)  # counted with 10 classes
    assert estimated({**base, "data": "/some/folder"}) is None  # unknown size: no made-up figure


def test_study_list_shows_cost_columns():
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "visionlab", "study", "list"], capture_output=True, text=True,
                       timeout=300, env={**__import__("os").environ, "COLUMNS": "250"})
    assert p.returncode == 0, p.stderr
    assert "a trial here" in p.stdout and "estimate" in p.stdout
    row = next(l for l in p.stdout.splitlines() if "│ baseline" in l)
    assert "min" in row or " s " in row or " h" in row
