"""The one typed config that flows from the CLI (or the Python API, or a study grid) to the trainer.

It is flat on purpose: every field is a CLI flag of the same name (``lr`` is ``--lr``), a keyword of
``visionlab.train`` and a key a study can put in its grid. A run folder keeps it as ``config.yaml``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError


def validation_message(e: ValidationError, root: str = "") -> str:
    """pydantic's errors as one readable line: ``field: what is wrong; ...``."""
    return "; ".join(f"{'.'.join(map(str, err['loc'])) or root}: {err['msg']}" for err in e.errors())


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    # --- run ------------------------------------------------------------------------------------
    name: Optional[str] = Field(None, description="run name; default <model>-<time>")
    out: Optional[str] = Field(None, description="run folder; default runs/<name> under the current folder")
    seed: int = Field(0, description="seed for splits, initialisation, shuffling and dropout")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    threads: Optional[int] = Field(None, ge=1, description="torch CPU threads; default all cores")
    quiet: bool = Field(False, description="no progress (bars in a terminal, periodic lines in a log) and no notes")
    track: list[Literal["tensorboard", "mlflow"]] = Field(
        default_factory=list, description="log config, epochs, final metrics and the report to tensorboard and/or "
                                          "mlflow (repeat the flag or give a comma list; pip install 'visionlab[track]')")
    report: Literal["full", "metrics"] = Field(
        "full", description="full: plots, Grad-CAM and report.html after training; metrics: metrics.json only (studies)")

    # --- data -----------------------------------------------------------------------------------
    data: Optional[str] = Field(None, description="required to train: an image folder (class folders), 'cifar10' "
                                                   "(torchvision cache) or 'synthetic' (generated images)")
    source: Literal["auto", "folder", "cifar10", "synthetic"] = Field(
        "auto", description="how to read --data; auto: from what it names")
    image_size: Optional[int] = Field(None, ge=8, description="square side images are resized to; default per model")
    val_split: float = Field(0.1, ge=0.0, lt=1.0, description="share of train held out when the data has no validation split")
    test_split: float = Field(0.15, ge=0.0, lt=1.0, description="share held out for test when the data has no test split")
    split_ratios: Optional[tuple[float, float, float]] = Field(
        None, description="pool every image and re-split train:val:test by these ratios"
    )
    limit_per_class: Optional[int] = Field(None, ge=1, description="keep at most this many train images per class")
    positive_class: Optional[str] = Field(None, description="class treated as positive in binary metrics")
    synthetic_per_class: int = Field(300, ge=4, description="--data synthetic: images per class")
    cache_dir: Optional[str] = Field(None, description="decoded-image cache; default $VISIONLAB_CACHE or ~/.cache/visionlab")
    augment: bool = Field(False, description="random crop with padding and horizontal flip on training batches")
    augment_policy: str = Field("crop_flip", description="with --augment: crop_flip, or faces (also brightness, "
                                "contrast, gamma and a horizontal squeeze per image: dark and turned faces)")

    # --- model ----------------------------------------------------------------------------------
    model: str = Field("cnn_baseline", description="a name from `visionlab models`")
    framework: Literal["torch", "keras"] = Field(
        "torch", description="keras: the same mlp/cnn presets built and fit with Keras 3 (torch backend)")
    widths: Optional[list[int]] = Field(None, description="hidden widths for model 'mlp'; channels for 'cnn'")
    activation: str = Field("relu", description="hidden-layer activation (a wrong name lists the choices)")
    init: str = Field("glorot_uniform", description="weight initialiser (a wrong name lists the choices)")
    batchnorm: bool = Field(False, description="batch normalisation after each hidden layer")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout rate of the hidden layers")
    normalize: Literal["auto", "dataset", "scale"] = Field(
        "auto", description="input scaling: dataset = per-channel mean/std of the training images; scale = /255 only "
                            "(Keras' Rescaling, the dissertation's notebooks); auto = the model's own statistics "
                            "(pretrained backbones: ImageNet's), else dataset")
    input_mean: Optional[tuple[float, float, float]] = Field(
        None, description="per-channel input mean on the 0..1 scale; measured on the training images when not given")
    input_std: Optional[tuple[float, float, float]] = Field(
        None, description="per-channel input std on the 0..1 scale; measured on the training images when not given")
    weights: str = Field("imagenet", description="backbones: imagenet, none or a file path")
    mode: Literal["frozen", "finetune", "full"] = Field(
        "frozen", description="pretrained backbones: frozen = train the head only; finetune = also the last blocks; full = all")
    finetune_blocks: int = Field(2, ge=0, description="finetune mode: how many of the last blocks to unfreeze")
    feature_cache: bool = Field(True, description="frozen mode: run the backbone once and train the head on cached features")
    finetune_lr_scale: float = Field(0.1, gt=0.0, description="finetune mode: backbone lr = lr * this")

    # --- training -------------------------------------------------------------------------------
    optimizer: str = Field("minibatch_sgd", description="sgd, minibatch_sgd, gd, adam, ... (a wrong name lists the choices)")
    lr: float = Field(0.01, gt=0.0, description="learning rate")
    batch_size: int = Field(64, ge=1, description="images per step")
    epochs: int = Field(10, ge=1, description="passes over the training split")
    schedule: Literal["constant", "step", "cosine", "onecycle"] = Field(
        "constant", description="learning-rate schedule over the run")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum")
    weight_decay: float = Field(0.0, ge=0.0, description="the optimizer's decoupled weight decay")
    l1: float = Field(0.0, ge=0.0, description="L1 penalty on weights, added to the loss")
    l2: float = Field(0.0, ge=0.0, description="L2 penalty on weights, added to the loss (Keras style)")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="cross-entropy label smoothing")
    loss: str = Field("cross_entropy", description="the training loss: cross_entropy, balanced (classes weighted "
                                                   "by inverse frequency) or focal (a wrong name lists the choices)")
    focal_gamma: float = Field(2.0, ge=0.0, description="focal loss: (1 - p_true) ** gamma scales each image's loss")
    early_stopping: bool = Field(False, description="stop when --monitor has not improved for --patience epochs")
    patience: int = Field(5, ge=1, description="early stopping: epochs without improvement")
    monitor: Literal["val_loss", "val_acc"] = Field(
        "val_loss", description="what early stopping and restore-best watch")
    restore_best: bool = Field(True, description="early stopping: keep the weights of the best epoch")
    compile: bool = Field(False, description="torch.compile the model")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast where the hardware does bf16 natively (CUDA, CPUs with AMX), else fp32")
    channels_last: Optional[bool] = Field(None, description="channels_last memory format; default on for CNNs")

    @field_validator("track", mode="before")
    @classmethod
    def _track(cls, v):
        if isinstance(v, str):
            v = [v]
        if isinstance(v, (list, tuple)):
            v = [p.strip().lower() for x in v for p in str(x).split(",") if p.strip()]
            return list(dict.fromkeys(v))
        return v

    @field_validator("input_std")
    @classmethod
    def _std(cls, v):
        if v is not None and any(x <= 0 for x in v):
            raise ValueError("every channel's std must be positive")
        return v

    @field_validator("split_ratios")
    @classmethod
    def _ratios(cls, v):
        if v is None:
            return v
        if any(r < 0 for r in v) or v[0] <= 0:
            raise ValueError("split ratios must be non-negative with a positive train share")
        total = sum(v)
        return tuple(r / total for r in v)

    # ---------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, base: "RunConfig | dict | None" = None, **overrides: Any) -> "RunConfig":
        """A validated config from a base (config or dict) and keyword overrides; None values are ignored."""
        values: dict[str, Any] = {}
        if isinstance(base, RunConfig):
            values.update(base.model_dump())
        elif base:
            values.update(base)
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - set(cls.model_fields))
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}; see `visionlab train --help`")
        try:
            return cls(**values)
        except ValidationError as e:
            raise ConfigError(f"invalid config: {validation_message(e)}") from None

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            raw = p.read_bytes()
            if b"\0" in raw:
                raise UnicodeDecodeError("utf-8", raw[:1], 0, 1, "a NUL byte")
            values = yaml.safe_load(raw.decode("utf-8"))
        except OSError as e:
            raise ConfigError(f"config file {p} cannot be read ({e.strerror or e})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {p} is not a text file (binary or not UTF-8); pass a YAML file of "
                              f"RunConfig keys") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            what = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"config file {p} is not valid YAML{where} ({what}); fix it or pass another "
                              f"--config") from None
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ConfigError(f"config file {p} holds a YAML {type(values).__name__}, not a mapping of RunConfig "
                              f"keys such as 'model: cnn_baseline'")
        try:
            return cls.build(values)
        except ConfigError as e:
            raise ConfigError(f"{p}: {e}") from None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
