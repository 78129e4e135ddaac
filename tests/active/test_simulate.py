import csv
import math

import pytest

from visionlab.active.simulate import simulate, summarise, t_interval
from visionlab.errors import DataError

from .conftest import write_image


def test_t_interval():
    m, lo, hi = t_interval([0.8, 0.9, 1.0])
    assert m == pytest.approx(0.9) and hi - m == pytest.approx(4.303 * 0.1 / math.sqrt(3), rel=1e-3)
    assert math.isnan(t_interval([0.5])[1])


def test_summary_labels_to_target_and_paired_difference():
    rows = []
    for seed in range(3):
        for r, n in enumerate([10, 20, 30]):
            rows.append({"strategy": "random", "seed": seed, "round": r, "labels": n, "test_acc": 0.70 + 0.05 * r})
            rows.append({"strategy": "entropy", "seed": seed, "round": r, "labels": n,
                         "test_acc": 0.70 + 0.10 * r + 0.01 * seed * (r > 0)})
    s = summarise(rows, ["random", "entropy"], 3, [0.78, 0.95])
    assert s["labels_to_target"]["entropy"]["0.78"]["per_seed"] == [20, 20, 20]
    assert s["labels_to_target"]["random"]["0.78"]["per_seed"] == [30, 30, 30]
    assert s["labels_to_target"]["random"]["0.95"]["reached"] == 0
    d = s["vs_random"]["entropy"]["mean_over_rounds"]
    assert d["mean"] == pytest.approx(0.085) and d["lo"] > 0


def test_simulation_writes_results_plot_and_report(tmp_path):
    data = tmp_path / "data"
    for split, n, off in (("Train", 60, 0), ("Test", 20, 500)):
        for i in range(n):
            write_image(data / split / ("a" if i % 2 == 0 else "b") / f"{i}.png", i % 2, off + i, size=12)
    res = simulate(data, ["random", "least_confidence", "bald", "kcenter", "hybrid"], rounds=2, k=3, seeds=2, init=4,
                   out=tmp_path / "sim", model="pixels", epochs=30, mc_samples=4)
    rows = list(csv.DictReader(open(res["results"])))
    assert len(rows) == 5 * 2 * 3 and {r["labels"] for r in rows} == {"4", "7", "10"}
    assert res["plot"].stat().st_size > 10_000
    md = res["report"].read_text()
    assert "Labels needed to reach" in md and "Against random sampling" in md and "least_confidence" in md
    assert "<table>" in res["html"].read_text()
    with pytest.raises(DataError, match="Train split"):
        simulate(data / "Train", ["random"], out=tmp_path / "x", model="pixels")
