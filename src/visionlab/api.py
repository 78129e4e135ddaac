"""The Python API. Its verbs and keywords mirror the CLI: ``visionlab train --model cnn`` is
``visionlab.train(model="cnn")``."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from .config import RunConfig
from .errors import ConfigError
from .progress import console
from .resolve import resolve
from .runs import RunFolder, list_runs, load_run, new_run_dir
from .timing import PhaseClock


@dataclass
class RunResult:
    path: Path
    status: str
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)

    @property
    def test_acc(self) -> Optional[float]:
        return self.metrics.get("test_acc")


def _setup_torch(cfg: RunConfig) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)


def load_data(cfg: RunConfig, image_size: Optional[int] = None):
    from . import data as data_mod
    from .resolve import image_size as settled_size

    return data_mod.build(cfg, image_size=cfg.image_size or image_size or settled_size(cfg))


def train(config: RunConfig | dict | str | Path | None = None, *, resume: bool = False, **fields: Any) -> RunResult:
    """Train a model as the config says and evaluate it; returns the run folder and its metrics.

    ``config`` may be a RunConfig, a dict or a YAML file; keywords override it. ``resume=True`` continues the
    run in ``out`` from its last checkpoint, with the config saved there.
    """
    from . import models
    from .training.trainer import fit

    clock = PhaseClock()
    if isinstance(config, (str, Path)):
        config = RunConfig.load(config)
    asked = {**(config.model_dump(exclude_defaults=True) if isinstance(config, RunConfig) else dict(config or {})),
             **{k: v for k, v in fields.items() if v is not None}}  # what the caller set, for --resume's message
    cfg = resolve(RunConfig.build(config, **fields))  # recipe applied and printed, names checked, image size fixed
    rank = int(os.environ.get("RANK", "0"))
    # a missing tracking library is said before any folder is made or data loaded (a resumed run: its saved --track)
    trackers = _trackers(cfg) if rank == 0 and not resume else None
    folder = RunFolder(new_run_dir(cfg))
    cfg = _settle_folder(cfg, folder, resume, asked, rank)  # --resume: the saved config, --data included
    if cfg.data is None:
        raise ConfigError("no --data given: pass an image folder (class folders), 'cifar10', or 'synthetic' for "
                          "generated images")
    _setup_torch(cfg)
    if rank == 0 and resume:
        trackers = _trackers(cfg)

    data = load_data(cfg)
    if not cfg.quiet and rank == 0:
        console.print(f"data: {data.location or data.source}, {len(data.classes)} classes, "
                      + ", ".join(f"{k} {len(v)}" for k, v in data.splits().items())
                      + f" images, ready after {clock.elapsed():.1f} s", highlight=False, soft_wrap=True)
    cfg = models.with_input_stats(cfg, data.train.x)  # recorded in config.yaml: evaluate/predict/export rebuild the same input layer
    torch.manual_seed(cfg.seed)
    kind = models.training_kind(cfg)  # torch | numpy | keras: how this model trains, read once from the registry
    model = models.build(cfg, data.num_classes, data.image_size) if kind != "keras" else None
    if rank != 0:  # other torchrun ranks train; rank 0 alone writes the run folder
        result = fit(cfg, model, data, folder.path, resume=resume, kind=kind)
        return RunResult(folder.path, result.status, result.history, {})
    _start_folder(cfg, folder, data)
    clock.lap("setup")
    if trackers is not None:
        trackers.start(cfg, folder.path)
    model, result = _fit(cfg, kind, model, data, folder, resume, trackers)
    clock.lap("training", moved={"setup": result.setup_seconds})  # a frozen backbone's features are setup
    metrics = _metrics(cfg, model, data, folder, result, clock)
    metrics.update(clock.seconds())
    folder.write_metrics(metrics)
    if trackers is not None:
        trackers.finish(metrics, folder.path)
        if not cfg.quiet:
            console.print("tracked: " + "; ".join(trackers.where()), highlight=False, soft_wrap=True)
    folder.checkpoint.unlink(missing_ok=True)  # finished: model.safetensors and history.csv hold the rest
    return RunResult(folder.path, result.status, result.history, metrics)


def _settle_folder(cfg: RunConfig, folder: RunFolder, resume: bool, asked: dict, rank: int) -> RunConfig:
    """The config the run trains with: its saved config.yaml when resuming (flags that differ are named and
    ignored), else ``cfg``; refuses to resume nothing, to resume a finished run, or to overwrite a run."""
    run_dir = folder.path
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and cfg.out is None:
        raise ConfigError("under torchrun pass --out: every rank must write to (and resume from) the same folder")
    if resume:
        if not folder.config.is_file():
            raise ConfigError(f"nothing to resume in {run_dir}: pass --out with the folder of the interrupted run")
        saved = folder.read_config()
        ignored = [f"--{k.replace('_', '-')} {v} (the run has {getattr(saved, k)})" for k, v in sorted(asked.items())
                   if k not in ("out", "quiet") and k in RunConfig.model_fields and getattr(saved, k) != v]
        if ignored:
            console.print(f"[yellow]--resume continues {run_dir} with its saved config.yaml; ignoring "
                          f"{', '.join(ignored)}. To train with other settings, start a new run with another --out.[/]",
                          highlight=False, soft_wrap=True)
        if not folder.checkpoint.exists():
            if folder.is_finished():
                raise ConfigError(f"{run_dir} is a finished run (no checkpoint.pt left to resume); nothing to do. "
                                  f"To train longer or differently, start a new run with another --out")
            console.print(f"[yellow]{run_dir} has no checkpoint yet (killed before its first epoch ended): "
                          f"training it from the start with its saved config[/]", highlight=False, soft_wrap=True)
        cfg = saved.model_copy(update={"quiet": cfg.quiet})
    elif rank == 0 and (folder.checkpoint.exists() or folder.weights.exists()):
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    if rank == 0:  # before the data is loaded: --out that is a file or on a read-only disk is one line
        from .outdir import make_folder

        make_folder(run_dir, "--out")
    return cfg.model_copy(update={"out": str(run_dir)})


def _start_folder(cfg: RunConfig, folder: RunFolder, data) -> None:
    """What a run folder holds before training: config, classes, unreadable files, the detection profile."""
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.write_config(cfg)
    folder.write_info(cfg.model, data.classes, data.image_size)
    folder.write_skipped(data.skipped)
    if data.skipped:
        console.print(f"[yellow]skipped {len(data.skipped)} unreadable files (listed in {folder / folder.SKIPPED})")
    profile = Path(str(cfg.data)) / RunFolder.PROFILE  # face crops from `visionlab data faces`: detect as they were cut
    if profile.is_file():
        folder.copy_profile(profile)


def _trackers(cfg: RunConfig):
    """``--track``'s trackers as one (tracking.Trackers), or None when none is asked for."""
    if not cfg.track:
        return None
    from .training.tracking import Trackers, open_trackers

    return Trackers(open_trackers(cfg.track))


