"""An active-learning project folder and what it knows.

    PROJECT/
      state.json     the settings (pool, labelled folder, classes, featurizer) and the current round,
                     replaced atomically
      labels.jsonl   every label given, append-only (see store.py)
      queue.json     the images the last `query` asked for, replaced atomically
      rounds.jsonl   one line per finished retrain: model version, label counts, metrics (the source of truth
                     for the round; state.json's copy is refreshed from it)
      models/round-NNN.safetensors   each round's head

The pool and the labelled folder are only read. Commands that write hold ``PROJECT/.lock`` (an flock the
kernel releases if the process is killed), so two terminals cannot interleave a query and a retrain.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..errors import ConfigError, DataError
from .store import LabelStore, check_class_names, file_lock, list_images, read_jsonl, sha256_file, write_atomic

if TYPE_CHECKING:  # torch and the backbones load only for commands that need features (not for `label`)
    import torch

    from .features import FeatureCache, Featurizer

FORMAT = 1
MODEL_LINK = "model"  # a face project's current run: PROJECT/model -> rounds/round-NNN
STATE, LABELS, QUEUE, ROUNDS, MODELS = "state.json", "labels.jsonl", "queue.json", "rounds.jsonl", "models"
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test", "testing": "test"}


def class_folders(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and list_images(d))


def split_folders(root: Path) -> dict[str, Path]:
    """``{"train": ..., "val": ..., "test": ...}`` when ``root`` holds split folders of class folders, else
    ``{"train": root}``."""
    subs = {SPLIT_NAMES[d.name.lower()]: d for d in root.iterdir() if d.is_dir() and d.name.lower() in SPLIT_NAMES}
    if subs and all(class_folders(d) for d in subs.values()):
        return subs
    return {"train": root}


@dataclass
class Item:
    path: Path
    sha256: str
    label: Optional[int] = None


def folder_items(root: Path, classes: list[str], skipped: Optional[list[tuple[str, str]]] = None) -> list[Item]:
    """Every image of a class-folder tree, labelled by its folder; classes outside ``classes`` are an error."""
    items = []
    for d in class_folders(root):
        if d.name not in classes:
            raise DataError(f"{d} is a class the project does not know ({', '.join(classes)}); move it out of "
                            f"{root} or start a project with that class")
        c = classes.index(d.name)
        items += [Item(p, h, c) for p, h in hashed(list_images(d, skipped), skipped)]
    return items


def hashed(paths: list[Path], skipped: Optional[list[tuple[str, str]]] = None) -> list[tuple[Path, str]]:
    """(path, sha256) of each readable file; one deleted meanwhile, or unreadable, goes to ``skipped``."""
    out = []
    for p in paths:
        try:
            out.append((p, sha256_file(p)))
        except DataError as e:
            if skipped is not None:
                skipped.append((str(p), str(e)))
    return out


class Project:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._store: Optional[LabelStore] = None
        if not (self.path / STATE).is_file():
            raise ConfigError(f"{self.path} is not an active-learning project (no {STATE}); create one with "
                              f"`visionlab active init --pool DIR --out {self.path}`")
        try:
            self.state = json.loads((self.path / STATE).read_bytes())
        except (ValueError, UnicodeDecodeError) as e:
            raise DataError(f"{self.path / STATE} is not valid JSON ({e}); restore it from a backup") from None
        except OSError as e:
            raise DataError(f"{self.path / STATE} cannot be read ({e.strerror or e})") from None
        missing = [k for k in ("pool", "classes", "featurizer") if k not in self.state] \
            if isinstance(self.state, dict) else ["all"]
        if missing or not isinstance(self.state.get("classes"), list):
            raise DataError(f"{self.path / STATE} lacks {', '.join(missing) or 'a list of classes'}; it is not a "
                            f"project state file (restore it from a backup)")
        self.skipped: list[tuple[str, str]] = []  # pool/labelled files that could not be read, and why
        self._featurizer: Optional["Featurizer"] = None
        self._cache: Optional["FeatureCache"] = None
        self.sync_rounds()

    # --- settings -----------------------------------------------------------------------------------------
    @property
    def pool(self) -> Path:
        """The pool folder; a face project's (``faces``) is inside the project, stored relative to it."""
        p = Path(self.state["pool"])
        return p if p.is_absolute() else self.path / p

    @property
    def is_faces(self) -> bool:
        """A face pool made by ``init --photos`` (facepool.py) rather than a folder of images."""
        return self.state.get("kind") == "faces"

    @property
    def labelled(self) -> Optional[Path]:
        return Path(self.state["labelled"]) if self.state.get("labelled") else None

    @property
    def eval_dir(self) -> Optional[Path]:
        return Path(self.state["eval"]) if self.state.get("eval") else None

    @property
    def classes(self) -> list[str]:
        return list(self.state["classes"])

    @property
    def store(self) -> LabelStore:
        """The project's label store (one object per Project, so ``store.problems`` tells what its last read
        found)."""
        if self._store is None:
            self._store = LabelStore(self.path / LABELS, self.pool, self.classes)
        return self._store

    def lock(self):
        return file_lock(self.path / ".lock")

    def save_state(self) -> None:
        write_atomic(self.path / STATE, json.dumps(self.state, indent=2) + "\n")

    # --- rounds -------------------------------------------------------------------------------------------
    def rounds(self) -> list[dict]:
        return [r for r in read_jsonl(self.path / ROUNDS)
                if isinstance(r.get("round"), int) and isinstance(r.get("model_version"), str)]

    def sync_rounds(self) -> None:
        """rounds.jsonl is written before state.json (and a face project's PROJECT/model link): a kill between
        them leaves state one round behind, and this brings it level."""
        rounds = self.rounds()
        last = rounds[-1] if rounds else None
        if last is not None and last["round"] != self.state.get("round"):
            self.state.update(round=last["round"], model_version=last["model_version"])
            self.save_state()
        run = self.model_run()
        if run is not None and os.path.realpath(self.path / MODEL_LINK) != os.path.realpath(self.path / run):
            with contextlib.suppress(OSError):  # a read-only project still reads; the next writer fixes it
                link_model(self.path, run)

    def model_run(self) -> Optional[str]:
        """A face project's current run folder (relative to the project), or None while round 0 (the starting
        model) is current."""
        if not self.is_faces:
            return None
        runs = [r.get("run") for r in self.rounds() if isinstance(r.get("run"), str)]
        return runs[-1] if runs else None

    @property
    def round(self) -> int:
        return int(self.state.get("round", -1))

    @property
    def model_version(self) -> Optional[str]:
        return self.state.get("model_version")

    def model_file(self, round_: int) -> Path:
        return self.path / MODELS / f"round-{round_:03d}.safetensors"

    def head_state(self) -> Optional[dict[str, "torch.Tensor"]]:
        """The current round's head, or None before the first retrain."""
        if self.round < 0:
            return None
        from safetensors.torch import load_file
        f = self.model_file(self.round)
        if not f.is_file():
            raise DataError(f"{f} is missing although rounds.jsonl records round {self.round}; run "
                            f"`visionlab active retrain` to train a new model")
        return load_file(str(f))

    # --- images -------------------------------------------------------------------------------------------
    @property
    def featurizer(self) -> "Featurizer":
        from .features import load_featurizer

        if self._featurizer is None:
            self._featurizer = load_featurizer(self.state["featurizer"])
        return self._featurizer

    @property
    def cache(self) -> "FeatureCache":
        from .features import FeatureCache

        if self._cache is None:
            self._cache = FeatureCache(self.featurizer, self.state.get("cache_dir"))
        return self._cache

    def pool_items(self) -> list[Item]:
        """Every readable pool image with its hash; FIFOs, devices, vanished and oversized files are skipped
        (and listed in ``self.skipped``)."""
        return [Item(p, h) for p, h in hashed(list_images(self.pool, self.skipped), self.skipped)]

    def labelled_items(self) -> list[Item]:
        return folder_items(self.labelled, self.classes, self.skipped) if self.labelled else []

    def eval_items(self) -> list[Item]:
        return folder_items(self.eval_dir, self.classes, self.skipped) if self.eval_dir else []

    def store_items(self, include_pseudo: bool = True) -> list[Item]:
        sources = ("human", "oracle", "pseudo") if include_pseudo else ("human", "oracle")
        return [Item(self.pool / lab.path, lab.sha256, self.classes.index(lab.label))
                for lab in self.store.labels(sources)]

    def features(self, items: list[Item], progress=None) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of ``items`` and a mask of the readable ones."""
        if not items:
            return np.zeros((0, 0), np.float32), np.zeros(0, bool)
        x, _ = self.cache.get([it.path for it in items], [it.sha256 for it in items], progress=progress)
        return x, ~np.isnan(x).any(1)

    def training_set(self, include_pseudo: bool = True) -> list[Item]:
        """The labelled folder plus the store's live labels, one entry per distinct image content."""
        seen, out = set(), []
        for it in self.labelled_items() + self.store_items(include_pseudo):
            if it.sha256 not in seen:
                seen.add(it.sha256)
                out.append(it)
        return out


