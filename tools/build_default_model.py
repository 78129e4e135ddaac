"""Rebuild visionlab's bundled face-mask classifier from ../shared/data with visionlab's own commands.

    python tools/build_default_model.py                       # ../shared beside the repository, work in build/
    python tools/build_default_model.py --shared /data/shared --work /tmp/facemask-build --epochs 6

Steps (each a `visionlab` command, printed and recorded in the model card as run):
1. `visionlab data faces` cuts face crops from facemask_boxes (600 annotated crowd photos, split 70:15:15 by photo,
   seed 0) and facemask/ (one-face photos, their own splits), with a Background class from the detector's false
   boxes and the detection profile (YuNet at 3x, threshold 0.15, a learned box correction) in detect.json.
2. `visionlab train`: EfficientNet-Lite0 (ImageNet weights), all layers, 64 px, on the Train crops only.
3. `visionlab export` to ONNX (the profile goes into the file's metadata).
4. `visionlab detect --truth` on the Validation and Test photos (never trained on): mAP and the rest.
5. The ONNX file and a model card (model_card.json + MODEL_CARD.md) are written into src/visionlab/assets/.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from visionlab.io import atomic_write_text, sha256_file, write_via

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "visionlab" / "assets"
FACE_MODEL = "face_detection_yunet_2026may.onnx"


def shown(cmd: list[str]) -> str:
    """The command as a user types it: `visionlab ...` for this interpreter's `-m visionlab`, and paths under the
    repository's parent folder written relative to the repository (../shared/...)."""
    text = shlex.join(cmd).replace(shlex.join([sys.executable, "-m", "visionlab"]), "visionlab")
    return text.replace(str(REPO.parent) + "/", "../").replace(str(REPO) + "/", "")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(cmd: list[str], log: list[dict]) -> float:
    print("$ " + shlex.join(cmd), flush=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    s = time.perf_counter() - t
    log.append({"command": shown(cmd), "seconds": round(s, 1)})
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--work", type=Path, default=REPO / "build" / "default-model")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-install", action="store_true", help="do not copy the result into src/visionlab/assets")
    a = ap.parse_args()
    vl = [sys.executable, "-m", "visionlab"]
    data, face = a.shared / "data", a.shared / "models" / FACE_MODEL
    boxes = data / "facemask_boxes" / "boxes.csv"
    for p in (boxes, data / "facemask", face):
        if not p.exists():
            sys.exit(f"error: {p} does not exist; pass --shared with the folder holding data/ and models/")
    if a.work.exists():
        shutil.rmtree(a.work)
    a.work.mkdir(parents=True)
    crops, runf = a.work / "crops", a.work / "run"
    log: list[dict] = []
    run(vl + ["data", "faces", str(boxes), str(data / "facemask"), "--out", str(crops), "--face-model", str(face),
              "--seed", str(a.seed)], log)
    train_s = run(vl + ["train", "--data", str(crops), "--model", "efficientnet_lite0", "--mode", "full",
                        "--image-size", str(a.image_size), "--optimizer", "adam", "--lr", "1e-3", "--schedule",
                        "cosine", "--epochs", str(a.epochs), "--label-smoothing", "0.1", "--augment",
                        "--seed", str(a.seed), "--out", str(runf), "--quiet"], log)
    run(vl + ["export", str(runf)], log)
    evals = {}
    for split in ("Validation", "Test"):
        out = a.work / f"eval-{split.lower()}"
        run(vl + ["detect", str(data / "facemask_boxes" / "images"), "--model", str(runf), "--out", str(out),
                  "--face-model", str(face), "--truth", str(boxes), "--subset", f"{crops / 'faces.json'}:{split}"],
            log)
        evals[split] = json.loads((out / "metrics.json").read_text())
    metrics = json.loads((runf / "metrics.json").read_text())
    info = json.loads((runf / "model.json").read_text())
    manifest = json.loads((crops / "faces.json").read_text())
    onnx_file = runf / "model.onnx"
    per_class = {c: round(v["recall"], 4) for c, v in metrics["test"]["per_class"].items() if isinstance(v, dict)
                 and c in info["classes"]}
    card = {
        "name": "visionlab face-mask classifier (three classes and background)",
        "classes": info["classes"], "face_classes": [c for c in info["classes"] if c != "Background"],
        "image_size": info["image_size"], "architecture": "EfficientNet-Lite0 (ImageNet weights), all layers trained",
        "built": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores",
        "training_seconds": round(metrics.get("train_seconds", train_s), 1),
        "commands": log,
        "data": {
            "facemask_boxes": "600 street/shop/crowd photos with 2,864 face boxes (the Kaggle 'Face Mask Detection' "
                              "set by andrewmvd, CC0 1.0)",
            "facemask": "chandrikadeb7/Face-Mask-Detection with_mask/without_mask images (MIT licence)",
            "split": {k: len(v) for k, v in manifest["photos"].items()}, "split_seed": manifest["seed"],
            "crops": manifest["counts"],
        },
        "crop_test": {"accuracy": round(metrics["test"]["accuracy"], 4), "recall_per_class": per_class,
                      "crops": metrics["test"]["n"]},
        "detection": {s: {k: e[k] for k in ("photos", "faces", "map50", "map", "ap50_per_class", "ap_per_class",
                                            "face_recall", "recall_by_size", "false_boxes", "map50_top1")}
                      for s, e in evals.items()},
        "files": {},
    }
    if a.no_install:
        print(json.dumps(card, indent=2))
        return
    write_via(ASSETS / "facemask_classifier.onnx", lambda tmp: shutil.copyfile(onnx_file, tmp))
    for name in ("facemask_classifier.onnx", FACE_MODEL):
        p = ASSETS / name
        card["files"][name] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    atomic_write_text(ASSETS / "model_card.json", json.dumps(card, indent=2) + "\n")
    atomic_write_text(ASSETS / "MODEL_CARD.md", model_card_md(card))
    print(f"installed {ASSETS / 'facemask_classifier.onnx'} and its card")


