"""Experiment tracking (``--track tensorboard,mlflow``): a registry of trackers the trainer calls at each
epoch's end, and ``api.train`` at the start (the config) and the end (final metrics and the report).

Where the logs go:
- tensorboard: ``<run folder>/tensorboard/`` (``tensorboard --logdir runs`` shows every run under runs/);
- mlflow: the tracking URI in ``$MLFLOW_TRACKING_URI`` when set, else a local store in the folder that holds the
  run folder, shared by the runs beside it: ``runs/mlflow.db`` (SQLite: MLflow 3 refuses its old ``./mlruns``
  file store unless MLFLOW_ALLOW_FILE_STORE is set) with artifacts in ``runs/mlartifacts/``; browse with
  ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``. Experiment ``visionlab``, one MLflow run per run
  folder, named after it.

Both libraries come with the optional extra ``visionlab[track]``; asking for one that is not installed is a
one-line ConfigError before any data is loaded.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Protocol

from ..config import RunConfig
from ..errors import ConfigError
from ..registry import Registry


class Tracker(Protocol):
    """What the trainer and ``api.train`` call; each method is given everything it logs."""

    def start(self, cfg: RunConfig, run_dir: Path) -> None: ...
    def log_epoch(self, row: dict) -> None: ...
    def finish(self, metrics: dict, run_dir: Path) -> None: ...
    def where(self) -> str: ...


TRACKERS: Registry[type] = Registry("tracker")


def _numbers(d: dict, prefix: str = "") -> dict[str, float]:
    """The finite numbers of a (nested) dict, flattened to ``a/b`` keys (booleans and text left out)."""
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_numbers(v, key + "/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[key] = float(v)
    return out


def _params(cfg: RunConfig) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in cfg.model_dump(mode="json").items()}


EPOCH_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "train_img_per_s")


@TRACKERS.register("tensorboard", package="tensorboard")
class TensorBoardTracker:
    """Scalars per epoch (``train/loss``, ``val/acc``, ...), the config as text and hparams, the final metrics
    as scalars and hparams metrics, and a text summary that links the report."""

    def __init__(self) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

        self._writer_cls = SummaryWriter
        self.writer = None
        self.cfg: RunConfig | None = None

    def start(self, cfg: RunConfig, run_dir: Path) -> None:
        self.cfg = cfg
        self.writer = self._writer_cls(log_dir=str(Path(run_dir) / "tensorboard"))
        self.writer.add_text("config", "```\n" + cfg.to_yaml() + "\n```", 0)

    def log_epoch(self, row: dict) -> None:
        step = int(row["epoch"])
        for k in EPOCH_KEYS:
            v = row.get(k)
            if isinstance(v, (int, float)) and math.isfinite(v):
                split, _, name = k.partition("_")
                self.writer.add_scalar(f"{split}/{name}" if split in ("train", "val") else k, v, step)
        self.writer.flush()

    def finish(self, metrics: dict, run_dir: Path) -> None:
        final = {f"final/{k}": v for k, v in _numbers({k: v for k, v in metrics.items() if k != "compute"}).items()}
        step = int(metrics.get("epochs_run") or 0)
        for k, v in final.items():
            self.writer.add_scalar(k, v, step)
        hp = {k: (v if isinstance(v, (int, float, str, bool)) else str(v))
              for k, v in self.cfg.model_dump(mode="json").items() if v is not None}
        keep = {k: v for k, v in final.items() if k.split("/", 1)[1] in
                ("test_acc", "val_acc", "val_loss", "final_train_loss", "test/f1", "test/roc_auc")}
        self.writer.add_hparams(hp, keep, run_name=".")  # "." keeps the hparams in this run's own folder
        report = Path(run_dir) / "report.html"
        lines = ["| metric | value |", "|---|---|"] + [f"| {k[6:]} | {v:.6g} |" for k, v in final.items()]
        where = f"\n\nreport: `{report}`" if report.is_file() else ""
        self.writer.add_text("report", f"status: {metrics.get('status')}\n\n" + "\n".join(lines) + where, step)
        self.writer.close()

    def where(self) -> str:
        return f"tensorboard --logdir {self.writer.log_dir if self.writer else '?'}"


def mlflow_store(run_dir: Path) -> tuple[str, str]:
    """(tracking URI, artifact location for a new experiment): ``$MLFLOW_TRACKING_URI`` (its own artifact
    default), else ``mlflow.db`` and ``mlartifacts/`` beside the run folder."""
    home = Path(run_dir).resolve().parent
    env = os.environ.get("MLFLOW_TRACKING_URI")
    return (env, None) if env else (f"sqlite:///{home / 'mlflow.db'}", (home / "mlartifacts").as_uri())


@TRACKERS.register("mlflow", package="mlflow")
class MlflowTracker:
    """Params (the config), metrics per epoch (step = epoch), final metrics, and the run folder's config.yaml,
    history.csv, metrics.json, report.html and plots as artifacts, through ``MlflowClient`` (no global state)."""

    EXPERIMENT = "visionlab"

    def __init__(self) -> None:
        from mlflow.tracking import MlflowClient

        self._client_cls = MlflowClient
        self.client = None
        self.run_id = ""

    def start(self, cfg: RunConfig, run_dir: Path) -> None:
        import logging

        for name in ("mlflow.store.db.utils", "alembic"):  # "Creating initial MLflow database tables..." on every new store
            logging.getLogger(name).setLevel(logging.WARNING)
        uri, artifacts = mlflow_store(run_dir)
        self.client = self._client_cls(tracking_uri=uri)
        exp = self.client.get_experiment_by_name(self.EXPERIMENT)
        exp_id = exp.experiment_id if exp is not None else \
            self.client.create_experiment(self.EXPERIMENT, artifact_location=artifacts)
        run = self.client.create_run(exp_id, run_name=Path(run_dir).name, tags={"visionlab.run_dir": str(run_dir)})
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        params = [Param(k, v[:6000]) for k, v in _params(cfg).items()]  # MLflow's limit on a param's length
        self.client.log_batch(self.run_id, params=params)

    def log_epoch(self, row: dict) -> None:
        from mlflow.entities import Metric
        import time

        now, step = int(time.time() * 1000), int(row["epoch"])
        ms = [Metric(k, float(row[k]), now, step) for k in EPOCH_KEYS
              if isinstance(row.get(k), (int, float)) and math.isfinite(row[k])]
        self.client.log_batch(self.run_id, metrics=ms)

    def finish(self, metrics: dict, run_dir: Path) -> None:
        from mlflow.entities import Metric
        import time

        now = int(time.time() * 1000)
        step = int(metrics.get("epochs_run") or 0)
        ms = [Metric(f"final_{k.replace('/', '_')}", v, now, step)
              for k, v in _numbers({k: v for k, v in metrics.items() if k != "compute"}).items()]
        self.client.log_batch(self.run_id, metrics=ms)
        run_dir = Path(run_dir)
        for name in ("config.yaml", "history.csv", "metrics.json", "report.html"):
            if (run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(run_dir / name))
        if (run_dir / "plots").is_dir():
            self.client.log_artifacts(self.run_id, str(run_dir / "plots"), "plots")
        status = "FAILED" if metrics.get("status") == "diverged" else "FINISHED"
        self.client.set_terminated(self.run_id, status)

    def where(self) -> str:
        return f"mlflow ui --backend-store-uri {self.client.tracking_uri} (run {self.run_id})"


def open_trackers(names: Iterable[str]) -> list[Tracker]:
    """The trackers ``--track`` names, built now so that a missing library is said before any work starts."""
    out = []
    for name in dict.fromkeys(names):
        cls = TRACKERS.get(name)
        try:
            out.append(cls())
        except ImportError:
            pkg = TRACKERS.meta(name)["package"]
            raise ConfigError(f"--track {name} needs the {pkg} package: pip install 'visionlab[track]'") from None
    return out


class Trackers:
    """Several trackers as one: what ``fit`` and ``api.train`` hold."""

    def __init__(self, trackers: list[Any]) -> None:
        self.items = trackers

    def start(self, cfg: RunConfig, run_dir: Path) -> None:
        for t in self.items:
            t.start(cfg, run_dir)

    def log_epoch(self, row: dict) -> None:
        for t in self.items:
            t.log_epoch(row)

    def finish(self, metrics: dict, run_dir: Path) -> None:
        for t in self.items:
            t.finish(metrics, run_dir)

    def where(self) -> list[str]:
        """How to look at each tracker's logs (a command line each)."""
        return [t.where() for t in self.items]
