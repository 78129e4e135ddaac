"""The issue's acceptance run (slow: run with -m slow): the face-mask simulation on cached frozen-backbone
features, 10 rounds of 20 labels from 20, 3 seeds. The first run computes the features (minutes on a CPU)."""
import csv
from pathlib import Path

import pytest

from visionlab.active.simulate import simulate

from conftest import shared_path  # tests/conftest.py (rootdir conftest, on sys.path)


@pytest.mark.slow
def test_facemask_simulation(tmp_path):
    data = shared_path("data", "facemask")
    res = simulate(data, ["random", "least_confidence", "margin", "entropy", "bald", "kcenter", "hybrid"],
                   rounds=10, k=20, seeds=3, init=20, out=tmp_path / "sim", targets=[0.9, 0.95],
                   cache_dir=Path.home() / ".cache" / "visionlab")  # keyed by content: reuse is safe
    rows = list(csv.DictReader(open(res["results"])))
    assert len(rows) == 7 * 3 * 11
    s = res["summary"]
    assert s["pool"] == 2231 and s["test"] == 478
    assert res["plot"].is_file() and "Against random sampling" in res["report"].read_text()
    # the head on ImageNet features is a strong classifier: all labels give well over 90%
    assert s["full_pool_acc"] > 0.9
