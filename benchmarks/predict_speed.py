"""`visionlab predict` against a plain loop over the same images, side by side in one run.

    python benchmarks/predict_speed.py RUN FOLDER [--repeats 2]

The plain loop is what a user would write: decode each image with visionlab's decode_image (the same decoder
predict uses), stack batches of 32, call the run's torch model under inference_mode, softmax. `visionlab predict`
(ONNX Runtime on the run's exported model, all cores, no annotated copies) is timed on the same files; the two
alternate `--repeats` times and the best time of each is compared. Prints images/s and the ratio of time per image.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from visionlab.data import decode_image
from visionlab.predict import collect_images, predict
from visionlab.runs import load_run
from visionlab.training.precision import cpu_summary


def plain(run, files: list[Path], batch: int = 32) -> float:
    loaded = load_run(run)
    model = loaded.model.eval()
    t = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(files), batch):
            x = torch.stack([decode_image(f, loaded.image_size) for f in files[i:i + batch]]).float()
            torch.softmax(model(x), 1)
    return time.perf_counter() - t


def ours(run, files: list[Path]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        predict(run, files, Path(tmp) / "p", annotate=False, quiet=True)
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("folder")
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    files, _ = collect_images([a.folder])
    ours(a.run, files[:64])  # export the ONNX file once and warm both paths
    plain(a.run, files[:64])
    best = {"predict": float("inf"), "plain": float("inf")}
    for _ in range(a.repeats):
        best["predict"] = min(best["predict"], ours(a.run, files))
        best["plain"] = min(best["plain"], plain(a.run, files))
    n = len(files)
    print(f"CPU: {cpu_summary()}; {n} images, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; best of {a.repeats}")
    for k, v in best.items():
        print(f"{k:>8}: {v:7.2f} s  {n / v:7.1f} images/s  {1000 * v / n:6.2f} ms/image")
    print(f"predict / plain time per image: {best['predict'] / best['plain']:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
