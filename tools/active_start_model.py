"""The starting classifier of the face active-learning simulation: one that never saw facemask_boxes' photos.

    python tools/active_start_model.py CROPS OUT [--epochs 4] [--threads 1]

CROPS: face crops of the one-face photos of ../shared/data/facemask/ cut with the pipeline's geometry, as class
folders WithMask/ and WithoutMask/ (e.g. the ``facemask_*`` files of a `visionlab data faces` Train split; the
simulation's `--replay` is the same folder). OUT: a run folder for `visionlab active simulate --photos ... --model
OUT` and `visionlab detect --model OUT`.

The run has the bundled classifier's classes, order and detection profile, so the pipeline treats it as it treats
the bundled one; it trains EfficientNet-Lite0 from its ImageNet weights, every layer, on WithMask and WithoutMask
only: MaskWornIncorrectly and the background class ("not a face") have no examples, as for a user whose model was
never shown them. Labelling in the simulation is what teaches them.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from visionlab.active.facemodel import FaceModel, read_crops
from visionlab.active.faceretrain import ARCH, train, write_run
from visionlab.active.store import list_images
from visionlab.config import RunConfig
from visionlab.models import build


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("crops", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.out.exists():
        raise SystemExit(f"{a.out} exists; give a new folder")
    fm = FaceModel(None)  # the bundled classifier: its classes, crop size and detection profile
    paths, ys = [], []
    for c in ("WithMask", "WithoutMask"):
        files = list_images(a.crops / c)
        if not files:
            raise SystemExit(f"{a.crops / c} holds no images")
        paths += files
        ys += [fm.classes.index(c)] * len(files)
    x, y = read_crops(paths, fm.image_size), np.asarray(ys, np.int64)
    cfg = RunConfig.build(model=ARCH, weights="imagenet", mode="full", image_size=fm.image_size, epochs=a.epochs,
                          lr=a.lr, seed=a.seed, optimizer="adam", data=str(a.crops))
    torch.manual_seed(a.seed)
    model = build(cfg, len(fm.classes), fm.image_size)
    history = train(model, x, y, a.epochs, a.lr, a.seed)
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(x[i:i + 256]).float()).argmax(1) for i in range(0, len(x), 256)])
    acc = float((pred.numpy() == y).mean())
    write_run(a.out, model, fm, cfg, {"train_accuracy": acc, "train_counts": {c: int((y == fm.classes.index(c)).sum())
                                                                               for c in ("WithMask", "WithoutMask")}},
              history)
    print(f"{a.out}: {len(y)} crops, {a.epochs} epochs, training accuracy {acc:.3f}, losses "
          f"{[h['loss'] for h in history]}")


if __name__ == "__main__":
    main()
