"""Run folders: everything a run needs is in its config, everything it produced is in its folder."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import RunConfig
from .errors import ModelError, VisionlabError

if TYPE_CHECKING:  # torch is imported where a model is loaded, so RunFolder's users (the studies) stay light
    import numpy as np
    import torch



class RunFolder:
    """A run folder: the one place that knows its file names and reads and writes them.

    ``visionlab train`` writes config.yaml (the settled RunConfig), model.json (classes, input size),
    skipped.txt, checkpoint.pt (while training; removed when it finishes), history.csv (a row per epoch),
    model.safetensors (or model.keras), metrics.json, report.html with plots/, and detect.json when the data
    were face crops cut by ``visionlab data faces``. ``visionlab export`` adds model.onnx.
    """

    CONFIG, INFO, SKIPPED, HISTORY = "config.yaml", "model.json", "skipped.txt", "history.csv"
    CHECKPOINT, WEIGHTS, KERAS_WEIGHTS = "checkpoint.pt", "model.safetensors", "model.keras"
    METRICS, REPORT, PLOTS, PROFILE, ONNX = "metrics.json", "report.html", "plots", "detect.json", "model.onnx"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    config = property(lambda self: self.path / self.CONFIG)
    info = property(lambda self: self.path / self.INFO)
    history = property(lambda self: self.path / self.HISTORY)
    checkpoint = property(lambda self: self.path / self.CHECKPOINT)
    weights = property(lambda self: self.path / self.WEIGHTS)
    metrics = property(lambda self: self.path / self.METRICS)
    report = property(lambda self: self.path / self.REPORT)
    profile = property(lambda self: self.path / self.PROFILE)
    onnx = property(lambda self: self.path / self.ONNX)

    def weights_for(self, cfg: RunConfig) -> Path:
        return self.path / (self.KERAS_WEIGHTS if cfg.framework == "keras" else self.WEIGHTS)

    def is_finished(self) -> bool:
        """Trained to the end: weights or metrics written and no checkpoint left to resume."""
        return not self.checkpoint.exists() and (self.weights.exists() or self.metrics.exists())

    # writes (atomic: a crash leaves the old file or none)
    def write_config(self, cfg: RunConfig) -> None:
        from .io import atomic_write_text
        atomic_write_text(self.config, cfg.to_yaml())

    def write_info(self, model: str, classes: list[str], image_size: int) -> None:
        from .io import write_json
        write_json(self.info, {"model": model, "classes": classes, "image_size": image_size,
                               "input": "float32 or uint8 N x 3 x S x S, RGB, 0..255 (normalised inside)"})

    def write_skipped(self, skipped: list[tuple[str, str]]) -> None:
        from .io import atomic_write_text
        atomic_write_text(self.path / self.SKIPPED, "".join(f"{p}\t{r}\n" for p, r in skipped))

    def write_history(self, history: list[dict]) -> None:
        from .io import write_csv
        if history:
            write_csv(self.history, history)

    def write_metrics(self, metrics: dict) -> None:
        from .io import write_json
        write_json(self.metrics, metrics)

    def save_weights(self, state: dict) -> None:
        from .training.checkpoint import save_weights
        save_weights(self.weights, state)

    def copy_profile(self, source: Path) -> None:
        from .io import atomic_write_bytes
        atomic_write_bytes(self.profile, Path(source).read_bytes())

    # reads (one ModelError line for a corrupt file)
    def read_config(self) -> RunConfig:
        return RunConfig.load(self.config)

    def read_info(self) -> dict:
        return read_json(self.info, "a model.json written by `visionlab train`")

    def read_metrics(self, warn=None) -> dict:
        """metrics.json, or {} when absent; a corrupt one is reported through ``warn`` (else raised)."""
        if not self.metrics.is_file():
            return {}
        try:
            return read_json(self.metrics, "the metrics of a run")
        except ModelError as e:
            if warn is None:
                raise
            warn(str(e))
            return {}


MODEL_FILE = RunFolder.WEIGHTS
INFO_FILE = RunFolder.INFO


def new_run_dir(cfg: RunConfig) -> Path:
    if cfg.out:
        return Path(cfg.out)
    name = cfg.name or f"{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = Path("runs") / name
    i = 1
    while path.exists():
        i += 1
        path = Path("runs") / f"{name}-{i}"
    return path


@dataclass
class LoadedRun:
    path: Path
    config: RunConfig
    model: torch.nn.Module
    classes: list[str]
    image_size: int
    metrics: dict = field(default_factory=dict)

    def predict_proba(self, x: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        import torch

        from .models.proba import predict_proba
        with torch.no_grad():
            return predict_proba(self.model, x, batch_size)


def resolve_run(path: str | Path) -> Path:
    """``path``, or ``path/model`` where ``path`` is not a run but keeps its current run there (an active-learning
    face project, ``visionlab active init --photos``), so `--model PROJECT` and `serve PROJECT` work."""
    p = Path(path)
    if p.is_dir() and not (p / INFO_FILE).is_file() and (p / "model" / INFO_FILE).is_file():
        return p / "model"
    return p


def load_run(path: str | Path) -> LoadedRun:
    """Load a finished run's model (CPU, eval mode) with its classes and input size."""
    from .models import build
    from .training.checkpoint import load_weights

    folder = RunFolder(resolve_run(path))
    p = folder.path
    if not p.is_dir():
        raise ModelError(f"run folder {p} does not exist; pass a folder written by `visionlab train`")
    try:
        cfg = folder.read_config() if folder.config.is_file() else None
    except VisionlabError as e:
        raise ModelError(f"cannot load run {p}: {e}") from None
    weights = folder.weights_for(cfg) if cfg is not None else folder.weights
    for f in (folder.config, folder.info, weights):
        if not f.is_file():
            raise ModelError(f"{p} has no {f.name}: it is not a finished visionlab run (train it, or resume it with "
                             f"`visionlab train --resume --out {p}`)")
    info = folder.read_info()
    if not isinstance(info.get("classes"), list) or not info["classes"] or not isinstance(info.get("image_size"), int):
        raise ModelError(f"{folder.info} lacks its classes or image_size; it is not the model.json of a finished "
                         f"run (train the run again)")
    # metrics are a report, not needed to load the model
    metrics = folder.read_metrics(warn=lambda line: print(f"warning: {line}", file=sys.stderr))
    if cfg.framework == "keras":
        from .models.keras_models import load_keras
        return LoadedRun(p, cfg, load_keras(p), list(info["classes"]), int(info["image_size"]), metrics)
    # never download weights to load a trained model: its own file holds every parameter
    build_cfg = cfg.model_copy(update={"weights": "none"})
    model = build(build_cfg, len(info["classes"]), int(info["image_size"]))
    try:
        missing, unexpected = model.load_state_dict(load_weights(weights), strict=False)
    except Exception as e:  # a truncated or foreign file
        raise ModelError(f"cannot load {weights}: {e}") from None
    if missing or unexpected:
        raise ModelError(f"{weights} does not match model {cfg.model!r} "
                         f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)")
    model.eval()
    return LoadedRun(p, cfg, model, list(info["classes"]), int(info["image_size"]), metrics)


