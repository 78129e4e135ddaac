"""Run a study: every (arm, seed) trial as one ``visionlab.train`` call in its own run folder, in parallel.

Study folder::

    <out>/study.json          what was run (spec, quick, seeds, data, trial configs, sessions)
    <out>/trials/<id>/        one run folder per trial (config.yaml, history.csv, metrics.json, trial.log ...)
    <out>/trials.log          a line per trial start and end, written by the worker that ran it
    <out>/results.jsonl       one record per finished trial, appended as each trial ends
    <out>/results.csv         the same as a table, rewritten after every trial
    <out>/report.md, report.html, summary.csv, plots/*.png

Resuming: a trial whose folder holds ``metrics.json`` is finished and never runs again; a trial killed mid-way
continues from its last epoch checkpoint. At most ``workers`` trials are in flight at any time, so a killed study
loses at most those. A diverged trial is a finished trial (status ``diverged``); a trial that raised is recorded
as ``failed`` with its one-line error and runs again on the next invocation.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ..config import RunConfig
from ..errors import ConfigError
from .spec import StudySpec, Trial, load_spec, spec_digest

TRIALS_DIR = "trials"
RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
STUDY_FILE = "study.json"
TRIALS_LOG = "trials.log"
# Config fields that say where or how a trial ran, not what it computed: ignored when checking a rerun.
_RUN_ONLY = {"out", "name", "quiet", "threads", "device", "cache_dir", "report"}


@dataclass
class StudyResult:
    path: Path
    name: str
    records: list[dict] = field(default_factory=list)  # one per trial, in spec order
    summary: list = field(default_factory=list)  # analyze.ArmStats per arm
    ran: int = 0  # trials run by this call
    skipped: int = 0  # trials already finished before this call
    wall_seconds: float = 0.0
    report: Optional[Path] = None

    def best(self):
        ok = [s for s in self.summary if s.n]
        return max(ok, key=lambda s: s.mean) if ok else None


# --- small atomic file helpers -------------------------------------------------------------------------
def _append_line(path: Path, line: str) -> None:
    """Append one line with a single O_APPEND write: concurrent writers never interleave within a line."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_text(path: Path, text: str) -> None:
    from ..training.checkpoint import atomic_write_text

    atomic_write_text(path, text)


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


# --- one trial (runs in a worker process: local pool or Ray) ------------------------------------------
def _init_worker(threads: int, env: Optional[dict] = None) -> None:
    """Pin the math libraries of a worker to its share of the cores before torch spins up its pools."""
    os.environ.update(env or {})
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass


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
    d = Path(task["dir"])
    m = json.loads((d / "metrics.json").read_text())
    hist = _read_history(d / "history.csv")
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