def load_queue(proj: Project) -> dict:
    p = proj.path / QUEUE
    if not p.is_file():
        raise ConfigError(f"{proj.path} has no queue yet: run `visionlab active query {proj.path} --k 20` first")
    try:
        q = json.loads(p.read_bytes())
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise DataError(f"{p} cannot be read ({e}); run `visionlab active query {proj.path}` again") from None
    if not isinstance(q, dict) or not isinstance(q.get("items"), list) or \
            not all(isinstance(it, dict) and isinstance(it.get("sha256"), str) and isinstance(it.get("path"), str)
                    for it in q["items"]):
        raise DataError(f"{p} is not a queue written by `visionlab active query`; run it again")
    return q


def create(out: Path, state: dict) -> Project:
    from ..outdir import make_folder

    check_class_names(state["classes"])
    make_folder(out, "--out")  # a file in the way or a read-only disk is one line
    make_folder(out / MODELS, "--out")
    (out / LABELS).touch()
    write_atomic(out / STATE, json.dumps(dict(state, format=FORMAT, round=-1, model_version=None), indent=2) + "\n")
    return Project(out)


def link_model(project: Path, target: str) -> None:
    """PROJECT/model -> ``target`` (relative), replaced atomically: a new symlink renamed over the old one."""
    tmp = project / f".{MODEL_LINK}.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, project / MODEL_LINK)


def is_inside(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents


def check_free(out: Path, *folders: Optional[Path]) -> None:
    for f in folders:
        if f is not None and (is_inside(out, f) or is_inside(f, out)):
            raise ConfigError(f"the project folder {out} and the image folder {f} must not contain one another; "
                              f"choose another --out")
    if (out / STATE).exists():
        raise ConfigError(f"{out} is already an active-learning project; continue it with "
                          f"`visionlab active status {out}` or choose another --out")
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder; choose a new folder for the project")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty; choose a new folder for the project")

