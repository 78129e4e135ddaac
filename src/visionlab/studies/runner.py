"""Run a study: every (arm, seed) trial as one ``visionlab.train`` call in its own run folder, in parallel.

``run_study`` ties the parts together: the study folder and what is already done there (folder.py), the worker
processes or Ray tasks (executors.py) that run each trial (trial.py), and the report (report.py). At most
``workers`` trials are in flight at any time, so a killed study loses at most those; rerun it to continue.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from ..config import RunConfig
from ..errors import ConfigError
from .executors import cancel, default_workers, open_pool
from .folder import (STUDY_FILE, TRIALS_DIR, TRIALS_LOG, abs_data, append_record, check_folder, default_out,
                     failed_record, in_order, log_event, read_records, read_study, stamp, study_info, take_stock,
                     write_results_csv, write_study)
from .report import write_report
from .spec import StudySpec, Trial, load_spec
from .stats import plural
from .trial import one_line, prepare_data, run_trial


@dataclass
class StudyResult:
    path: Path
    name: str
    records: list[dict] = field(default_factory=list)  # one per trial, in spec order
    summary: list = field(default_factory=list)  # stats.ArmStats per arm
    ran: int = 0  # trials run by this call
    skipped: int = 0  # trials already finished before this call
    wall_seconds: float = 0.0
    report: Optional[Path] = None

    def best(self):
        ok = [s for s in self.summary if s.n]
        return max(ok, key=lambda s: s.mean) if ok else None


def _claim_study_folder(out: Path, console) -> None:
    """A new folder, or an earlier study's (resumed: only its own trial folders and study files are written);
    any other folder that holds files is refused, so a user's files are never replaced. A file in the way or a
    read-only disk is one line."""
    from ..outdir import make_folder

    if out.is_dir() and any(out.iterdir()):
        if not ((out / STUDY_FILE).is_file() or (out / TRIALS_DIR).is_dir()):
            raise ConfigError(f"--out {out} holds files but is not a study folder (no {STUDY_FILE} or {TRIALS_DIR}/); "
                              f"pass a new folder, or the --out of an earlier `visionlab study run` to resume it")
        console.print(f"resuming the study folder {out}: finished trials are kept; only its {TRIALS_DIR}/ and its "
                      f"own study files are written", highlight=False, soft_wrap=True)
    make_folder(out, "--out")
    make_folder(out / TRIALS_DIR, "--out")


def run_study(name_or_path: str | Path | StudySpec, data: Optional[str] = None, seeds: Optional[int] = None,
              quick: bool = False, workers: Optional[int] = None, out: Optional[str | Path] = None,
              backend: str = "local", ray_address: Optional[str] = None, quiet: bool = False,
              only: Optional[Sequence[str]] = None, base: Optional[dict[str, Any]] = None) -> StudyResult:
    """Run (or continue) a study and write its results table, plots and report.

    ``name_or_path``: a built-in study (``visionlab study list``), a YAML file or a StudySpec. ``data``: a folder,
    ``cifar10`` or ``synthetic`` for every trial (default: the spec's, usually ``cifar10``). ``seeds``: run seeds
    0..N-1 instead of the spec's. ``quick``: apply the spec's quick overrides (smoke run; the report says so).
    ``workers``: parallel trials (default: one per core). ``out``: the study folder (default
    ``runs/studies/<name>[-quick]``); rerunning into the same folder continues the study. ``only``: run just the
    configurations with these labels (e.g. a cheap arm before a slow one); the others stay "not run" in the report
    until a later run without ``only`` fills them in. ``base``: fields set in the study's base for every trial
    (``{"normalize": "scale"}``); the study is then named and stored as ``<name>-<field>-<value>``.
    """
    from ..progress import console

    if backend not in ("local", "ray"):
        raise ConfigError(f"unknown backend {backend!r}; choose local or ray")
    spec = name_or_path if isinstance(name_or_path, StudySpec) else load_spec(name_or_path)
    spec = spec.with_base(base or {})
    spec.check_names()
    wanted = _only_labels(spec, only) if only else None  # checked before anything is written
    data = abs_data(data)
    seed_list = spec.resolved_seeds(quick, seeds)
    trials = spec.trials(quick=quick, seeds=seed_list, data=data)
    out = (Path(out) if out else default_out(spec, quick)).resolve()
    _claim_study_folder(out, console)
    for t in trials:
        check_folder(out, t)

    ncores = default_workers()
    workers = max(1, workers or ncores)
    t_start = time.time()
    recs = read_records(out)
    tasks, finished, pending = take_stock(out, spec, trials, recs)
    if wanted is not None:
        pending = [t for t in pending if t.label in wanted]
    workers = min(workers, max(1, len(pending)))
    threads = max(1, ncores // workers)  # cores shared out so that workers x threads never oversubscribes
    for t in pending:
        tasks[t.trial_id]["threads"] = threads
    study = study_info(out, spec, quick, seed_list, data, trials, workers, threads, backend)
    write_study(out, study)
    log_event(out / TRIALS_LOG, "session", f"{len(pending)} to run, {len(finished)} finished, backend {backend}")
    if not quiet:
        console.print(f"study [bold]{spec.name}[/]{' (quick)' if quick else ''}: {len(trials)} trials "
                      f"({plural(len(spec.arms()), 'configuration')} x {plural(len(seed_list), 'seed')}), "
                      f"{len(finished)} already done; {plural(workers, 'worker')} x "
                      f"{plural(threads, 'torch thread')} -> {out}")

    ran = 0
    if pending:
        pool = open_pool(backend, workers, threads, ray_address)
        ran = _execute(pool, pending, tasks, out, spec, trials, recs, len(finished), workers, quiet)

    write_results_csv(out, spec, trials, recs)
    wall = time.time() - t_start
    study["sessions"][-1].update(ended=stamp(), wall_seconds=round(wall, 1), ran=ran)
    write_study(out, study)
    summary, report = write_report(out)
    result = StudyResult(out, spec.name, in_order(trials, recs), summary, ran=ran, skipped=len(finished),
                         wall_seconds=wall, report=report)
    if not quiet:
        console.print(f"[green]study {spec.name} done[/] in {wall:.0f} s ({ran} trials run, {len(finished)} reused): "
                      f"{report}")
    return result


def _only_labels(spec: StudySpec, only: Sequence[str]) -> set[str]:
    """``only`` checked against the study's configuration labels (a typo would otherwise run nothing, silently)."""
    labels = [a.label for a in spec.arms()]
    unknown = [x for x in only if x not in labels]
    if unknown:
        raise ConfigError(f"study {spec.name} has no configuration {', '.join(map(repr, unknown))}; "
                          f"its labels: {', '.join(labels)}")
    return set(only)


def _execute(pool, pending: list[Trial], tasks: dict[str, dict], out: Path, spec: StudySpec, trials: list[Trial],
             recs: dict[str, dict], n_done: int, workers: int, quiet: bool) -> int:
    """Prepare the data, then run the pending trials on ``pool`` and close it; the number of trials run. On an
    error or Ctrl-C the trials in flight are cancelled (finished ones are kept) and the error goes on."""
    from ..progress import console

    try:
        _prepare(pool, pending, console, quiet)
        ran = _run_pending(pool, pending, tasks, out, spec, trials, recs, n_done, workers, quiet)
    except BaseException as e:
        pool.close(cancel=True)
        if isinstance(e, KeyboardInterrupt):
            console.print("[yellow]interrupted: finished trials are kept; rerun the same command to continue[/]")
        raise
    pool.close()
    return ran


DATA_FIELDS = ("data", "source", "val_split", "test_split", "split_ratios", "limit_per_class", "synthetic_per_class",
               "cache_dir", "seed")  # what selects and decodes a trial's images (the seed picks the splits)


def _prepare(pool, pending: list[Trial], console, quiet: bool) -> None:
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
                    cancel(other)
                raise err
            if not quiet:
                console.print(f"  data ready: {res}")


def _run_pending(pool, pending: list[Trial], tasks: dict[str, dict], out: Path, spec: StudySpec,
                 trials: list[Trial], recs: dict[str, dict], n_done: int, workers: int, quiet: bool) -> int:
    from ..progress import console, progress

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
                    rec = failed_record(tasks[t.trial_id], one_line(err))
                recs[t.trial_id] = rec
                append_record(out, rec)
                write_results_csv(out, spec, trials, recs)
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
    out = Path(path)
    info = read_study(out)
    spec = StudySpec(**info["spec"])
    trials = spec.trials(quick=info.get("quick", False), seeds=info["seeds"], data=info.get("data"))
    recs = read_records(out)
    take_stock(out, spec, trials, recs)  # trials that finished after the last record was written (a kill in between)
    write_results_csv(out, spec, trials, recs)
    summary, report = write_report(out)
    return StudyResult(out, spec.name, in_order(trials, recs), summary, report=report)
