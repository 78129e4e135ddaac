"""A study spec: a base RunConfig, the configurations to compare, the seeds, and what the dissertation reported.

Configurations ("arms") are the explicit ``configs`` (each a labelled dict of RunConfig overrides, for studies
whose arms set different fields) crossed with the full product of ``grid`` (field -> values). Each arm runs once
per seed; one (arm, seed) pair is a trial, trained by ``visionlab.train`` into its own run folder.

Precedence, lowest first: RunConfig defaults < ``base`` < arm (config, then grid) < ``quick`` (with ``--quick``)
< ``--data`` < the trial's seed. ``quick`` may also set ``seeds``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import RunConfig, validation_message
from ..errors import ConfigError

# Fields a study may not set: the runner owns where and how each trial runs.
RUNNER_FIELDS = ("out", "name", "seed", "quiet", "threads")


class Settle(BaseModel):
    """A question the numbers should settle: which candidate arm matches a reported figure."""

    model_config = ConfigDict(extra="forbid")
    question: str
    reported: float = Field(description="the dissertation's figure, as a fraction (0.495 for 49.5%)")
    candidates: list[str] = Field(min_length=2)


class Claim(BaseModel):
    """A ranking claim of the dissertation to check: ``best`` or ``worst`` names an arm label."""

    model_config = ConfigDict(extra="forbid")
    text: str
    best: Optional[str] = None
    worst: Optional[str] = None

    @model_validator(mode="after")
    def _one(self) -> "Claim":
        if (self.best is None) == (self.worst is None):
            raise ValueError("a claim names exactly one of best or worst")
        return self


class StudySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    base: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    configs: list[dict[str, Any]] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    quick: dict[str, Any] = Field(default_factory=dict)
    metric: str = "test_acc"
    # label -> the dissertation's metric value, or a dict of named figures (plateau_epoch, plateau_value, ...)
    reported: dict[str, Union[float, dict[str, float]]] = Field(default_factory=dict)
    reported_note: str = ""
    settle: list[Settle] = Field(default_factory=list)
    claims: list[Claim] = Field(default_factory=list)
    heatmap: Optional[tuple[str, str]] = Field(None, description="(row field, column field) of a heatmap")
    plateau: bool = Field(False, description="find where validation accuracy stops improving")
    notes: list[str] = Field(default_factory=list, description="assumptions behind the settings, for the report")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", v):
            raise ValueError("a study name uses letters, digits, '_', '-' and '.' only")
        return v

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"grid field {key!r} has no values")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v or len(set(v)) != len(v):
            raise ValueError("seeds must be a non-empty list without repeats")
        return v

    @model_validator(mode="after")
    def _fields(self) -> "StudySpec":
        known = set(RunConfig.model_fields)
        places = [("base", self.base), ("grid", self.grid),
                  ("quick", {k: v for k, v in self.quick.items() if k != "seeds"})]
        places += [(f"configs[{i}]", {k: v for k, v in c.items() if k != "label"}) for i, c in enumerate(self.configs)]
        for where, d in places:
            unknown = sorted(set(d) - known)
            if unknown:
                raise ValueError(f"{where}: unknown RunConfig field(s) {', '.join(unknown)}")
            owned = sorted(set(d) & set(RUNNER_FIELDS))
            if owned:
                raise ValueError(f"{where}: {', '.join(owned)} are set by the study runner, not the spec")
        collapsed = sorted(set(self.grid) & set(self.quick))
        if collapsed:
            raise ValueError(f"quick overrides grid field(s) {', '.join(collapsed)}: the arms would be identical")
        if self.heatmap and any(k not in self.grid for k in self.heatmap):
            raise ValueError(f"heatmap fields {list(self.heatmap)} must both be grid fields")
        return self

    def with_base(self, overrides: dict[str, Any]) -> "StudySpec":
        """This study with ``overrides`` in its base (``--set normalize=scale``), named ``<name>-<field>-<value>``
        so that it runs into its own folder and its report says what was changed."""
        if not overrides:
            return self
        varied = sorted(set(overrides) & ({*self.grid} | {k for c in self.configs for k in c if k != "label"}))
        if varied:
            raise ConfigError(f"study {self.name} sets {', '.join(varied)} per configuration; --set changes the "
                              f"base that every configuration starts from, so it would not apply")
        said = ", ".join(f"{k}: {v}" for k, v in overrides.items())
        raw = {**self.model_dump(mode="json"), "base": {**self.base, **overrides},
               "name": "-".join([self.name, *(f"{k}-{_slug(str(v))}" for k, v in overrides.items())]),
               "description": f"{self.description} Re-run with {said} in the base.".strip()}
        raw["notes"] = [*self.notes, f"Changed from the built-in study: {said} (--set)."]
        try:
            return StudySpec(**raw)
        except ValidationError as e:
            raise ConfigError(f"--set {said}: {validation_message(e, 'spec')}") from None

    # ---------------------------------------------------------------------------------------------
    def arms(self) -> list["Arm"]:
        """The configurations to compare, in spec order (configs outer, grid inner)."""
        configs = self.configs or [{}]
        keys = list(self.grid)
        combos = list(itertools.product(*(self.grid[k] for k in keys))) if keys else [()]
        arms: list[Arm] = []
        for c in configs:
            for combo in combos:
                g = dict(zip(keys, combo))
                over = {k: v for k, v in c.items() if k != "label"}
                over.update(g)
                parts = [str(c["label"])] if "label" in c else []
                if g:
                    parts.append(_grid_label(g))
                label = ", ".join(parts) or "base"
                arms.append(Arm(label, over, dict(g)))
        labels = [a.label for a in arms]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ConfigError(f"study {self.name}: arm labels repeat ({', '.join(dup)}); "
                              f"give each config a distinct label")
        return arms

    def arm_fields(self) -> list[str]:
        """The RunConfig fields that differ between arms (columns of the results table)."""
        fields: list[str] = []
        for c in self.configs:
            fields += [k for k in c if k != "label" and k not in fields]
        fields += [k for k in self.grid if k not in fields]
        return fields

    def resolved_seeds(self, quick: bool = False, n: Optional[int] = None) -> list[int]:
        if n is not None:
            if n < 1:
                raise ConfigError("--seeds takes a positive number")
            return list(range(n))
        if quick and "seeds" in self.quick:
            return list(self.quick["seeds"])
        return list(self.seeds)

    def trials(self, quick: bool = False, seeds: Optional[list[int]] = None,
               data: Optional[str] = None) -> list["Trial"]:
        """Every (arm, seed) pair with its full field dict, validated as a RunConfig."""
        seeds = seeds if seeds is not None else self.resolved_seeds(quick)
        quick_over = {k: v for k, v in self.quick.items() if k != "seeds"} if quick else {}
        out: list[Trial] = []
        ids: set[str] = set()
        for arm in self.arms():
            fields = {**self.base, **arm.overrides, **quick_over}
            if data is not None:
                fields["data"] = str(data)
            slug = _slug(arm.label)
            if slug in ids:  # two labels that differ only in punctuation
                slug = f"{slug}-{hashlib.sha1(arm.label.encode()).hexdigest()[:6]}"
            ids.add(slug)
            for seed in seeds:
                cfg = {**fields, "seed": seed}
                try:
                    RunConfig.build(cfg)
                except ConfigError as e:
                    raise ConfigError(f"study {self.name}, arm {arm.label!r}: {e}") from None
                out.append(Trial(f"{slug}__s{seed}", arm.label, seed, cfg, arm.grid_values))
        return out

    def check_names(self) -> None:
        """Check model, optimizer, activation, initialiser and loss names against the registries (imports torch)."""
        from ..models import MODELS, _load_plugins
        from ..models.init import INITIALIZERS
        from ..models.layers import ACTIVATIONS
        from ..training.losses import LOSSES
        from ..training.optim import OPTIMIZERS

        _load_plugins()
        regs = {"model": MODELS, "optimizer": OPTIMIZERS, "activation": ACTIVATIONS, "init": INITIALIZERS,
                "loss": LOSSES}
        for arm in self.arms():
            fields = {**self.base, **arm.overrides, **self.quick}
            for key, reg in regs.items():
                if key in fields:
                    try:
                        reg.get(fields[key])
                    except ConfigError as e:
                        raise ConfigError(f"study {self.name}, arm {arm.label!r}: {e}") from None

    def reported_value(self, label: str, key: Optional[str] = None) -> Optional[float]:
        """The dissertation's figure for arm ``label`` (its metric, or the named figure ``key``)."""
        r = self.reported.get(label)
        if isinstance(r, dict):
            return r.get(key or self.metric)
        return r if key in (None, self.metric) else None


