"""Prediction on unseen images of any format or size: labels, confidences, annotated copies, CSV and JSON.
Unreadable files are reported and skipped, never fatal; the input images are only read."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from .errors import ConfigError, DataError
from .io import atomic_write_bytes, atomic_write_text, shown, write_csv
from .progress import progress


def collect_images(inputs: Iterable[str | Path],
                   exclude: Optional[Path] = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """The files to predict and the (path, reason) of those passed over: missing paths, and FIFOs, devices and
    sockets (never opened: reading a FIFO would hang). Files in ``exclude`` (this run's output folder) and in
    earlier visionlab output folders inside a given folder are left out."""
    from .files import special_kind
    from .outdir import is_output_folder

    files, missing = [], []
    for i in inputs:
        p = Path(i)
        if p.is_dir():
            skip: list[Path] = []
            for f in sorted(p.rglob("*")):
                if f.name.startswith(".") or any(o in f.parents for o in skip):
                    continue
                if f.is_dir():
                    if (exclude is not None and f.resolve() == exclude) or is_output_folder(f):
                        skip.append(f)
                elif f.is_file():
                    files.append(f)
                elif (kind := special_kind(f)) is not None:
                    missing.append((shown(f), f"is {kind}, not a regular file; only regular image files are read"))
        elif p.is_file():
            files.append(p)
        elif (kind := special_kind(p)) is not None:
            missing.append((shown(p), f"is {kind}, not a regular file; only regular image files are read"))
        else:
            missing.append((shown(p), "does not exist"))
    return files, missing


def _annotate(path: Path, label: str, conf: float, dest: Path) -> None:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
    scale = max(1.0, 400 / max(im.size))
    if scale > 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)))
    d = ImageDraw.Draw(im)
    text = f"{label} {conf:.2f}"
    h = max(14, im.height // 14)
    d.rectangle([0, 0, im.width, h + 6], fill=(0, 0, 0))
    d.text((4, 3), text, fill=(255, 255, 255), font_size=h)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    atomic_write_bytes(dest, buf.getvalue())


@dataclass
class Decision:
    """How a label is picked from the probabilities: the top class, or (binary) P(positive) >= threshold."""
    positive: Optional[int] = None
    threshold: Optional[float] = None
    rule: str = "the top class"

    def label(self, p) -> int:
        if self.threshold is None:
            return int(p.argmax())
        return self.positive if p[self.positive] >= self.threshold else 1 - self.positive


def decision(run: str | Path | None, classes: list[str], threshold: Union[str, float] = "validation") -> Decision:
    """The labelling rule ``threshold`` asks for: ``"validation"`` applies the threshold a binary run chose on
    its validation split (metrics.json ``test.threshold``; the top class where there is none), ``"argmax"`` the
    top class, a number that threshold on P(positive class)."""
    if str(threshold) == "argmax":
        return Decision()
    saved: dict = {}
    if run is not None and Path(run).is_dir():
        from .runs import RunFolder

        saved = RunFolder(run).read_metrics().get("test", {})
    if str(threshold) == "validation":
        if len(classes) != 2 or saved.get("threshold") is None:
            why = "more than two classes" if len(classes) != 2 else "no threshold chosen on validation in this model"
            return Decision(rule=f"the top class ({why})")
        pos = classes.index(saved["positive_class"])
        t = float(saved["threshold"])
        return Decision(pos, t, f"P({classes[pos]}) >= {t:.3f}, the threshold chosen on the run's validation split "
                                f"(max F1; --threshold argmax for the top class)")
    try:
        t = float(threshold)
    except ValueError:
        raise ConfigError(f"--threshold {threshold!r}: give 'validation', 'argmax' or a probability such as 0.5") from None
    if len(classes) != 2 or not 0.0 <= t <= 1.0:
        raise ConfigError(f"--threshold {t} needs a two-class model and a probability in 0..1 "
                          f"(this model has {len(classes)} classes)")
    from .classes import positive_index

    pos = classes.index(saved["positive_class"]) if saved.get("positive_class") in classes else \
        positive_index(classes, None)
    return Decision(pos, t, f"P({classes[pos]}) >= {t:g} (--threshold)")


def predict(run: str | Path | None, inputs: str | Path | Iterable[str | Path], out: str | Path | None = None,
            annotate: bool = True, batch_size: int = 32, quiet: bool = False,
            backend: str = "onnx", threads: int = 0, threshold: Union[str, float] = "validation",
            tta: bool = False) -> dict:
    """Predict every image in ``inputs`` (files or folders) with the model of ``run`` (a run folder or an .onnx
    file; ``None``: the bundled face-mask classifier). ``backend="onnx"`` runs ONNX Runtime on the run's exported
    model (exported into the run folder on first use, as `visionlab detect` does, and said so); ``torch`` runs the
    run's torch model. ``threshold``: see ``decision``; ``tta`` averages each image with its mirror image."""
    from .images import decode_array
    from .inference.load import load_classifier

    clf = load_classifier(run, backend if run is not None and Path(run).suffix.lower() != ".onnx" else "onnx",
                          threads, quiet=quiet)
    classes = list(clf.classes)
    rule = decision(run, classes, threshold)
    size = int(clf.image_size)
    source = str(run) if run is not None else f"bundled:{Path(clf.source).name}"
    out_dir = None
    if out:
        from .outdir import claim_out

        out_dir = claim_out(out, "predict")  # an existing folder's files are never replaced: a new sub-folder
    files, problems = collect_images([inputs] if isinstance(inputs, (str, Path)) else inputs,
                                     out_dir.resolve() if out_dir is not None else None)
    rows: list[dict] = []
    with progress(disable=quiet) as bar:
        task = bar.add_task("predict", total=len(files), info="")
        for start in range(0, len(files), batch_size):
            chunk, xs = [], []
            for f in files[start:start + batch_size]:
                try:
                    xs.append(decode_array(f, size).transpose(2, 0, 1))  # H x W x 3 -> 3 x S x S
                    chunk.append(f)
                except DataError as e:
                    problems.append((shown(f), str(e)))
            if xs:
                batch = np.ascontiguousarray(np.stack(xs))
                probs = clf.predict_proba(batch)
                if tta:  # flip test-time augmentation: the mean with the mirror image's probabilities
                    probs = (probs + clf.predict_proba(np.ascontiguousarray(batch[..., ::-1]))) / 2
                for f, p in zip(chunk, probs):
                    k = rule.label(p)
                    rows.append({"path": str(f), "label": classes[k], "confidence": float(p[k]),
                                 **{f"p_{c}": float(v) for c, v in zip(classes, p)}})
            bar.update(task, advance=len(files[start:start + batch_size]))
    if out_dir is not None:
        write_csv(out_dir / "predictions.csv", rows)
        atomic_write_text(out_dir / "predictions.json", json.dumps(
            {"run": source, "classes": classes, "labels_by": rule.rule, "threshold": rule.threshold, "tta": tta,
             "predictions": rows,
             "unreadable": [{"path": p, "reason": r} for p, r in problems]}, indent=2))
        if annotate:
            names: set[str] = set()
            for r in rows:
                src = Path(r["path"])
                name = f"{src.stem}.jpg"
                i = 1
                while name in names:  # same file name in different folders
                    i += 1
                    name = f"{src.stem}-{i}.jpg"
                names.add(name)
                _annotate(src, r["label"], r["confidence"], out_dir / "annotated" / name)
    return {"predictions": rows, "unreadable": problems, "classes": classes, "model": source,
            "backend": clf.backend, "labels_by": rule.rule, "threshold": rule.threshold, "tta": tta,
            "out_dir": str(out_dir) if out_dir is not None else None}


from .verbs import make_callable  # noqa: E402

make_callable(__name__, predict)  # visionlab.predict stays the verb even once this module is imported (verbs.py)