def model_card_md(c: dict) -> str:
    d = c["detection"]
    lines = [f"# {c['name']}", "",
             f"{c['architecture']}, {c['image_size']} px input, classes {', '.join(c['classes'])} (Background is the "
             f"second stage that rejects boxes that are not faces). Built {c['built']} on {c['machine']}; "
             f"training took {c['training_seconds']:.0f} s.", "",
             "## Data and licences", "",
             f"- facemask_boxes: {c['data']['facemask_boxes']}. Split by photo, seed {c['data']['split_seed']}: "
             + ", ".join(f"{k} {v} photos" for k, v in c["data"]["split"].items()) + ".",
             f"- facemask: {c['data']['facemask']}, in its own Train/Validation/Test splits.",
             "- The YuNet face detector bundled beside it: OpenCV Zoo, MIT licence (LICENSE-YuNet.txt).", "",
             "Training used the Train crops only. Crops per split and class: "
             + "; ".join(f"{s}: " + ", ".join(f"{k} {v}" for k, v in cs.items()) for s, cs in c["data"]["crops"].items())
             + ".", "",
             "## How it was made", "",
             "`python tools/build_default_model.py` ran these commands (its `--work` folder was the one shown):", "",
             "```"]
    lines += [f"{x['command']}    # {x['seconds']} s" for x in c["commands"]]
    lines += ["```", "", "## Measured", "",
              f"Face crops of the Test split ({c['crop_test']['crops']} crops): accuracy "
              f"{100 * c['crop_test']['accuracy']:.1f}%; recall per class: "
              + ", ".join(f"{k} {100 * v:.1f}%" for k, v in c["crop_test"]["recall_per_class"].items()) + ".", "",
              "Detection on annotated photos never trained on (`visionlab detect --truth`, COCO mAP by torchmetrics):", "",
              "| split | photos | faces | mAP@0.5 | WithMask | WithoutMask | MaskWornIncorrectly | mAP@[.5:.95] | faces found |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s, e in d.items():
        ap = e["ap50_per_class"]
        lines.append(f"| {s} | {e['photos']} | {e['faces']} | {e['map50']:.3f} | {ap.get('WithMask', float('nan')):.3f} | "
                     f"{ap.get('WithoutMask', float('nan')):.3f} | {ap.get('MaskWornIncorrectly', float('nan')):.3f} | "
                     f"{e['map']:.3f} | {100 * e['face_recall']:.1f}% |")
    lines += ["", "Face recall by size (shorter side of the annotated box), Validation: "
              + ", ".join(f"{k} {v['found']}/{v['faces']}" for k, v in d["Validation"]["recall_by_size"].items()) + ".",
              "", "The incorrectly-worn class has few faces in each split, so its AP moves by about 0.1 per face found "
              "or missed.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
