"""The study folder: what a study writes, and how a rerun finds what is already done.

Study folder::

    <out>/study.json          what was run (spec, quick, seeds, data, trial configs, sessions)
    <out>/trials/<id>/        one run folder per trial (config.yaml, history.csv, metrics.json, trial.log ...)
    <out>/trials.log          a line per trial start and end, written by the worker that ran it
    <out>/results.jsonl       one record per finished trial, appended as each trial ends
    <out>/results.csv         the same as a table, rewritten after every trial
    <out>/report.md, report.html, summary.csv, plots/*.png   (report.py)

Resuming: a trial whose folder holds ``metrics.json`` is finished and never runs again; a trial killed mid-way
continues from its last epoch checkpoint. A diverged trial is a finished trial (status ``diverged``); a trial that
raised is recorded as ``failed`` with its one-line error and runs again on the next invocation.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Optional

from ..config import RunConfig
from ..errors import ConfigError
from ..io import atomic_write_text, write_json
from ..runs import RunFolder
from .executors import default_workers
from .spec import StudySpec, Trial, spec_digest
from .stats import plain

TRIALS_DIR = "trials"
RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
STUDY_FILE = "study.json"
TRIALS_LOG = "trials.log"
# Config fields that say where or how a trial ran, not what it computed: ignored when checking a rerun.
_RUN_ONLY = {"out", "name", "quiet", "threads", "device", "cache_dir", "report"}


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


# --- trials.log and results.jsonl: appended by several processes at once -----------------------------------
def append_line(path: Path, line: str) -> None:
    """Append one line with a single O_APPEND write: concurrent writers never interleave within a line.

    Not ``io.append_line``: every worker process appends to trials.log and results.jsonl at once, and io's
    version repairs a torn last line and cuts the file back after a failed write, which is safe only for a
    single writer (the label store)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def log_event(log: Path, *fields: str) -> None:
    """A trials.log line: time, pid, then ``fields`` (start/end/session and what they concern), tab-separated."""
    append_line(log, "\t".join([stamp(), str(os.getpid()), *fields]))


def append_record(out: Path, rec: dict) -> None:
    append_line(out / RESULTS_JSONL, json.dumps(rec))


def read_records(out: Path) -> dict[str, dict]:
    """The latest record per trial id from results.jsonl (a torn last line from a kill is ignored)."""
    recs: dict[str, dict] = {}
    p = Path(out) / RESULTS_JSONL
    if not p.is_file():
        return recs
    for line in p.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(r, dict) and "trial_id" in r:
            recs[r["trial_id"]] = r
    return recs


def in_order(trials: list[Trial], recs: dict[str, dict]) -> list[dict]:
    """The records of ``trials`` that have one, in trial (spec) order."""
    return [recs[t.trial_id] for t in trials if t.trial_id in recs]


# --- a trial's record, read back from its run folder -------------------------------------------------------
def _read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for r in csv.DictReader(io.StringIO(path.read_text())):
        rows.append({k: _num(v) for k, v in r.items()})
    return rows


def _num(v: Any) -> Any:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return f