@dataclass
class Arm:
    label: str
    overrides: dict[str, Any]
    grid_values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trial:
    trial_id: str
    label: str
    seed: int
    config: dict[str, Any]
    grid_values: dict[str, Any] = field(default_factory=dict)


def fmt_value(v: Any) -> str:
    """A grid value as a label: split ratios as 70:15:15, floats without trailing noise."""
    if isinstance(v, (list, tuple)):
        return ":".join(fmt_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _grid_label(g: dict[str, Any]) -> str:
    """``adam, lr=0.01``: names (strings) speak for themselves, numbers carry their field."""
    if len(g) == 1:
        return fmt_value(next(iter(g.values())))
    return ", ".join(v if isinstance(v, str) else f"{k}={fmt_value(v)}" for k, v in g.items())


def _slug(label: str) -> str:
    s = re.sub(r"[^A-Za-z0-9.]+", "-", label).strip("-").lower()
    return s[:60] or "arm"


# --- loading ---------------------------------------------------------------------------------------
def builtin_names() -> list[str]:
    folder = resources.files("visionlab.studies") / "builtin"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _builtin_text(name: str) -> Optional[str]:
    p = resources.files("visionlab.studies") / "builtin" / f"{name}.yaml"
    return p.read_text() if p.is_file() else None


def parse_spec(text: str, where: str = "study spec") -> StudySpec:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a YAML mapping with at least `name` and `base`")
    try:
        return StudySpec(**raw)
    except ValidationError as e:
        raise ConfigError(f"{where}: {validation_message(e, 'spec')}") from None


def load_spec(name_or_path: str | Path) -> StudySpec:
    """A built-in study by name (``visionlab study list``) or a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            raise ConfigError(f"study file {p} does not exist")
        return parse_spec(p.read_text(), str(p))
    text = _builtin_text(str(name_or_path))
    if text is None:
        raise ConfigError(f"unknown study {str(name_or_path)!r}; choose one of: {', '.join(builtin_names())} "
                          f"or pass a YAML file")
    return parse_spec(text, f"built-in study {name_or_path}")


def spec_digest(spec: StudySpec) -> str:
    return hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:12]