def run_trial(task: dict) -> dict:
    """Train one trial into ``task['dir']`` and return its record; never raises for a trial's own failure."""
    t0 = time.perf_counter()
    d = Path(task["dir"])
    d.mkdir(parents=True, exist_ok=True)
    log = Path(task["log"])
    _append_line(log, f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\t{os.getpid()}\tstart\t{task['trial_id']}")
    status, error = "failed", None
    with _OutputTo(d / "trial.log"):
        try:
            from ..api import train

            # a trial needs its metrics, not eight plots and a report: those cost more than a quick trial trains
            fields = dict(task["config"], out=str(d), quiet=True, threads=task["threads"], report="metrics")
            resume = (d / "checkpoint.pt").is_file()
            if not resume:  # a folder from a kill before the first checkpoint, or a failed attempt: start clean
                (d / "model.safetensors").unlink(missing_ok=True)
            try:
                train(fields, resume=resume)
            except Exception as e:
                if not resume:
                    raise
                print(f"resume failed ({type(e).__name__}: {e}); training the trial from the start", flush=True)
                (d / "checkpoint.pt").unlink(missing_ok=True)
                (d / "model.safetensors").unlink(missing_ok=True)
                train(fields, resume=False)
            rec = record_from_folder(task, time.perf_counter() - t0)
            status = rec["status"]
        except Exception as e:  # a failed trial is a result, not the end of the study
            import traceback

            traceback.print_exc()
            error = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            rec = failed_record(task, error, time.perf_counter() - t0)
    _append_line(log, f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\t{os.getpid()}\tend\t{task['trial_id']}\t{status}"
                      + (f"\t{error}" if error else ""))
    return rec


def failed_record(task: dict, error: str, wall_seconds: Optional[float] = None) -> dict:
    return {"trial_id": task["trial_id"], "label": task["label"], "seed": task["seed"], "status": "failed",
            "metric": task["metric"], "value": None, "error": error, "fields": task["fields"],
            "wall_seconds": round(wall_seconds, 2) if wall_seconds is not None else None,
            "path": f"{TRIALS_DIR}/{task['trial_id']}"}


def prepare_data(config: dict) -> str:
    """Decode (and cache) a trial's data once, before trials fan out and would all decode it at the same time."""
    from ..api import load_data

    data = load_data(RunConfig.build(config, quiet=True))
    return f"{data.num_classes} classes, {len(data.train)} train images"


# --- executors ---------------------------------------------------------------------------------------
# Imported once by the fork server; every worker forks from it instead of importing torch, sklearn and
# matplotlib again (seconds per worker, per study). Nothing here runs a torch op, so no OpenMP pool is forked.
PRELOAD = ["torch", "torch._dynamo", "visionlab.api", "visionlab.evaluate", "visionlab.training.trainer",
           "visionlab.studies.runner"]


def _mp_context():
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return mp.get_context("spawn")


class _LocalPool:
    """Worker processes (forkserver or spawn: never a fork of a process that has run torch) with ``threads``
    torch threads each. The parent's VISIONLAB_* variables are passed on: a fork server keeps the environment
    it started with."""

    def __init__(self, workers: int, threads: int) -> None:
        from concurrent.futures import ProcessPoolExecutor

        self.workers, self.threads = workers, threads
        env = {k: v for k, v in os.environ.items() if k.startswith("VISIONLAB_")}
        self._make = lambda: ProcessPoolExecutor(workers, mp_context=_mp_context(), initializer=_init_worker,
                                                 initargs=(threads, env))
        self.pool = self._make()

    def submit(self, fn: Callable, arg: Any):
        return self.pool.submit(fn, arg)

    def wait(self, handles: list) -> list[tuple[Any, Any, Optional[BaseException]]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        out = []
        broken = False
        for h in done:
            try:
                out.append((h, h.result(), None))
            except BrokenProcessPool as e:
                broken = True
                out.append((h, None, RuntimeError(f"the worker process died ({e or 'killed, out of memory?'})")))
            except Exception as e:
                out.append((h, None, e))
        if broken:  # every in-flight future fails with the pool; start a fresh one for what is left
            for h in handles:
                if h not in done:
                    out.append((h, None, RuntimeError("the worker pool broke while this trial ran")))
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._make()
        return out

    def close(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


class _RayPool:
    """The same trial function as a Ray task, one CPU share per trial, on a local or remote Ray cluster."""

    def __init__(self, workers: int, threads: int, address: Optional[str]) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--backend ray needs Ray: pip install 'visionlab[studies]'") from None
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                # a local instance listens on loopback only: nothing of it is reachable from the network
                ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False,
                         _node_ip_address="127.0.0.1")
                self.started = True
        self.threads = threads
        self._fns: dict[Callable, Any] = {}

    def submit(self, fn: Callable, arg: Any):
        if fn not in self._fns:
            threads = self.threads

            def call(a, _fn=fn):
                _init_worker(threads)
                return _fn(a)

            self._fns[fn] = self.ray.remote(num_cpus=threads, max_retries=0)(call)
        return self._fns[fn].remote(arg)

    def wait(self, handles: list) -> list[tuple[Any, Any, Optional[BaseException]]]:
        done, _ = self.ray.wait(handles, num_returns=1)
        out = []
        for h in done:
            try:
                out.append((h, self.ray.get(h), None))
            except Exception as e:
                cause = getattr(e, "cause", None) or e
                out.append((h, None, cause if isinstance(cause, BaseException) else e))
        return out

    def close(self, cancel: bool = False) -> None:
        if self.started:
            self.ray.shutdown()


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


# --- the study --------------------------------------------------------------------------------------
def _abs_data(data: Optional[str]) -> Optional[str]:
    if data is None or data in ("cifar10", "synthetic"):
        return data
    p = Path(data).expanduser()
    return str(p.resolve()) if p.exists() else str(data)


def _comparable(config: dict) -> dict:
    d = RunConfig.build(config).model_dump(mode="json")
    return {k: v for k, v in d.items() if k in config and k not in _RUN_ONLY}


def _check_folder(out: Path, trial: Trial) -> None:
    """Refuse to mix a rerun into a folder whose trial of the same id was run with other settings."""
    saved_path = out / TRIALS_DIR / trial.trial_id / "config.yaml"
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


def _write_csv(out: Path, spec: StudySpec, trials: list[Trial], recs: dict[str, dict]) -> None:
    from .analyze import results_table

    header, rows = results_table(spec, [recs[t.trial_id] for t in trials if t.trial_id in recs])
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    _atomic_text(out / RESULTS_CSV, buf.getvalue())


def default_out(spec: StudySpec, quick: bool) -> Path:
    return Path("runs") / "studies" / (f"{spec.name}-quick" if quick else spec.name)


def run_study(name_or_path: str | Path | StudySpec, data: Optional[str] = None, seeds: Optional[int] = None,
              quick: bool = False, workers: Optional[int] = None, out: Optional[str | Path] = None,
              backend: str = "local", ray_address: Optional[str] = None, quiet: bool = False) -> StudyResult:
    """Run (or continue) a study and write its results table, plots and report.

    ``name_or_path``: a built-in study (``visionlab study list``), a YAML file or a StudySpec. ``data``: a folder,
    ``cifar10`` or ``synthetic`` for every trial (default: the spec's, usually ``cifar10``). ``seeds``: run seeds
    0..N-1 instead of the spec's. ``quick``: apply the spec's quick overrides (smoke run; the report says so).
    ``workers``: parallel trials (default: one per core). ``out``: the study folder (default
    ``runs/studies/<name>[-quick]``); rerunning into the same folder continues the study.
    """
    from ..progress import console, progress

    if backend not in ("local", "ray"):
        raise ConfigError(f"unknown backend {backend!r}; choose local or ray")
    spec = name_or_path if isinstance(name_or_path, StudySpec) else load_spec(name_or_path)
    spec.check_names()
    data = _abs_data(data)
    seed_list = spec.resolved_seeds(quick, seeds)
    trials = spec.trials(quick=quick, seeds=seed_list, data=data)
    out = Path(out) if out else default_out(spec, quick)
    out = out.resolve()
    (out / TRIALS_DIR).mkdir(parents=True, exist_ok=True)
    for t in trials:
        _check_folder(out, t)

    ncores = default_workers()
    workers = max(1, workers or ncores)
    t_start = time.time()
    recs = read_records(out)
    finished: list[Trial] = []
    pending: list[Trial] = []
    tasks: dict[str, dict] = {}
    for t in trials:
        d = out / TRIALS_DIR / t.trial_id
        tasks[t.trial_id] = {"trial_id": t.trial_id, "label": t.label, "seed": t.seed, "config": t.config,
                             "fields": {k: _json_value(t.config.get(k)) for k in spec.arm_fields()},
                             "metric": spec.metric, "dir": str(d), "log": str(out / TRIALS_LOG)}
        if (d / "metrics.json").is_file():
            finished.append(t)
            rec = recs.get(t.trial_id)
            if rec is None or rec.get("status") == "failed":  # finished after the last record was written
                rec = record_from_folder(tasks[t.trial_id])
                recs[t.trial_id] = rec
                _append_line(out / RESULTS_JSONL, json.dumps(rec))
        else:
            pending.append(t)

    workers = min(workers, max(1, len(pending)))
    threads = max(1, ncores // workers)  # cores shared out so that workers x threads never oversubscribes
    for t in pending:
        tasks[t.trial_id]["threads"] = threads
    study = _study_info(out, spec, quick, seed_list, data, trials, workers, threads, backend)
    _atomic_text(out / STUDY_FILE, json.dumps(study, indent=2) + "\n")
    _append_line(out / TRIALS_LOG, f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\t{os.getpid()}\tsession\t"
                                   f"{len(pending)} to run, {len(finished)} finished, backend {backend}")
    if not quiet:
        plural = lambda n, w: f"{n} {w}{'s' if n != 1 else ''}"  # noqa: E731
        console.print(f"study [bold]{spec.name}[/]{' (quick)' if quick else ''}: {len(trials)} trials "
                      f"({plural(len(spec.arms()), 'configuration')} x {plural(len(seed_list), 'seed')}), "
                      f"{len(finished)} already done; {plural(workers, 'worker')} x "
                      f"{plural(threads, 'torch thread')} -> {out}")

    ran = 0
    if pending:
        pool = _RayPool(workers, threads, ray_address) if backend == "ray" else _LocalPool(workers, threads)
        try:
            _prepare(pool, pending, tasks, console, quiet)
            ran = _run_pending(pool, pending, tasks, out, spec, trials, recs, len(finished), workers,
                               console, progress, quiet)
        except BaseException as e:
            pool.close(cancel=True)
            if isinstance(e, KeyboardInterrupt):
                console.print("[yellow]interrupted: finished trials are kept; rerun the same command to continue[/]")
            raise
        pool.close()

    _write_csv(out, spec, trials, recs)
    wall = time.time() - t_start
    study["sessions"][-1].update(ended=time.strftime("%Y-%m-%dT%H:%M:%S"), wall_seconds=round(wall, 1), ran=ran)
    _atomic_text(out / STUDY_FILE, json.dumps(study, indent=2) + "\n")
    from .analyze import write_report

    summary, report = write_report(out)
    result = StudyResult(out, spec.name, [recs[t.trial_id] for t in trials if t.trial_id in recs], summary,
                         ran=ran, skipped=len(finished), wall_seconds=wall, report=report)
    if not quiet:
        console.print(f"[green]study {spec.name} done[/] in {wall:.0f} s ({ran} trials run, {len(finished)} reused): "
                      f"{report}")
    return result


def _json_value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _study_info(out: Path, spec: StudySpec, quick: bool, seeds: list[int], data: Optional[str],
                trials: list[Trial], workers: int, threads: int, backend: str) -> dict:
    old = {}
    if (out / STUDY_FILE).is_file():
        try:
            old = json.loads((out / STUDY_FILE).read_text())
        except json.JSONDecodeError:
            old = {}
    import platform

    from .. import __version__

    session = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "workers": workers, "threads": threads,
               "backend": backend, "host": platform.node(), "cores": default_workers(), "visionlab": __version__}
    return {"name": spec.name, "spec": spec.model_dump(mode="json"), "spec_digest": spec_digest(spec),
            "quick": quick, "quick_overrides": {k: v for k, v in spec.quick.items()} if quick else {},
            "seeds": seeds, "data": data or spec.base.get("data", RunConfig.model_fields["data"].default),
            "trials": [{"trial_id": t.trial_id, "label": t.label, "seed": t.seed} for t in trials],
            "sessions": list(old.get("sessions", [])) + [session]}


DATA_FIELDS = ("data", "source", "val_split", "test_split", "split_ratios", "limit_per_class", "synthetic_per_class",
               "cache_dir", "seed")  # what selects and decodes a trial's images (the seed picks the splits)


def _prepare(pool, pending: list[Trial], tasks: dict[str, dict], console, quiet: bool) -> None:
    """Decode each distinct data selection once, in parallel, before the trials that share it would all decode it
    at the same time; a bad --data fails here, in one line, instead of in every trial."""
    from ..models import default_image_size

    seen: dict[tuple, dict] = {}
    for t in pending:
        c = RunConfig.build(t.config)
        key = (*(str(getattr(c, f)) for f in DATA_FIELDS), c.image_size or default_image_size(c.model))
        seen.setdefault(key, t.config)
    if not quiet:
        console.print(f"preparing data: {len(seen)} selection{'s' if len(seen) > 1 else ''} (decoded once, then "
                      f"cached)")
    handles = [pool.submit(prepare_data, cfg) for cfg in seen.values()]
    while handles:
        for h, res, err in pool.wait(handles):
            handles.remove(h)
            if err is not None:
                for other in handles:
                    _cancel(other)
                raise err
            if not quiet:
                console.print(f"  data ready: {res}")


def _cancel(handle) -> None:
    cancel = getattr(handle, "cancel", None)
    if cancel:
        cancel()


def _run_pending(pool, pending: list[Trial], tasks: dict[str, dict], out: Path, spec: StudySpec,
                 trials: list[Trial], recs: dict[str, dict], n_done: int, workers: int, console, progress,
                 quiet: bool) -> int:
    queue = sorted(pending, key=lambda t: t.seed)  # seed-major: a partial study covers every arm early
    in_flight: dict[Any, Trial] = {}
    ran = 0
    total = len(trials)
    with progress(disable=quiet) as bar:
        task = bar.add_task(f"study {spec.name}", total=total, completed=n_done, info="")
        while queue or in_flight:
            while queue and len(in_flight) < workers:  # a bounded window: a kill loses at most `workers` trials
                t = queue.pop(0)
                in_flight[pool.submit(run_trial, tasks[t.trial_id])] = t
            for h, rec, err in pool.wait(list(in_flight)):
                t = in_flight.pop(h)
                if err is not None:
                    rec = failed_record(tasks[t.trial_id], f"{type(err).__name__}: {err}".splitlines()[0][:300])
                recs[t.trial_id] = rec
                _append_line(out / RESULTS_JSONL, json.dumps(rec))
                _write_csv(out, spec, trials, recs)
                ran += 1
                n_done += 1
                bar.update(task, advance=1, info=_describe(rec))
                if not quiet:
                    console.print(f"[{n_done}/{total}] {_describe(rec)}", highlight=False)
    return ran


def _describe(rec: dict) -> str:
    head = f"{rec['label']} seed {rec['seed']}: {rec['status']}"
    if rec["status"] == "failed":
        return f"{head} ({rec.get('error')})"
    v = rec.get("value")
    val = f" {rec['metric']} {v:.4f}" if isinstance(v, (int, float)) else ""
    wall = f" in {rec['wall_seconds']:.0f} s" if rec.get("wall_seconds") is not None else ""
    return head + val + wall


def report_study(path: str | Path) -> StudyResult:
    """Rewrite results.csv, the plots and report.md/report.html of a study folder from its records."""
    from .analyze import write_report

    out = Path(path)
    if not (out / STUDY_FILE).is_file():
        raise ConfigError(f"{out} is not a study folder (no {STUDY_FILE}); pass the --out of `visionlab study run`")
    info = json.loads((out / STUDY_FILE).read_text())
    spec = StudySpec(**info["spec"])
    seeds = info["seeds"]
    trials = spec.trials(quick=info.get("quick", False), seeds=seeds, data=info.get("data"))
    recs = read_records(out)
    for t in trials:  # trials that finished after the last record was written (a kill in between)
        d = out / TRIALS_DIR / t.trial_id
        if (d / "metrics.json").is_file() and (t.trial_id not in recs or recs[t.trial_id].get("status") == "failed"):
            task = {"trial_id": t.trial_id, "label": t.label, "seed": t.seed, "metric": spec.metric, "dir": str(d),
                    "fields": {k: _json_value(t.config.get(k)) for k in spec.arm_fields()}}
            recs[t.trial_id] = record_from_folder(task)
            _append_line(out / RESULTS_JSONL, json.dumps(recs[t.trial_id]))
    _write_csv(out, spec, trials, recs)
    summary, report = write_report(out)
    return StudyResult(out, spec.name, [recs[t.trial_id] for t in trials if t.trial_id in recs], summary,
                       report=report)

