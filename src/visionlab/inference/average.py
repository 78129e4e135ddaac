"""Averaged classifiers: several networks of the same classes and input size as one ``Classifier`` whose class
probabilities are the mean of theirs (a deep ensemble: Lakshminarayanan et al. 2017).

On the face-mask folds, networks trained alike with other seeds and averaged scored higher than any one of them
(docs/detection.md). ``visionlab export RUN --average RUN2 ...`` writes the members as ONNX files side by side; the
first file's metadata names the others (``visionlab.average_with``), so loading it loads them all. Each member is a
classifier pass per face, so the ``fast`` (video) setting keeps the first member alone (``first``): averaging
would take it under its frame rate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ModelError
from .backends import Classifier


class AveragedClassifier:
    """``members`` (two or more classifiers of the same classes and input size) as one ``Classifier``; the profile,
    backend and classes are the first member's."""

    def __init__(self, members: Sequence[Classifier]) -> None:
        if len(members) < 2:
            raise ModelError("an averaged classifier needs at least two members")
        first = members[0]
        same_classes_and_size([(m.source, m.classes, m.image_size) for m in members])
        self.members = list(members)
        self.classes, self.image_size = list(first.classes), int(first.image_size)
        self.profile, self.backend = first.profile, first.backend
        self.source = f"{first.source} (averaged with {len(members) - 1} more)"

    @property
    def first(self) -> Classifier:
        """The first member alone (the fast setting's classifier)."""
        return self.members[0]

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        return mean_probs([m.predict_proba(batch) for m in self.members])


def networks(clf: Classifier) -> list[Classifier]:
    """The networks a classifier runs, first first: an averaged classifier's members, or the classifier alone."""
    return list(clf.members) if isinstance(clf, AveragedClassifier) else [clf]


def mean_probs(probs: Sequence[np.ndarray]) -> np.ndarray:
    """The mean of several networks' class probabilities (N x C each), summed in float64, as float32."""
    return np.mean(probs, axis=0, dtype=np.float64).astype(np.float32)


def same_classes_and_size(models: Sequence[tuple[object, Sequence[str], int]]) -> None:
    """``(name, classes, input size)`` of models to average: a ModelError naming the first that differs."""
    name0, classes0, size0 = models[0]
    for name, classes, size in models[1:]:
        if list(classes) != list(classes0) or int(size) != int(size0):
            raise ModelError(f"{name} has classes {list(classes)} at {size} px, {name0} {list(classes0)} at "
                             f"{size0} px: only models of the same classes and input size can be averaged")


def member_names(path: Path, n: int) -> list[str]:
    """The file names ``export --average`` gives an averaged model's ``n`` members beside ``path``:
    model.onnx, model-2.onnx, model-3.onnx, ..."""
    return [path.name] + [f"{path.stem}-{i}{path.suffix}" for i in range(2, n + 1)]


def member_path(first: Path, name: str) -> Path:
    """Where the member ``name`` (a bare file name from the metadata's ``visionlab.average_with``) of ``first``
    lies: beside it; a bundled model's members are checked against the model card like the model itself."""
    from .. import assets

    if first.resolve().parent == assets.ROOT:
        return assets.asset(name)
    p = first.parent / name
    if not p.is_file():
        raise ModelError(f"{first} is averaged with {name}, which is not beside it: keep the files `visionlab export "
                         f"--average` wrote together, or export again")
    return p
