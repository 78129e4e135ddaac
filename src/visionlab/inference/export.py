"""Export a classifier to ONNX with its preprocessing written into the file, verified with ONNX Runtime.

The graph takes ``pixels``: float32 N x 3 x S x S, RGB, 0..255 (the model's first layer normalises, see
docs/architecture.md), and returns ``logits`` N x C. The batch axis is dynamic so detection can send every
face of a frame in one call.
"""
from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, ModelError
from ..registry import Registry
from ..io import atomic_write_bytes
from .backends import ONNX_FILE, onnx_metadata  # noqa: F401 (torch-free; re-exported for export's users)

INPUT_NAME = "pixels"
OUTPUT_NAME = "logits"
VERIFY_ATOL = 1e-3  # export fails above this; the parity test holds small models to 1e-4


def _normalisation(model: nn.Module) -> Optional[tuple[list[float], list[float]]]:
    """Mean/std (0..1 scale) of the model's pixel-normalising layer, for the metadata only."""
    from ..models.layers import Normalize

    for m in model.modules():
        if isinstance(m, Normalize):
            scale = m.scale.detach().flatten().double().cpu()
            shift = m.shift.detach().flatten().double().cpu()
            std = 1.0 / (255.0 * scale)
            return (-shift * std).tolist(), std.tolist()
    return None


def _metadata(image_size: int, classes: Sequence[str],
              norm: Optional[tuple[list[float], list[float]]]) -> dict[str, str]:
    meta = {
        "visionlab.input": f"{INPUT_NAME}: float32 N x 3 x {image_size} x {image_size}, RGB, raw pixel values 0..255",
        "visionlab.input_range": "0..255",
        "visionlab.channel_order": "RGB",
        "visionlab.layout": "NCHW",
        "visionlab.image_size": str(int(image_size)),
        "visionlab.resize": f"resize the (face) image to {image_size} x {image_size}; no cropping inside the model",
        "visionlab.classes": json.dumps(list(classes)),
        "visionlab.output": f"{OUTPUT_NAME}: float32 N x {len(classes)}, unnormalised; softmax gives probabilities",
        "visionlab.normalization": "inside the model: its first layer divides by 255 and applies mean/std; "
                                   "feed raw pixels, do not normalise again",
    }
    if norm is not None:
        meta["visionlab.mean"] = json.dumps([round(v, 6) for v in norm[0]])
        meta["visionlab.std"] = json.dumps([round(v, 6) for v in norm[1]])
    return meta


def export_onnx(model: nn.Module, image_size: int, classes: Sequence[str], path: str | os.PathLike,
                opset: int = 17, *, verify: bool = True, profile: Optional[dict] = None,
                average_with: Optional[Sequence[str]] = None) -> Path:
    """Write ``model`` to ``path`` as ONNX (dynamic batch, metadata documenting preprocessing), atomically.

    ``average_with``: file names of the models beside it whose probabilities a loader averages with this one's
    (``export_averaged``).

    With ``verify`` the exported graph is run in ONNX Runtime on random pixels and compared with torch; a
    difference above 1e-3 raises ``ModelError`` and nothing is written.
    """
    import onnx

    path = Path(path)
    if not classes:
        raise ModelError("export needs the class names the model predicts")
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dummy = torch.zeros(1, 3, image_size, image_size, device=device)
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # the TorchScript exporter: the torch.export one needs onnxscript, which visionlab does not require
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (dummy,), buf, dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                              opset_version=opset, do_constant_folding=True)
    except Exception as e:
        raise ModelError(f"cannot export {type(model).__name__} to ONNX: {str(e).strip().splitlines()[0]}") from None
    finally:
        model.train(was_training)
    proto = onnx.load_from_string(buf.getvalue())
    meta = _metadata(image_size, classes, _normalisation(model))
    if profile is not None:  # how to detect and crop faces for this classifier (inference/profile.py)
        from .profile import META_KEY

        meta[META_KEY] = json.dumps(profile)
    if average_with:
        from .backends import AVERAGE_KEY

        meta[AVERAGE_KEY] = json.dumps(list(average_with))
    if verify:
        meta["visionlab.verified_max_abs_diff"] = f"{verify_onnx(model, proto.SerializeToString(), image_size):.3g}"
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.doc_string = "visionlab classifier: " + meta["visionlab.input"] + "; " + meta["visionlab.normalization"]
    onnx.checker.check_model(proto)
    atomic_write_bytes(path, proto.SerializeToString())
    return path