def _fit(cfg: RunConfig, kind: str, model, data, folder: RunFolder, resume: bool, trackers=None):
    """Train by the model's training kind; torch and NumPy models go through ``fit``, Keras through its own fit."""
    from .training.trainer import FitResult, fit

    if kind == "keras":
        from .models.keras_models import fit_keras

        model, hist, status = fit_keras(cfg, data, folder.path)
        folder.write_history(hist)
        for row in hist if trackers is not None else ():  # Keras trains in its own loop: epochs logged after it
            trackers.log_epoch(row)
        return model, FitResult(status, hist, len(hist))
    result = fit(cfg, model, data, folder.path, resume=resume, kind=kind, trackers=trackers)
    model.to("cpu")
    folder.save_weights(model.state_dict())
    return model, result


def _metrics(cfg: RunConfig, model, data, folder: RunFolder, result, clock: PhaseClock) -> dict[str, Any]:
    """metrics.json: training figures, then the evaluation on the test split (unless the run diverged)."""
    from .evaluation import evaluate_model

    last = result.history[-1] if result.history else {}
    metrics: dict[str, Any] = {
        "status": result.status, "epochs_run": len(result.history), "best_epoch": result.best_epoch,
        "epoch_seconds": round(sum(h["seconds"] for h in result.history), 2),
        "final_train_loss": last.get("train_loss"), "final_train_acc": last.get("train_acc"),
        "val_acc": last.get("val_acc"), "val_loss": last.get("val_loss"),
        "images": {k: len(s) for k, s in data.splits().items()}, "skipped": len(data.skipped),
    }
    if result.compute:
        metrics["compute"] = result.compute
    if result.status == "diverged":
        console.print(f"[red]the loss became NaN, infinite or exploded at epoch {len(result.history)}: run marked diverged "
                      f"(lower --lr); history kept in {folder.history}")
        clock.lap("evaluation")
        return metrics
    ev = evaluate_model(model, data, folder.path, history=result.history, positive_class=cfg.positive_class,
                        title=f"{cfg.model} on {Path(str(cfg.data)).name}", config_yaml=cfg.to_yaml(),
                        extra_summary=lambda: {"status": result.status, "epochs": len(result.history),
                                               **clock.summary(running="evaluation")}, quiet=cfg.quiet,
                        full=cfg.report == "full")
    clock.lap("evaluation")
    metrics["test_acc"] = ev["accuracy"] if data.test is not None else None
    metrics["test"] = ev
    if result.history and cfg.early_stopping and cfg.restore_best:
        best = result.history[result.best_epoch - 1]
        metrics["val_acc"], metrics["val_loss"] = best["val_acc"], best["val_loss"]
    return metrics


