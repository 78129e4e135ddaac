"""Run folders: everything a run needs is in its config, everything it produced is in its folder."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .config import RunConfig
from .errors import ModelError, VisionlabError

MODEL_FILE = "model.safetensors"
INFO_FILE = "model.json"


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

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        from .evaluation.metrics import predict_proba
        return predict_proba(self.model, x, batch_size)


def load_run(path: str | Path) -> LoadedRun:
    """Load a finished run's model (CPU, eval mode) with its classes and input size."""
    from .models import build
    from .training.checkpoint import load_weights

    p = Path(path)
    if not p.is_dir():
        raise ModelError(f"run folder {p} does not exist; pass a folder written by `visionlab train`")
    try:
        cfg = RunConfig.load(p / "config.yaml") if (p / "config.yaml").is_file() else None
    except VisionlabError as e:
        raise ModelError(f"cannot load run {p}: {e}") from None
    weights = "model.keras" if cfg is not None and cfg.framework == "keras" else MODEL_FILE
    for f in ("config.yaml", INFO_FILE, weights):
        if not (p / f).is_file():
            raise ModelError(f"{p} has no {f}: it is not a finished visionlab run (train it, or resume it with "
                             f"`visionlab train --resume --out {p}`)")
    info = read_json(p / INFO_FILE, "a model.json written by `visionlab train`")
    if not isinstance(info.get("classes"), list) or not info["classes"] or not isinstance(info.get("image_size"), int):
        raise ModelError(f"{p / INFO_FILE} lacks its classes or image_size; it is not the model.json of a finished "
                         f"run (train the run again)")
    try:
        metrics = read_json(p / "metrics.json", "metrics") if (p / "metrics.json").is_file() else {}
    except ModelError as e:  # metrics are a report, not needed to load the model
        print(f"warning: {e}", file=sys.stderr)
        metrics = {}
    if cfg.framework == "keras":
        from .models.keras_models import load_keras
        return LoadedRun(p, cfg, load_keras(p), list(info["classes"]), int(info["image_size"]), metrics)
    # never download weights to load a trained model: its own file holds every parameter
    build_cfg = cfg.model_copy(update={"weights": "none"})
    model = build(build_cfg, len(info["classes"]), int(info["image_size"]))
    try:
        missing, unexpected = model.load_state_dict(load_weights(p / MODEL_FILE), strict=False)
    except Exception as e:  # a truncated or foreign file
        raise ModelError(f"cannot load {p / MODEL_FILE}: {e}") from None
    if missing or unexpected:
        raise ModelError(f"{p / MODEL_FILE} does not match model {cfg.model!r} "
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
    for cfg_path in sorted(root.glob("*/config.yaml")) + sorted(root.glob("*/*/config.yaml")):
        d = cfg_path.parent
        try:
            m = read_json(d / "metrics.json", "the metrics of a run") if (d / "metrics.json").is_file() else {}
            cfg = RunConfig.load(cfg_path)
        except VisionlabError as e:
            warn(f"skipped run {d}: {e}")
            continue
        rows.append({"run": str(d), "model": cfg.model, "data": cfg.data, "optimizer": cfg.optimizer, "lr": cfg.lr,
                     "status": m.get("status", "running/killed" if (d / "checkpoint.pt").exists() else "?"),
                     "epochs": m.get("epochs_run"), "test_acc": m.get("test_acc"), "val_acc": m.get("val_acc"),
                     "seconds": m.get("train_seconds"), "mtime": d.stat().st_mtime})
    return sorted(rows, key=lambda r: -r["mtime"])
