"""Prediction on unseen images of any format or size: labels, confidences, annotated copies, CSV and JSON.
Unreadable files are reported and skipped, never fatal; the input images are only read."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Iterable, Optional

import torch
from PIL import Image, ImageDraw, ImageOps

from .errors import DataError
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


def predict(run: str | Path | None, inputs: Iterable[str | Path], out: str | Path | None = None,
            annotate: bool = True, batch_size: int = 32, quiet: bool = False,
            backend: str = "onnx", threads: int = 0) -> dict:
    """Predict every image in ``inputs`` (files or folders) with the model of ``run`` (a run folder or an .onnx
    file; ``None``: the bundled face-mask classifier). ``backend="onnx"`` runs ONNX Runtime on the run's exported
    model (exported on first use, as `visionlab detect` does); ``torch`` runs the run's torch model."""
    from .images import decode_image
    from .inference.backends import load_classifier

    clf = load_classifier(run, backend if run is not None and Path(run).suffix.lower() != ".onnx" else "onnx",
                          threads)
    classes = list(clf.classes)
    size = int(clf.image_size)
    source = str(run) if run is not None else f"bundled:{Path(getattr(clf, 'path', 'classifier')).name}"
    out_dir = None
    if out:
        from .outdir import claim_out

        out_dir = claim_out(out, "predict")  # an existing folder's files are never replaced: a new sub-folder
    files, problems = collect_images(inputs, out_dir.resolve() if out_dir is not None else None)
    rows: list[dict] = []
    with progress(disable=quiet) as bar:
        task = bar.add_task("predict", total=len(files), info="")
        for start in range(0, len(files), batch_size):
            chunk, xs = [], []
            for f in files[start:start + batch_size]:
                try:
                    xs.append(decode_image(f, size))
                    chunk.append(f)
                except DataError as e:
                    problems.append((shown(f), str(e)))
            if xs:
                probs = clf.predict_proba(torch.stack(xs).numpy())
                for f, p in zip(chunk, probs):
                    k = int(p.argmax())
                    rows.append({"path": str(f), "label": classes[k], "confidence": float(p[k]),
                                 **{f"p_{c}": float(v) for c, v in zip(classes, p)}})
            bar.update(task, advance=len(files[start:start + batch_size]))
    if out_dir is not None:
        write_csv(out_dir / "predictions.csv", rows)
        atomic_write_text(out_dir / "predictions.json", json.dumps(
            {"run": source, "classes": classes, "predictions": rows,
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
            "backend": getattr(clf, "backend", backend), "out_dir": str(out_dir) if out_dir is not None else None}