def read_json(path: Path, what: str) -> dict:
    """A JSON object from ``path``, or one ``ModelError`` line saying the file is corrupt."""
    try:
        obj = json.loads(Path(path).read_bytes())
    except OSError as e:
        raise ModelError(f"{path} cannot be read ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelError(f"{path} is corrupt (not valid JSON: {e}); expected {what}") from None
    if not isinstance(obj, dict):
        raise ModelError(f"{path} is corrupt (a JSON {type(obj).__name__}, not an object); expected {what}")
    return obj


def list_runs(root: str | Path = "runs", warn=None) -> list[dict]:
    """One row per run folder under ``root`` (recursively one level), newest first. A run whose config.yaml
    or metrics.json is corrupt is left out with a warning (``warn(line)``, default: stderr)."""
    warn = warn or (lambda line: print(f"warning: {line}", file=sys.stderr))
    rows = []
    root = Path(root)
    if not root.is_dir():
        return rows
    for cfg_path in sorted(root.glob(f"*/{RunFolder.CONFIG}")) + sorted(root.glob(f"*/*/{RunFolder.CONFIG}")):
        folder = RunFolder(cfg_path.parent)
        d = folder.path
        try:
            m = folder.read_metrics()
            cfg = folder.read_config()
        except VisionlabError as e:
            warn(f"skipped run {d}: {e}")
            continue
        rows.append({"run": str(d), "model": cfg.model, "data": cfg.data, "optimizer": cfg.optimizer, "lr": cfg.lr,
                     "status": m.get("status", "running/killed" if folder.checkpoint.exists() else "?"),
                     "epochs": m.get("epochs_run"), "test_acc": m.get("test_acc"), "val_acc": m.get("val_acc"),
                     "seconds": m.get("train_seconds"),
                     **{k: m.get(k) for k in ("setup_seconds", "train_seconds", "evaluation_seconds", "total_seconds")},
                     "mtime": d.stat().st_mtime})
    return sorted(rows, key=lambda r: -r["mtime"])