def verify_onnx(model: nn.Module, onnx_model: bytes | str | os.PathLike, image_size: int, batch: int = 3,
                seed: int = 0) -> float:
    """Max abs difference between torch and ONNX Runtime logits on random 0..255 pixels; raises above 1e-3."""
    import onnxruntime as ort

    src = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(seed).integers(0, 256, (batch, 3, image_size, image_size)).astype(np.float32)
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    try:
        with torch.no_grad():
            ref = model(torch.from_numpy(x).to(param.device if param is not None else "cpu")).float().cpu().numpy()
    finally:
        model.train(was_training)
    got = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    diff = float(np.abs(got - ref).max())
    if not diff <= VERIFY_ATOL:
        raise ModelError(f"ONNX export does not match torch (max abs difference {diff:.3g} > {VERIFY_ATOL}); "
                         f"the model uses an operation the exporter translates differently")
    return diff


# An export format is one registered writer ``fn(loaded_run, target, opset) -> Path`` with the file name it writes
# into a run folder; `visionlab export --format NAME` and ``export_run(format=NAME)`` pick it.
EXPORT_FORMATS: Registry[Callable] = Registry("export format")


@EXPORT_FORMATS.register("onnx", file=ONNX_FILE)
def _onnx(loaded, target: Path, opset: int, average_with: Sequence[str] | None = None) -> Path:
    """The run's model with its detection profile (and, for an averaged model's first file, its members' names)."""
    from .profile import profile_for

    prof = profile_for(loaded.path)
    return export_onnx(loaded.model, loaded.image_size, loaded.classes, target, opset,
                       profile=prof.to_dict() if prof is not None else None, average_with=average_with)


def _refuse_keras(loaded) -> None:
    if loaded.config.framework == "keras":
        raise ModelError(f"{loaded.path} is a Keras run: visionlab exports torch models only; "
                         f"use keras' own export, or detect with --backend torch")


def export_run(run: str | os.PathLike, out: str | os.PathLike | None = None, format: str = "onnx",
               opset: int = 17, quiet: bool = False, average: Sequence[str | os.PathLike] = ()) -> Path:
    """``visionlab export RUN --format NAME``: the run's model as ``RUN/<the format's file>`` (or ``out``).

    ``average``: more run folders (same classes and input size) whose models are averaged with RUN's
    (``export_averaged``); the path returned is the first member's file."""
    from ..progress import Steps
    from ..runs import load_run

    write = EXPORT_FORMATS.get(format)  # a ConfigError listing the formats for an unknown name
    if average:
        if format != "onnx":
            raise ConfigError(f"--average writes ONNX files; --format {format} exports one model")
        return export_averaged([run, *average], out, opset, quiet)
    with Steps("export", 2, quiet) as steps:
        steps.next(f"loading {run}")
        loaded = load_run(run)
        steps.next(f"{format} export")
        return _export_loaded(loaded, write, EXPORT_FORMATS.meta(format)["file"], out, opset)


AVERAGED_FOLDER = "averaged"  # export --average's default folder inside the first run


def export_averaged(runs: Sequence[str | os.PathLike], out: str | os.PathLike | None = None, opset: int = 17,
                    quiet: bool = False) -> Path:
    """Several runs' models (same classes and input size) as one averaged classifier: each an ONNX file, side by
    side (``out``, default RUN/averaged/model.onnx, then model-2.onnx, ...), each with its run's detection profile;
    the first file's metadata names the others (``visionlab.average_with``), so loading it averages all
    (inference/average.py)."""
    from ..outdir import claim_file
    from ..progress import Steps
    from ..runs import load_run
    from .average import member_names, same_classes_and_size

    first_run = Path(runs[0])
    own = first_run / AVERAGED_FOLDER
    target = Path(out) if out is not None else own / ONNX_FILE
    if target.is_dir() or target.suffix.lower() != ".onnx":
        target = target / ONNX_FILE
    names = member_names(target, len(runs))
    with Steps("export", 2 * len(runs), quiet) as steps:
        loaded = []
        for r in runs:
            steps.next(f"loading {r}")
            loaded.append(load_run(r))
            _refuse_keras(loaded[-1])
        same_classes_and_size([(lr.path, lr.classes, lr.image_size) for lr in loaded])
        paths = [target.parent / n for n in names]
        for p in paths:  # every file claimed before any is written: a user's file stops it with nothing written
            claim_file(p, owned=p if p.parent.resolve() == own.resolve() else None)
        for i, (lr, p) in enumerate(zip(loaded, paths)):
            steps.next(f"onnx export {i + 1} of {len(runs)}")
            _onnx(lr, p, opset, average_with=names[1:] if i == 0 else None)
    return paths[0]


def _export_loaded(loaded, write: Callable, file: str, out: str | os.PathLike | None, opset: int) -> Path:
    _refuse_keras(loaded)
    target = Path(out) if out is not None else loaded.path / file
    if target.is_dir():
        target = target / file
    from ..outdir import claim_file

    # a file of the user's at --out is never replaced; the run's own export is re-written in place
    claim_file(target, owned=loaded.path / file)
    return write(loaded, target, opset)