def lr_find(config: RunConfig | dict | str | Path | None = None, *, start_lr: float = 1e-7, end_lr: float = 10.0,
            steps: int = 100, **fields: Any):
    """The learning-rate range test (fastai's ``lr_find``) for the model, data and optimizer a ``train`` with the
    same config would use; writes lr_find.png/.csv/.json into ``out`` (default runs/lr-find-<model>-<time>) and
    returns a ``training.lr_find.LRFindResult`` with ``suggested`` (see that module for the rule)."""
    import time

    from . import models
    from .io import write_csv, write_json
    from .training.lr_find import plot, run_range_test
    from .training.trainer import prepare

    if isinstance(config, (str, Path)):
        config = RunConfig.load(config)
    cfg = resolve(RunConfig.build(config, **fields))
    folder = Path(cfg.out) if cfg.out else Path("runs") / f"lr-find-{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    files = {"png": folder / "lr_find.png", "csv": folder / "lr_find.csv", "json": folder / "lr_find.json"}
    taken = [str(f) for f in files.values() if f.exists()]
    if taken:
        raise ConfigError(f"{folder} already holds an LR finder result ({taken[0]}); pass another --out")
    kind = models.training_kind(cfg)
    if kind == "keras":
        raise ConfigError("lr-find runs the torch trainer; drop --framework keras (the Keras twin has the same "
                          "model and optimizer)")
    _setup_torch(cfg)
    data = load_data(cfg)
    cfg = models.with_input_stats(cfg, data.train.x)
    torch.manual_seed(cfg.seed)
    model = models.build(cfg, data.num_classes, data.image_size)
    plan = prepare(cfg, model, data, kind)
    res = run_range_test(plan, start_lr, end_lr, steps, quiet=cfg.quiet)
    if len(res.lrs) < 5:
        raise ConfigError(f"the loss was not finite from the first steps at --start-lr {start_lr}; lower it")
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(files["csv"], [{"lr": a, "loss": b, "smoothed": c} for a, b, c in zip(res.lrs, res.losses, res.smoothed)])
    write_json(files["json"], {**res.summary(), "model": cfg.model, "optimizer": cfg.optimizer,
                               "batch_size": cfg.batch_size, "data": str(cfg.data)})
    plot(res, files["png"], title=f"LR range test: {cfg.model}, {cfg.optimizer}, batch {cfg.batch_size} on "
                                  f"{Path(str(cfg.data)).name}")
    res.files = files
    return res


