"""One trial, run in a worker process (a local pool's or a Ray task's): a ``visionlab.train`` call in its folder.

The fork server preloads this module (executors.PRELOAD), so it imports only what a worker needs.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from ..config import RunConfig
from .folder import failed_record, log_event, record_from_folder


class _OutputTo:
    """Send this process's stdout/stderr (file descriptors too: torch and C warnings) to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self):
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = (os.dup(1), os.dup(2))
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(self.fd, 1)
        os.dup2(self.fd, 2)
        return self

    def __exit__(self, *exc):
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        for fd in (*self.saved, self.fd):
            os.close(fd)
        return False


def _train(task: dict, d: Path) -> None:
    """Train the trial into ``d``: from its last checkpoint when it has one, else (or if that fails) from scratch."""
    from ..api import train
    from ..runs import RunFolder

    # a trial needs its metrics, not eight plots and a report: those cost more than a quick trial trains
    fields = dict(task["config"], out=str(d), quiet=True, threads=task["threads"], report="metrics")
    run = RunFolder(d)
    resume = run.checkpoint.is_file()
    if not resume:  # a folder from a kill before the first checkpoint, or a failed attempt: start clean
        run.weights.unlink(missing_ok=True)
    try:
        train(fields, resume=resume)
    except Exception as e:
        if not resume:
            raise
        print(f"resume failed ({type(e).__name__}: {e}); training the trial from the start", flush=True)
        run.checkpoint.unlink(missing_ok=True)
        run.weights.unlink(missing_ok=True)
        train(fields, resume=False)


def run_trial(task: dict) -> dict:
    """Train one trial into ``task['dir']`` and return its record; never raises for a trial's own failure."""
    t0 = time.perf_counter()
    d = Path(task["dir"])
    d.mkdir(parents=True, exist_ok=True)
    log = Path(task["log"])
    log_event(log, "start", task["trial_id"])
    status, error = "failed", None
    with _OutputTo(d / "trial.log"):
        try:
            _train(task, d)
            rec = record_from_folder(task, time.perf_counter() - t0)
            status = rec["status"]
        except Exception as e:  # a failed trial is a result, not the end of the study
            import traceback

            traceback.print_exc()
            error = one_line(e)
            rec = failed_record(task, error, time.perf_counter() - t0)
    log_event(log, "end", task["trial_id"], status, *([error] if error else []))
    return rec


def one_line(e: BaseException) -> str:
    """An exception as the one-line error a record keeps (its first line, at most 300 characters)."""
    return f"{type(e).__name__}: {e}".splitlines()[0][:300]


def prepare_data(config: dict) -> str:
    """Decode (and cache) a trial's data once, before trials fan out and would all decode it at the same time."""
    from ..api import load_data

    data = load_data(RunConfig.build(config, quiet=True))
    return f"{data.num_classes} classes, {len(data.train)} train images"
