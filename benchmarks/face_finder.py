"""How small faces are best found: today's YuNet (OpenCV) against YuNet_n (ONNX Runtime), upscaled, at a fixed
longer side, in tiles and at two scales merged, on the annotated photos of ../shared/data/facemask_boxes.

A face counts as found when a detector box overlaps it by IoU >= 0.5, one to one (``visionlab.boxes.match``).
YuNet's boxes sit higher and run taller than the annotators' (boxes.py), so each configuration's boxes are also
scored after a ``BoxCorrection`` fitted on the other half of the photos (two-fold, photos split by index parity),
as ``visionlab data faces`` fits one for a trained model; that is the "found" column, with a 95% bootstrap
interval over photos (1000 resamples). "false/photo" = detector boxes matched to no annotated face (after the
correction; some are real faces the annotators left out). Every configuration runs on each photo in turn
(interleaved), on one thread, so a busy machine slows them alike; ms is the median per photo of the detector
alone (resize, network, decoding, NMS).

The ``fast`` candidates run on video-sized frames: each photo fitted into 640 x 480 (the ``fast`` setting searches
the frame as it is, threshold >= 0.5).

    taskset -c 0 python benchmarks/face_finder.py                   # a seeded 300 of the photos (~6 min loaded)
    taskset -c 0 python benchmarks/face_finder.py --photos 0 --only "n 2x" "n side 640"   # all 600, fewer configs
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from visionlab.boxes import BoxCorrection, match, xywh_to_xyxy
from visionlab.detect.faces import build_detector

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VISIONLAB_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data" / "facemask_boxes"
TODAY = SHARED / "models" / "face_detection_yunet_2026may.onnx"
YUNET_N = SHARED / "models" / "yunet_n_dynamic.onnx"
SMALL = 16  # px, the annotated box's shorter side (evaluation/detection.py's smallest size band)
LOW = 0.15  # every configuration runs at the lowest threshold scored; higher ones filter its boxes afterwards
FRAME = (640, 480)

# (label, detector, model, options, thresholds scored). "2x"/"3x" = 1x and kx merged by NMS (the shipped upscale);
# "kx only" = the enlarged photo alone; "side 640" = the longer side resized to 640 px (a 640x640 input, letterboxed)
PHOTO_CONFIGS = [
    ("today 1x", "yunet", TODAY, {}, (0.15, 0.5)),
    ("today 2x", "yunet", TODAY, {"upscale": 2.0}, (0.15, 0.5)),
    ("today 3x (default)", "yunet", TODAY, {"upscale": 3.0}, (0.15, 0.5)),
    ("today side 640", "yunet", TODAY, {"side": 640, "full_pass": False}, (0.15, 0.5)),
    ("n 1x", "yunet_ort", YUNET_N, {}, (0.15, 0.5)),
    ("n 2x", "yunet_ort", YUNET_N, {"upscale": 2.0}, (0.15, 0.5)),
    ("n 3x", "yunet_ort", YUNET_N, {"upscale": 3.0}, (0.15, 0.5)),
    ("n 2x only", "yunet_ort", YUNET_N, {"upscale": 2.0, "full_pass": False}, (0.15, 0.5)),
    ("n side 640", "yunet_ort", YUNET_N, {"side": 640, "full_pass": False}, (0.15, 0.5)),
    ("n 2x tiles 320", "yunet_ort", YUNET_N, {"upscale": 2.0, "tile": 320}, (0.15, 0.5)),
    ("n 3x tiles 480", "yunet_ort", YUNET_N, {"upscale": 3.0, "tile": 480}, (0.15, 0.5)),
]
DEFAULT = "today 3x (default)"
FAST_CONFIGS = [
    ("today 1x (fast)", "yunet", TODAY, {}, (0.5,)),
    ("n 1x", "yunet_ort", YUNET_N, {}, (0.5,)),
    ("n 1.5x", "yunet_ort", YUNET_N, {"upscale": 1.5}, (0.5,)),
    ("today 1.5x", "yunet", TODAY, {"upscale": 1.5}, (0.5,)),
]
FAST_DEFAULT = "today 1x (fast)"


def load_truth() -> dict[str, np.ndarray]:
    truth: dict[str, list] = defaultdict(list)
    with open(DATA / "boxes.csv", newline="") as f:
        for r in csv.DictReader(f):
            truth[r["image"]].append([float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")])
    return {k: np.asarray(v) for k, v in truth.items()}


def fit_frame(img: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo scaled to fit a 640x480 frame (black around it), and its boxes in the frame's pixels."""
    h, w = img.shape[:2]
    s = min(FRAME[0] / w, FRAME[1] / h)
    small = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA)
    frame = np.zeros((FRAME[1], FRAME[0], 3), np.uint8)
    frame[:small.shape[0], :small.shape[1]] = small
    return frame, boxes * s


