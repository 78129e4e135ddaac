"""``load_classifier``: a run folder, an ``.onnx`` file or the bundled model as a ``Classifier``, with the detection
profile it was made with. It sits above ``backends`` (the classifiers) and ``export`` (which it calls when a run's
ONNX file is missing or stale), so neither of those imports the other.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from ..errors import ConfigError
from ..registry import Registry
from .backends import ONNX_FILE, Classifier, OnnxClassifier, TorchClassifier


# A classifier backend is one registered loader: ``fn(source, threads, quiet) -> Classifier`` for a run folder or,
# where ``suffix`` is set, a model file of that suffix. `--backend NAME` and ``load_classifier(backend=NAME)`` pick
# it; ``quiet`` silences what it says it did (e.g. writing a file into the run folder).
BACKENDS: Registry[Callable[[Path, int, bool], Classifier]] = Registry("classifier backend")


@BACKENDS.register("onnx", suffix=".onnx")
def _onnx(p: Path, threads: int, quiet: bool = False) -> Optional[Classifier]:
    """An .onnx file (with the members its metadata averages it with, beside it), or a run folder's RUN/model.onnx,
    exported first when missing or older than the weights or the detection profile (the file carries the profile
    too); None for a run that cannot be exported (Keras)."""
    if p.suffix.lower() == ".onnx":
        return _onnx_file(p, threads)
    from ..runs import MODEL_FILE
    from .profile import PROFILE_FILE

    onnx_path, weights, prof = p / ONNX_FILE, p / MODEL_FILE, p / PROFILE_FILE
    newest = max((f.stat().st_mtime for f in (weights, prof) if f.is_file()), default=0.0)
    if weights.is_file() and (not onnx_path.is_file() or onnx_path.stat().st_mtime < newest):
        from .export import export_run  # torch: only when the run's ONNX file must be (re)written

        why = "older than the run's weights or detect.json" if onnx_path.is_file() else "not exported yet"
        export_run(p, quiet=quiet)
        if not quiet:
            from ..progress import console

            console.print(f"wrote {onnx_path} ({why}) to run the model with ONNX Runtime; --backend torch "
                          f"runs the run's torch model without it", highlight=False, soft_wrap=True)
    return OnnxClassifier(onnx_path, threads) if onnx_path.is_file() else None


def _onnx_file(p: Path, threads: int) -> Classifier:
    """One ONNX file as a Classifier, or, where its metadata names members beside it, all of them averaged."""
    clf = OnnxClassifier(p, threads)
    if not clf.average_with:
        return clf
    from .average import AveragedClassifier, member_path

    return AveragedClassifier([clf] + [OnnxClassifier(member_path(p, n), threads) for n in clf.average_with])


@BACKENDS.register("torch", suffix=None)
def _torch(p: Path, threads: int, quiet: bool = False) -> Classifier:
    """The run's own model (Keras runs included), on the CPU."""
    from ..runs import load_run
    from .profile import profile_for

    run = load_run(p)  # a clear ModelError for a folder without a model
    clf = TorchClassifier(run.model, run.classes, run.image_size, source=str(p))
    clf.profile = profile_for(p)
    return clf


def load_classifier(source: str | os.PathLike | None = None, backend: str = "onnx", threads: int = 1,
                    quiet: bool = False) -> Classifier:
    """A run folder or a model file as a ``Classifier``; ``None`` is the bundled face-mask classifier.

    ``backend`` names a ``BACKENDS`` entry. A model file goes to the backend registered for its suffix. For a run
    folder, ``onnx`` uses ``RUN/model.onnx`` (exported on first use), ``torch`` loads the run's model; a run the
    chosen backend cannot run (a Keras run under onnx) falls back to torch.
    """
    load = BACKENDS.get(backend)  # a ConfigError listing the backends for an unknown name
    if source is None:
        from ..assets import default_classifier

        source = default_classifier()
    from ..runs import resolve_run  # a face project stands for its current run (PROJECT/model)

    p = resolve_run(source)
    if p.is_file() or (p.suffix and not p.is_dir()):
        owner = next((n for n in BACKENDS.names() if BACKENDS.meta(n)["suffix"] == p.suffix.lower()), None)
        if owner is None:
            raise ConfigError(f"{p}: no classifier backend reads {p.suffix or 'this'} files; give a run folder or "
                              f"one of: {', '.join(BACKENDS.meta(n)['suffix'] for n in BACKENDS.names() if BACKENDS.meta(n)['suffix'])}")
        if owner != backend:
            raise ConfigError(f"{p} is an {p.suffix} file; it runs with --backend {owner} only")
        return load(p, threads, quiet)
    return load(p, threads, quiet) or _torch(p, threads, quiet)
