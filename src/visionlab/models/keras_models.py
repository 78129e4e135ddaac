"""The same MLP/CNN presets built and trained with Keras 3 on its torch backend (`pip install visionlab[keras]`),
so a user can compare frameworks in one report. Training is Keras' own ``model.fit``; evaluation goes through
visionlab's code via ``KerasAdapter``, a torch module that feeds raw NCHW pixels to the Keras model."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import RunConfig
from ..errors import ConfigError, ModelError

KERAS_FILE = "model.keras"


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ModuleNotFoundError:
        raise ConfigError("framework 'keras' needs Keras 3: pip install 'visionlab[keras]'") from None
    if keras.backend.backend() != "torch":
        raise ConfigError(f"Keras runs on the {keras.backend.backend()!r} backend; set KERAS_BACKEND=torch")
    return keras


def build_keras(cfg: RunConfig, num_classes: int, image_size: int):
    from . import MODELS, input_stats

    keras = _keras()
    layers = keras.layers
    meta = MODELS.meta(cfg.model)
    if meta.get("family") not in ("mlp", "cnn"):
        raise ConfigError(f"framework 'keras' covers the mlp and cnn presets, not {cfg.model!r}")
    init = cfg.init
    keras.utils.set_random_seed(cfg.seed)
    seq = [keras.Input((image_size, image_size, 3)), layers.Rescaling(1 / 255.0)]
    mean, std = input_stats(cfg)  # the same input policy as the torch twin
    if mean is not None:
        seq.append(layers.Normalization(mean=list(mean), variance=[s * s for s in std]))

    def dense(w: int) -> None:
        seq.append(layers.Dense(w, kernel_initializer=init))
        if cfg.batchnorm:
            seq.append(layers.BatchNormalization())
        seq.append(layers.Activation(cfg.activation if cfg.activation != "leaky_relu" else "leaky_relu"))
        if cfg.dropout:
            seq.append(layers.Dropout(cfg.dropout))

    if meta["family"] == "mlp":
        seq.append(layers.Flatten())
        for w in cfg.widths or meta["widths"]:
            dense(w)
    else:
        flat = False
        for tok in meta["spec"].split("-"):
            if tok.startswith("conv"):
                seq.append(layers.Conv2D(int(tok[4:]), 3, kernel_initializer=init))
                if cfg.batchnorm:
                    seq.append(layers.BatchNormalization())
                seq.append(layers.Activation(cfg.activation))
            elif tok == "pool":
                seq.append(layers.MaxPooling2D(2))
            elif tok.startswith("fc"):
                if not flat:
                    seq.append(layers.Flatten())
                    flat = True
                dense(int(tok[2:]))
        if not flat:
            seq.append(layers.Flatten())
    seq.append(layers.Dense(num_classes, kernel_initializer=init))  # logits, like the torch models
    return keras.Sequential(seq)


def keras_optimizer(cfg: RunConfig):
    """The Keras twin of ``cfg.optimizer`` (the ``keras`` field of its training.optim registry entry)."""
    from ..training.optim import OPTIMIZERS

    make = OPTIMIZERS.meta(cfg.optimizer).get("keras")
    if make is None:
        twins = sorted(n for n in OPTIMIZERS.names() if OPTIMIZERS.meta(n).get("keras"))
        raise ConfigError(f"optimizer {cfg.optimizer!r} has no Keras twin; choose one of {twins}")
    return make(_keras().optimizers, cfg)


def _nhwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).numpy().astype(np.float32)


class KerasAdapter(nn.Module):
    """Raw uint8 NCHW pixels in, logits out, through a Keras model: visionlab's evaluation runs unchanged."""

    def __init__(self, kmodel) -> None:
        super().__init__()
        self.kmodel = kmodel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.kmodel(x.permute(0, 2, 3, 1).float(), training=False)
        return torch.as_tensor(np.asarray(y.detach().cpu() if hasattr(y, "detach") else y))


def fit_keras(cfg: RunConfig, data, run_dir: Path) -> tuple[KerasAdapter, list[dict], str]:
    """Train with ``model.fit``; returns the adapter, a visionlab-style history and the status."""
    from ..training.losses import check_loss
    from ..training.optim import effective_batch_size

    check_loss(cfg, "--framework keras")
    keras = _keras()
    km = build_keras(cfg, data.num_classes, data.image_size)
    km.compile(optimizer=keras_optimizer(cfg), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
               metrics=["accuracy"])
    n = len(data.train)
    bs = effective_batch_size(cfg, n)
    val = (_nhwc(data.val.x), data.val.y.numpy()) if data.val is not None else None
    cbs = [keras.callbacks.TerminateOnNaN()]
    if cfg.early_stopping and val is not None:
        cbs.append(keras.callbacks.EarlyStopping(monitor=cfg.monitor.replace("acc", "accuracy"), patience=cfg.patience,
                                                 restore_best_weights=cfg.restore_best))
    import time
    t = time.perf_counter()
    h = km.fit(_nhwc(data.train.x), data.train.y.numpy(), batch_size=bs, epochs=cfg.epochs, validation_data=val,
               shuffle=True, verbose=0 if cfg.quiet else 2, callbacks=cbs)
    secs = (time.perf_counter() - t) / max(1, len(h.history["loss"]))
    hist = [{"epoch": i + 1, "train_loss": h.history["loss"][i], "train_acc": h.history["accuracy"][i],
             "val_loss": h.history.get("val_loss", [float("nan")] * (i + 1))[i],
             "val_acc": h.history.get("val_accuracy", [float("nan")] * (i + 1))[i], "lr": cfg.lr,
             "seconds": round(secs, 3)} for i in range(len(h.history["loss"]))]
    status = "diverged" if any(not np.isfinite(r["train_loss"]) for r in hist) else \
        "stopped_early" if len(hist) < cfg.epochs else "ok"
    km.save(str(Path(run_dir) / KERAS_FILE))
    return KerasAdapter(km), hist, status


def load_keras(run_dir: Path) -> KerasAdapter:
    keras = _keras()
    path = Path(run_dir) / KERAS_FILE
    if not path.is_file():
        raise ModelError(f"{run_dir} has no {KERAS_FILE}")
    return KerasAdapter(keras.saving.load_model(str(path), safe_mode=True))