def run(configs, photos: list[tuple[np.ndarray, np.ndarray]]):
    """Raw rows (N x 15, image pixels) and seconds per photo for every configuration, interleaved photo by photo."""
    dets = {}
    for label, name, model, opts, _ in configs:
        o = {k: v for k, v in opts.items() if k != "side"}
        dets[label] = (build_detector(name, model_path=model, score_threshold=LOW, **o), opts.get("side"))
    rows: dict[str, list] = {c[0]: [] for c in configs}
    secs: dict[str, list] = {c[0]: [] for c in configs}
    for img, _ in photos[:3]:  # warm-up
        for det, _side in dets.values():
            det.detect_raw(img)
    for i, (img, _) in enumerate(photos):
        order = list(dets.items())
        order = order[i % len(order):] + order[:i % len(order)]  # rotate who goes first
        for label, (det, side) in order:
            t0 = time.perf_counter()
            if side:  # a fixed input side: the photo's longer side resized to it, one pass
                det.upscale = side / max(img.shape[:2])
            r = det.detect_raw(img)
            secs[label].append(time.perf_counter() - t0)
            rows[label].append(r)
    return rows, secs


def corrected(rows: list[np.ndarray], truth: list[np.ndarray]) -> list[np.ndarray]:
    """Each photo's boxes (xyxy) after a BoxCorrection fitted on the other parity's photos (two-fold)."""
    out: list[np.ndarray] = [np.zeros((0, 4))] * len(rows)
    for fold in (0, 1):
        det, lm, sc, gt = [], [], [], []
        for i in range(len(rows)):
            if i % 2 == fold or not len(rows[i]):
                continue
            for d, t, _ in match(xywh_to_xyxy(rows[i][:, :4]), truth[i], 0.3):
                det.append(rows[i][d, :4])
                lm.append(rows[i][d, 4:14])
                sc.append(rows[i][d, 14])
                gt.append(truth[i][t])
        corr = BoxCorrection.fit(np.array(det), np.array(lm), np.array(sc), np.array(gt))
        for i in range(fold, len(rows), 2):
            r = rows[i]
            out[i] = xywh_to_xyxy(corr(r[:, :4], r[:, 4:14], r[:, 14])) if len(r) else np.zeros((0, 4))
    return out


def score(rows: list[np.ndarray], boxes: list[np.ndarray], truth: list[np.ndarray], thr: float) -> dict:
    """Per photo: faces, found, small faces, small found, unmatched boxes; at score >= thr."""
    n = len(truth)
    c = {k: np.zeros(n) for k in ("faces", "found", "small", "small_found", "false", "raw_found")}
    for i in range(n):
        keep = rows[i][:, 14] >= thr if len(rows[i]) else np.zeros(0, bool)
        b, t = boxes[i][keep], truth[i]
        small = np.minimum(t[:, 2] - t[:, 0], t[:, 3] - t[:, 1]) < SMALL
        m = match(b, t, 0.5)
        hit = np.zeros(len(t), bool)
        hit[[j for _, j, _ in m]] = True
        c["faces"][i], c["found"][i] = len(t), hit.sum()
        c["small"][i], c["small_found"][i] = small.sum(), (hit & small).sum()
        c["false"][i] = len(b) - len(m)
        c["raw_found"][i] = len(match(xywh_to_xyxy(rows[i][keep][:, :4]), t, 0.5))
    return c


