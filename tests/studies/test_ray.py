"""The Ray backend runs the same trial function as Ray tasks on a local Ray instance."""
from __future__ import annotations

import os

import pytest

from visionlab.studies import run_study
from visionlab.studies.folder import TRIALS_LOG

from .conftest import write_spec

ray = pytest.importorskip("ray")


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.mark.timeout(480)  # ~20 s on an idle 2-core machine; a loaded one took 140 s
def test_ray_backend_runs_the_study(spec_dir, tmp_path, local_ray):
    spec = write_spec(spec_dir, "ray", [{"label": "adam 0.003", "lr": 0.003}], seeds=[0, 1])
    out = tmp_path / "out"
    res = run_study(spec, workers=2, out=out, backend="ray", quiet=True)
    assert res.ran == 2 and [r["status"] for r in res.records] == ["ok", "ok"]
    assert (out / "results.csv").is_file() and (out / "report.html").is_file()
    starts = [line.split("\t") for line in (out / TRIALS_LOG).read_text().splitlines() if "\tstart\t" in line]
    assert len(starts) == 2 and all(int(s[1]) != os.getpid() for s in starts)  # ran in Ray workers
    assert ray.is_initialized()  # a cluster the caller started is left running for the caller
