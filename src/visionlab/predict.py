"""Prediction on unseen images of any format or size: labels, confidences, annotated copies, CSV and JSON.
Unreadable files are reported and skipped, never fatal; the input images are only read."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from .errors import DataError
from .io import atomic_write_bytes, atomic_write_text, write_csv
from .progress import progress


def collect_images(inputs: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    files, missing = [], []
    for i in inputs:
        p = Path(i)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            files.append(p)
        else:
            missing.append((str(p), "does not exist"))
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


def predict(run: str | Path | None, inputs: str | Path | Iterable[str | Path], out: str | Path | None = None,
            annotate: bool = True, batch_size: int = 32, quiet: bool = False,
            backend: str = "onnx", threads: int = 0) -> dict:
    """Predict every image in ``inputs`` (files or folders) with the model of ``run`` (a run folder or an .onnx
    file; ``None``: the bundled face-mask classifier). ``backend="onnx"`` runs ONNX Runtime on the run's exported
    model (exported on first use, as `visionlab detect` does); ``torch`` runs the run's torch model."""
    from .images import decode_array
    from .inference.load import load_classifier

    clf = load_classifier(run, backend if run is not None and Path(run).suffix.lower() != ".onnx" else "onnx",
                          threads)
    classes = list(clf.classes)
    size = int(clf.image_size)
    source = str(run) if run is not None else f"bundled:{Path(clf.source).name}"
    files, problems = collect_images([inputs] if isinstance(inputs, (str, Path)) else inputs)
    rows: list[dict] = []
    out_dir = Path(out) if out else None
    with progress(disable=quiet) as bar:
        task = bar.add_task("predict", total=len(files), info="")
        for start in range(0, len(files), batch_size):
            chunk, xs = [], []
            for f in files[start:start + batch_size]:
                try:
                    xs.append(decode_array(f, size).transpose(2, 0, 1))  # H x W x 3 -> 3 x S x S
                    chunk.append(f)
                except DataError as e:
                    problems.append((str(f), str(e)))
            if xs:
                probs = clf.predict_proba(np.ascontiguousarray(np.stack(xs)))
                for f, p in zip(chunk, probs):
                    k = int(p.argmax())
                    rows.append({"path": str(f), "label": classes[k], "confidence": float(p[k]),
                                 **{f"p_{c}": float(v) for c, v in zip(classes, p)}})
            bar.update(task, advance=len(files[start:start + batch_size]))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
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
            "backend": clf.backend}


from .verbs import make_callable  # noqa: E402

make_callable(__name__, predict)  # visionlab.predict stays the verb even once this module is imported (verbs.py)