def bootstrap(found: np.ndarray, faces: np.ndarray, reps: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of sum(found)/sum(faces) with photos resampled with replacement."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(faces), size=(reps, len(faces)))
    ratios = found[idx].sum(1) / faces[idx].sum(1)
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def paired(found: np.ndarray, base: np.ndarray, faces: np.ndarray, reps: int = 1000, seed: int = 0) -> tuple:
    """Difference in found share against the default on the same resampled photos: (diff, lo, hi)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(faces), size=(reps, len(faces)))
    d = (found[idx].sum(1) - base[idx].sum(1)) / faces[idx].sum(1)
    return (found.sum() - base.sum()) / faces.sum(), float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))


def table(title: str, configs, photos, default: str) -> None:
    truth = [t for _, t in photos]
    rows, secs = run(configs, photos)
    ms = {k: 1000 * statistics.median(v) for k, v in secs.items()}
    print(f"\n{title}")
    head = (f"| configuration | thr | found % [95% CI] | vs default, points [95% CI] | raw IoU>=0.5 % | "
            f"<{SMALL} px found | false/photo | ms/photo | x {default} |")
    print(head)
    print("|---|---:|---|---|---:|---:|---:|---:|---:|")
    scored = {}
    for label, _, _, _, thrs in configs:
        boxes = corrected(rows[label], truth)
        scored.update({(label, thr): score(rows[label], boxes, truth, thr) for thr in thrs})
    for label, _, _, _, thrs in configs:
        for thr in thrs:
            c = scored[label, thr]
            base = scored.get((default, thr))
            lo, hi = bootstrap(c["found"], c["faces"])
            f = c["found"].sum() / c["faces"].sum()
            d = paired(c["found"], base["found"], c["faces"]) if base is not None and label != default else None
            vs = f"{100 * d[0]:+.1f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]" if d else ""
            print(f"| {label} | {thr:.2f} | {100 * f:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] | {vs} | "
                  f"{100 * c['raw_found'].sum() / c['faces'].sum():.1f} | "
                  f"{int(c['small_found'].sum())}/{int(c['small'].sum())} "
                  f"({100 * c['small_found'].sum() / max(1, c['small'].sum()):.0f}%) | "
                  f"{c['false'].mean():.2f} | {ms[label]:.1f} | {ms[label] / ms[default]:.2f} |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=300, help="a seeded random subset of this many photos (0: all "
                    "600; every configuration on all of them takes about 15 minutes on one loaded core)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-fast", action="store_true", help="skip the 640x480 fast candidates")
    ap.add_argument("--only", nargs="*", default=None,
                    help="configurations to run, by label (each table's default always runs)")
    args = ap.parse_args(argv)
    for p in (DATA / "boxes.csv", TODAY, YUNET_N):
        if not p.is_file():
            sys.exit(f"{p} is absent; set VISIONLAB_SHARED to the shared folder")
    if 0 < args.photos < 30:
        sys.exit("--photos: use at least 30 (each half of them fits a box correction), or 0 for all")
    cv2.setNumThreads(1)
    truth = load_truth()
    names = sorted(truth)
    if args.photos:
        names = sorted(np.random.default_rng(args.seed).choice(names, args.photos, replace=False).tolist())
    photos = [(cv2.imread(str(DATA / "images" / n)), truth[n]) for n in names]
    import onnxruntime

    print(f"{len(photos)} photos of facemask_boxes ({sum(len(t) for _, t in photos)} faces, "
          f"{sum(int((np.minimum(t[:, 2] - t[:, 0], t[:, 3] - t[:, 1]) < SMALL).sum()) for _, t in photos)} "
          f"under {SMALL} px); OpenCV {cv2.__version__}, ONNX Runtime {onnxruntime.__version__}, one thread; "
          f"CPU affinity {sorted(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}")
    configs = [c for c in PHOTO_CONFIGS if args.only is None or c[0] in args.only or c[0] == DEFAULT]
    table("photos (accurate candidates)", configs, photos, DEFAULT)
    if not args.no_fast:
        frames = [fit_frame(img, t) for img, t in photos]
        fast = [c for c in FAST_CONFIGS if args.only is None or c[0] in args.only or c[0] == FAST_DEFAULT]
        table(f"{FRAME[0]}x{FRAME[1]} frames (fast candidates)", fast, frames, FAST_DEFAULT)


if __name__ == "__main__":
    main()