SPLITS = ("train", "val", "test")


def evaluate(run: str | Path, data: Optional[str] = None, out: Optional[str | Path] = None, split: str = "test",
             tta: bool = False, quiet: bool = False, slices: Optional[str | Path] = None, **fields: Any) -> dict:
    """Evaluate a finished run on the ``split`` (train, val or test) of ``data`` (default: the run's own data;
    a folder without splits is evaluated whole) and write metrics, plots and a report. ``tta`` averages each
    image's probabilities with its mirror image's.

    ``slices``: a CSV of 0/1 tags per image (``evaluation/slices.py``): recall and precision per class on each
    tagged kind of image, in ``metrics["slices"]`` and the report."""
    from .evaluation import evaluate_model
    from .evaluation.slices import read_tag_file

    if split not in SPLITS:
        raise ConfigError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    tags = read_tag_file(slices) if slices is not None else None  # a bad tag file fails before any work
    loaded = load_run(run)
    cfg = loaded.config.model_copy(update={"quiet": quiet})
    cfg = RunConfig.build(cfg, data=data, **fields)
    whole = False
    if data is not None:
        cfg = cfg.model_copy(update={"split_ratios": None, "limit_per_class": None})
        if Path(data).expanduser().is_dir():
            from .data.checks import check_layout
            # a folder of class folders is new data: every image is evaluated, none held out for training
            whole = not check_layout(data).is_split
            if whole:
                cfg = cfg.model_copy(update={"val_split": 0.0, "test_split": 0.0})
    ds = load_data(cfg.model_copy(update={"image_size": loaded.image_size}))
    if ds.classes != loaded.classes:
        raise ConfigError(f"{data} has classes {ds.classes} but the run was trained on {loaded.classes}")
    if whole and split != "test":
        raise ConfigError(f"--split {split}: {data} has no splits (every image is evaluated); leave out --split, "
                          f"or pass a folder with train/val/test folders")
    if whole:
        from dataclasses import replace

        from .data.types import Split
        parts = [s for s in (ds.train, ds.val, ds.test) if s is not None and len(s)]
        paths = [p for s in parts for p in (s.paths or [])]
        every = Split(torch.cat([s.x for s in parts]), torch.cat([s.y for s in parts]),
                      paths if len(paths) == sum(len(s) for s in parts) else None)
        ds = replace(ds, val=None, test=every)
        if not quiet:
            console.print(f"evaluating on all {len(every)} images of {data}"
                          f"{f' ({len(ds.skipped)} unreadable skipped)' if ds.skipped else ''}", highlight=False)
    elif getattr(ds, split) is None or not len(getattr(ds, split)):
        raise ConfigError(f"--split {split}: the data has no {split} split")
    elif not quiet:
        console.print(f"evaluating on the {split} split of {data or cfg.data}: {len(getattr(ds, split))} images",
                      highlight=False)
    from .outdir import claim_out

    # an existing folder's files are never replaced: a second evaluation goes into a new sub-folder, said
    out_dir = claim_out(Path(out) if out else loaded.path / ("eval" if split == "test" else f"eval-{split}"),
                        "evaluate")
    m = evaluate_model(loaded.model, ds, out_dir, positive_class=cfg.positive_class, split=split, tta=tta,
                       quiet=quiet, slices=tags, title=f"{cfg.model} evaluated on "
                                       + (f"all of {Path(str(cfg.data)).name}" if whole
                                          else f"the {split} split of {Path(str(cfg.data)).name}")
                                       + (" (flip TTA)" if tta else ""))
    RunFolder(out_dir).write_metrics(m)
    m["out_dir"] = str(out_dir)
    return m


def runs(root: str | Path = "runs") -> list[dict]:
    """The run folders under ``root`` with their key metrics, newest first."""
    return list_runs(root)
