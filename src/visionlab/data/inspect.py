"""`visionlab data inspect` and `visionlab data split`: look at a folder before training on it."""
from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from ..errors import DataError
from ..io import atomic_write_text, shown
from .checks import check_layout

def inspect(root: str | Path, out: Optional[str | Path] = None, samples_per_class: int = 6) -> dict:
    """Counts per split and class, image sizes, unreadable files; a distribution and a sample-grid PNG."""
    from .. import plots

    root = Path(root)
    lay = check_layout(root)
    counts: dict[str, dict[str, int]] = {}
    sizes: list[tuple[int, int]] = []
    modes: Counter = Counter()
    bad: list[tuple[str, str]] = []
    samples: dict[str, list[Path]] = {}
    for split, per_class in lay.files.items():
        counts[split] = {}
        for cls, files in per_class.items():
            ok = 0
            for f in files:
                try:  # header only: sizes and modes without decoding every image
                    with Image.open(f) as im:
                        sizes.append(im.size)
                        modes[im.mode] += 1
                    ok += 1
                    samples.setdefault(cls, []).append(Path(f))
                except Exception as e:  # Pillow raises many types for non-images
                    bad.append((str(f), type(e).__name__))
            counts[split][cls] = ok
    classes = lay.classes
    wh = np.array(sizes) if sizes else np.zeros((0, 2))
    summary = {
        "root": str(root), "splits": counts, "classes": classes,
        "images": int(sum(sum(s.values()) for s in counts.values())), "unreadable": bad,
        "size": {"min_w": int(wh[:, 0].min()) if len(wh) else 0, "max_w": int(wh[:, 0].max()) if len(wh) else 0,
                 "min_h": int(wh[:, 1].min()) if len(wh) else 0, "max_h": int(wh[:, 1].max()) if len(wh) else 0,
                 "median_w": float(np.median(wh[:, 0])) if len(wh) else 0,
                 "median_h": float(np.median(wh[:, 1])) if len(wh) else 0},
        "modes": dict(modes),
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(classes) + 3), 3.8))
        width = 0.8 / max(1, len(counts))
        xs = np.arange(len(classes))
        for j, (split, cs) in enumerate(counts.items()):
            bars = ax.bar(xs + (j - (len(counts) - 1) / 2) * width, [cs.get(c, 0) for c in classes], width, label=split)
            ax.bar_label(bars, fontsize=7)
        ax.set_xticks(xs, [shown(c) for c in classes])
        ax.set_ylabel("images")
        ax.set_title(f"Class distribution: {shown(root.name)}")
        ax.legend()
        plots._save(fig, out / "class_distribution.png")
        rng = np.random.default_rng(0)
        imgs, caps = [], []
        for c in classes:
            fs = samples.get(c, [])
            for i in rng.choice(len(fs), size=min(samples_per_class, len(fs)), replace=False):
                with Image.open(fs[i]) as im:
                    imgs.append(np.asarray(im.convert("RGB").resize((96, 96))).transpose(2, 0, 1))
                caps.append(f"{shown(c)}\n{shown(fs[i].name)}")  # matplotlib cannot draw a non-UTF-8 name
        if imgs:
            plots.image_grid(np.stack(imgs), caps, out / "samples.png", "Sample images per class", cols=samples_per_class)
        atomic_write_text(out / "inspect.json", json.dumps(summary, indent=2))
    return summary


def split_manifest(root: str | Path, ratios: tuple[float, float, float], seed: int = 0,
                   out: Optional[str | Path] = None) -> Path:
    """A CSV (path, class, split) splitting a one-folder data set by seeded stratified ratios. No file moves."""
    from sklearn.model_selection import train_test_split

    root = Path(root)
    lay = check_layout(root)
    if lay.is_split:
        raise DataError(f"{root} is already split into {sorted(lay.splits)}; `data split` is for one folder of "
                        f"class folders")
    paths, labels = [], []
    for cls, files in lay.files["all"].items():
        for f in files:
            paths.append(str(Path(f).relative_to(root)))
            labels.append(cls)
    r = np.array(ratios, float) / sum(ratios)
    idx = np.arange(len(paths))
    tr, rest = train_test_split(idx, train_size=r[0], stratify=labels, random_state=seed)
    rest_labels = [labels[i] for i in rest]
    if r[2] > 0 and r[1] > 0:
        va, te = train_test_split(rest, train_size=r[1] / (r[1] + r[2]), stratify=rest_labels, random_state=seed)
    else:
        va, te = (rest, rest[:0]) if r[1] > 0 else (rest[:0], rest)
    split = {**{int(i): "train" for i in tr}, **{int(i): "val" for i in va}, **{int(i): "test" for i in te}}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "class", "split"])
    for i in idx:
        w.writerow([paths[i], labels[i], split[int(i)]])
    dest = Path(out) if out else Path(f"{root.name}-split-{seed}.csv")
    atomic_write_text(dest, buf.getvalue())
    return dest