def _clean(v: Any) -> Any:
    """NaN/inf as None so records stay valid JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def record_from_folder(task: dict, wall_seconds: Optional[float] = None) -> dict:
    """The result record of a finished trial, read back from its run folder."""
    run = RunFolder(task["dir"])
    m = json.loads(run.metrics.read_text())
    hist = _read_history(run.history)
    metric = task["metric"]
    status = m.get("status", "ok")
    val_curve = [_clean(h.get("val_acc")) for h in hist]
    finite_val = [v for v in val_curve if v is not None]
    return {
        "trial_id": task["trial_id"], "label": task["label"], "seed": task["seed"], "status": status,
        "metric": metric, "value": _clean(m.get(metric)) if status != "diverged" else None,
        "test_acc": _clean(m.get("test_acc")), "val_acc": _clean(m.get("val_acc")),
        "best_val_acc": max(finite_val) if finite_val else None,
        "final_train_acc": _clean(m.get("final_train_acc")), "epochs_run": m.get("epochs_run"),
        "train_seconds": m.get("train_seconds"),
        "wall_seconds": round(wall_seconds, 2) if wall_seconds is not None else None,
        "error": None, "fields": task["fields"],
        "val_acc_curve": val_curve, "train_acc_curve": [_clean(h.get("train_acc")) for h in hist],
        "path": f"{TRIALS_DIR}/{task['trial_id']}",
    }


def failed_record(task: dict, error: str, wall_seconds: Optional[float] = None) -> dict:
    return {"trial_id": task["trial_id"], "label": task["label"], "seed": task["seed"], "status": "failed",
            "metric": task["metric"], "value": None, "error": error, "fields": task["fields"],
            "wall_seconds": round(wall_seconds, 2) if wall_seconds is not None else None,
            "path": f"{TRIALS_DIR}/{task['trial_id']}"}


# --- resume bookkeeping ------------------------------------------------------------------------------------
def _json_value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def trial_task(out: Path, spec: StudySpec, t: Trial) -> dict:
    """What a worker needs to run trial ``t`` into its folder (plain values: it is pickled to the worker)."""
    return {"trial_id": t.trial_id, "label": t.label, "seed": t.seed, "config": t.config,
            "fields": {k: _json_value(t.config.get(k)) for k in spec.arm_fields()},
            "metric": spec.metric, "dir": str(out / TRIALS_DIR / t.trial_id), "log": str(out / TRIALS_LOG)}


def take_stock(out: Path, spec: StudySpec, trials: list[Trial],
               recs: dict[str, dict]) -> tuple[dict[str, dict], list[Trial], list[Trial]]:
    """(tasks by trial id, finished trials, pending trials). A finished trial (its folder holds metrics.json)
    whose record is missing or says failed (it finished after the last record was written: a kill in between)
    gets its record read back from the folder, into ``recs`` and results.jsonl."""
    tasks: dict[str, dict] = {}
    finished: list[Trial] = []
    pending: list[Trial] = []
    for t in trials:
        tasks[t.trial_id] = task = trial_task(out, spec, t)
        if not RunFolder(task["dir"]).metrics.is_file():
            pending.append(t)
            continue
        finished.append(t)
        rec = recs.get(t.trial_id)
        if rec is None or rec.get("status") == "failed":
            recs[t.trial_id] = record_from_folder(task)
            append_record(out, recs[t.trial_id])
    return tasks, finished, pending


def _comparable(config: dict) -> dict:
    d = RunConfig.build(config).model_dump(mode="json")
    return {k: v for k, v in d.items() if k in config and k not in _RUN_ONLY}


def check_folder(out: Path, trial: Trial) -> None:
    """Refuse to mix a rerun into a folder whose trial of the same id was run with other settings."""
    saved_path = RunFolder(out / TRIALS_DIR / trial.trial_id).config
    if not saved_path.is_file():
        return
    try:
        saved = RunConfig.load(saved_path).model_dump(mode="json")
    except ConfigError:
        return
    want = _comparable(trial.config)
    diff = [k for k, v in want.items() if saved.get(k) != v]
    if diff:
        k = diff[0]
        raise ConfigError(f"{out} already holds trial {trial.trial_id} run with {k}={saved.get(k)!r}, not {want[k]!r}: "
                          f"this is another study's folder (or the spec changed); pass another --out")


# --- results.csv -------------------------------------------------------------------------------------------
RESULT_COLUMNS = ["status", "value", "test_acc", "val_acc", "best_val_acc", "final_train_acc", "epochs_run",
                  "train_seconds", "wall_seconds", "error"]


def results_table(spec: StudySpec, records: list[dict]) -> tuple[list[str], list[list]]:
    """results.csv: one row per trial; the study's metric comes right after the status."""
    fields = spec.arm_fields()
    others = [c for c in RESULT_COLUMNS[2:] if c != spec.metric]
    header = ["trial_id", "label", "seed", *fields, "status", spec.metric, *others]
    rows = []
    for r in records:
        fv = r.get("fields") or {}
        rows.append([r["trial_id"], r["label"], r["seed"], *[plain(fv.get(f)) for f in fields],
                     r["status"], r.get("value"), *[r.get(c) for c in others]])
    return header, rows


def write_results_csv(out: Path, spec: StudySpec, trials: list[Trial], recs: dict[str, dict]) -> None:
    """results.csv from the records of ``trials`` (the header even without any: io.write_csv would leave it out)."""
    header, rows = results_table(spec, in_order(trials, recs))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    atomic_write_text(out / RESULTS_CSV, buf.getvalue())


# --- study.json --------------------------------------------------------------------------------------------
def study_info(out: Path, spec: StudySpec, quick: bool, seeds: list[int], data: Optional[str],
               trials: list[Trial], workers: int, threads: int, backend: str) -> dict:
    """study.json's content: what is run, and the earlier sessions' entries plus one for this session."""
    old = {}
    if (out / STUDY_FILE).is_file():
        try:
            old = json.loads((out / STUDY_FILE).read_text())
        except json.JSONDecodeError:
            old = {}
    import platform

    from ..version import __version__

    session = {"started": stamp(), "workers": workers, "threads": threads,
               "backend": backend, "host": platform.node(), "cores": default_workers(), "visionlab": __version__}
    return {"name": spec.name, "spec": spec.model_dump(mode="json"), "spec_digest": spec_digest(spec),
            "quick": quick, "quick_overrides": {k: v for k, v in spec.quick.items()} if quick else {},
            "seeds": seeds, "data": data or spec.base.get("data", RunConfig.model_fields["data"].default),
            "trials": [{"trial_id": t.trial_id, "label": t.label, "seed": t.seed} for t in trials],
            "sessions": list(old.get("sessions", [])) + [session]}


def write_study(out: Path, info: dict) -> None:
    write_json(out / STUDY_FILE, info)


def read_study(out: Path) -> dict:
    if not (out / STUDY_FILE).is_file():
        raise ConfigError(f"{out} is not a study folder (no {STUDY_FILE}); pass the --out of `visionlab study run`")
    return json.loads((out / STUDY_FILE).read_text())


def study_records(out: Path, info: dict) -> list[dict]:
    """The records of the trials study.json lists, in its order (a record of a trial it no longer lists is left out)."""
    order = {t["trial_id"]: i for i, t in enumerate(info["trials"])}
    return sorted([r for k, r in read_records(out).items() if k in order], key=lambda r: order[r["trial_id"]])


# --- where a study runs --------------------------------------------------------------------------------------
def default_out(spec: StudySpec, quick: bool) -> Path:
    return Path("runs") / "studies" / (f"{spec.name}-quick" if quick else spec.name)


def abs_data(data: Optional[str]) -> Optional[str]:
    """``--data`` as an absolute path when it names one that exists (study.json and every worker see the same)."""
    if data is None or data in ("cifar10", "synthetic"):
        return data
    p = Path(data).expanduser()
    return str(p.resolve()) if p.exists() else str(data)
