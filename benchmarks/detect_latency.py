"""Per-frame latency and FPS of detection at 640x480 with 1 and 4 faces: torch eager vs ONNX Runtime, one thread.

Frames are composed from real faces (the two masked faces of scenes/pic1.jpeg and unmasked faces from
facemask/Test/WithoutMask) pasted onto a face-free background (pic1's sky). One frame = YuNet detection +
square crops + ONE batched classifier call + drawing, the work `visionlab detect` does per video frame
(decoding and encoding excluded). The classifier is MobileNetV3-small (random weights: speed only) with the
raw-pixel Normalize layer. Both backends are measured in this one run and printed side by side.

    python benchmarks/detect_latency.py                       # mobilenet_v3_small at 128 px
    python benchmarks/detect_latency.py --model mobilenet_v2 --size 224
    python benchmarks/detect_latency.py --thresholds          # also: YuNet/Haar detection rates (docs/detection.md)
    python benchmarks/detect_latency.py --bundled             # the bundled classifier: fast vs accurate setting,
                                                              # today's YuNet against bundled YuNet_n (ORT)
    python benchmarks/detect_latency.py --bundled --candidate RUN/model.onnx   # and a candidate beside it
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision
from torch import nn

from visionlab.detect import DetectionPipeline, build_detector, draw_results
from visionlab.inference.backends import OnnxClassifier, TorchClassifier
from visionlab.inference.export import export_onnx
from visionlab.models.layers import Normalize
from visionlab.training.precision import cpu_summary

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VISIONLAB_SHARED", REPO.parent / "shared"))
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
W, H = 640, 480


def face_tiles(detector, n: int) -> list[np.ndarray]:
    """n face images with some context: pic1's two masked faces first, then unmasked facemask test faces."""
    pic1 = cv2.imread(str(SHARED / "data" / "scenes" / "pic1.jpeg"))
    tiles = []
    for f in sorted(detector.detect(pic1), key=lambda f: f.box[0]):
        x, y, w, h = f.box
        m = int(0.35 * max(w, h))
        tiles.append(pic1[max(0, y - m):y + h + m, max(0, x - m):x + w + m])
    for p in sorted((SHARED / "data" / "facemask" / "Test" / "WithoutMask").glob("*.jpg")):
        if len(tiles) >= n:
            break
        img = cv2.imread(str(p))
        if len(detector.detect(img)) == 1 and min(img.shape[:2]) >= 150:
            tiles.append(cv2.copyMakeBorder(img, 20, 20, 20, 20, cv2.BORDER_REPLICATE))
    return tiles[:n]


def compose(tiles: list[np.ndarray]) -> np.ndarray:
    pic1 = cv2.imread(str(SHARED / "data" / "scenes" / "pic1.jpeg"))
    frame = cv2.resize(pic1[:130, :], (W, H), interpolation=cv2.INTER_LINEAR)  # sky and clouds: no faces
    if len(tiles) == 1:
        slots = [(W // 2 - 110, H // 2 - 120, 220)]
    else:
        side = 200
        slots = [(40 + (i % 2) * 340, 20 + (i // 2) * 240, side) for i in range(len(tiles))]
    for tile, (x, y, side) in zip(tiles, slots):
        th, tw = tile.shape[:2]
        s = side / max(th, tw)
        t = cv2.resize(tile, (int(tw * s), int(th * s)), interpolation=cv2.INTER_AREA)
        frame[y:y + t.shape[0], x:x + t.shape[1]] = t
    return frame


def classifier_model(name: str) -> nn.Module:
    torch.manual_seed(0)
    net = getattr(torchvision.models, name)(weights=None, num_classes=2)
    return nn.Sequential(Normalize(*IMAGENET), net).eval()


def time_frames(pipes: dict[str, DetectionPipeline], frame: np.ndarray, n: int, warmup: int = 5) -> dict:
    """Backends interleaved frame by frame, so a busy machine slows them alike."""
    detector = next(iter(pipes.values())).detector
    faces = detector.detect(frame)
    crops = {k: p.crops(frame, faces) for k, p in pipes.items()}
    work = frame.copy()  # drawn on; refreshed from `frame` before every call so no frame sees earlier drawings
    for _ in range(warmup):
        for p in pipes.values():
            np.copyto(work, frame)
            draw_results(work, p(work), fps=0.0)
    det: list[float] = []
    e2e: dict[str, list[float]] = {k: [] for k in pipes}
    cls: dict[str, list[float]] = {k: [] for k in pipes}
    for _ in range(n):
        t0 = time.perf_counter()
        detector.detect(frame)
        det.append(time.perf_counter() - t0)
        for k, p in pipes.items():
            np.copyto(work, frame)
            t0 = time.perf_counter()
            draw_results(work, p(work), fps=0.0)  # what `visionlab detect` does per frame
            t1 = time.perf_counter()
            p.classifier.predict_proba(crops[k])
            e2e[k].append(t1 - t0)
            cls[k].append(time.perf_counter() - t1)
    ms = lambda v: 1000 * statistics.median(v)  # noqa: E731
    return {k: {"e2e_ms": ms(e2e[k]), "min_ms": 1000 * min(e2e[k]), "p90_ms": 1000 * float(np.percentile(e2e[k], 90)),
                "fps": 1000 / ms(e2e[k]), "detect_ms": ms(det), "classify_ms": ms(cls[k]), "faces": len(faces)}
            for k in pipes}


def latency(args) -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    model = classifier_model(args.model)
    classes = ["WithMask", "WithoutMask"]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(model, args.size, classes, Path(tmp) / "m.onnx")
        backends = {"torch": TorchClassifier(model, classes, args.size), "onnx": OnnxClassifier(onnx_path, threads=1)}
        print(f"{args.model} at {args.size} px, YuNet (threshold 0.7), {W}x{H} frames, 1 thread "
              f"(torch {torch.__version__}, ONNX Runtime {ort_version()}, OpenCV {cv2.__version__}); "
              f"medians of {args.frames} frames, backends interleaved; FPS = 1000 / median frame ms; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs ({cpu_summary()}) "
              f"(min ms is the least load-bound figure)")
        header = (f"{'faces':>5} | {'detect at':>9} | {'backend':>7} | {'frame ms':>8} | {'min ms':>6} | "
                  f"{'p90 ms':>6} | {'FPS':>6} | {'detect ms':>9} | {'classify ms':>11} | {'torch/onnx':>10}")
        print(header)
        print("-" * len(header))
        for n in (1, 4):
            for side in (None, 320):
                detector = build_detector("yunet", model_path=args.face_model, max_side=side)
                frame = compose(face_tiles(detector, n))
                if args.save_frames:
                    cv2.imwrite(f"/tmp/detect_latency_{n}faces.png", frame)
                res = time_frames({k: DetectionPipeline(detector, c) for k, c in backends.items()}, frame, args.frames)
                for name, r in res.items():
                    ratio = f"{res['torch']['e2e_ms'] / r['e2e_ms']:.2f}x" if name == "onnx" else ""
                    found = f"{r['faces']}" + ("" if r["faces"] == n else f" of {n}")
                    where = f"{W}x{H}" if side is None else f"{side}x{side * H // W}"
                    print(f"{found:>5} | {where:>9} | {name:>7} | {r['e2e_ms']:8.1f} | {r['min_ms']:6.1f} | "
                          f"{r['p90_ms']:6.1f} | {r['fps']:6.1f} | {r['detect_ms']:9.1f} | "
                          f"{r['classify_ms']:11.2f} | {ratio:>10}")


def bundled(args) -> None:
    """The bundled face-mask classifier (ONNX Runtime, 1 thread) with the detector and settings its profile names:
    the fast setting (video default: the frame as it is, the profile's fast threshold, at full size and at 320 px)
    and the accurate one (photo default: as it is + enlarged, mirror averaging), beside the same classifier with
    today's OpenCV Zoo YuNet and with tiles, and a --candidate classifier, measured side by side on the same
    frames. An averaged bundle runs as shipped: every network in the accurate setting, the first alone in the fast
    one; the accurate setting with the first network alone is measured beside it (what the averaging costs)."""
    from visionlab.inference.average import networks
    from visionlab.inference.load import load_classifier

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    clf = load_classifier(None, "onnx", 1)
    one = networks(clf)[0]  # what the fast setting runs (detect/build.py)
    other = OnnxClassifier(args.candidate, threads=1) if args.candidate else None
    if other is not None:
        print(f"rows marked *: the candidate classifier {args.candidate} ({other.image_size} px)")
    members = len(networks(clf))
    print(f"bundled classifier ({clf.image_size} px, {len(clf.classes)} classes, {members} network(s) averaged on "
          f"photos), ONNX Runtime {ort_version()}, "
          f"OpenCV {cv2.__version__}, 1 thread, {W}x{H} frames, medians of {args.frames} frames, settings "
          f"interleaved; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs ({cpu_summary()})")
    header = f"{'faces':>5} | {'setting':>19} | {'frame ms':>8} | {'min ms':>6} | {'p90 ms':>6} | {'FPS':>6} | found"
    print(header)
    print("-" * len(header))
    tiles_det = build_detector("yunet", model_path=args.face_model)
    for n in (1, 4):
        frame = compose(face_tiles(tiles_det, n))
        pipes = {}
        # the bundled model as shipped: the detector its profile names (YuNet_n in ONNX Runtime since the Lite2 build)
        for name, quality, side in (("fast", "fast", None), ("fast, 320 px", "fast", 320),
                                    ("accurate", "accurate", None)):
            pipes[name] = _pipe(clf if quality == "accurate" else one, quality, {"max_side": side}, args.face_model)
        if one is not clf:
            pipes["acc., first network"] = _pipe(one, "accurate", {}, args.face_model)
        # the same classifier with today's OpenCV Zoo YuNet file (OpenCV's path), and with YuNet_n in tiles
        for name, quality, extra, detector in (
                ("fast, today's YuNet", "fast", {"model_path": args.face_model}, "yunet"),
                ("acc., YuNet_n tiles", "accurate", {"upscale": args.n_upscale, "tile": args.n_tile}, None)):
            pipes[name] = _pipe(one if quality == "fast" else clf, quality, extra, args.face_model, detector)
        if other is not None:  # a candidate classifier with its own profile, same frames
            for name, quality in (("fast *", "fast"), ("accurate *", "accurate")):
                pipes[name] = _pipe(other, quality, {}, args.face_model)
        for _ in range(3):
            for p in pipes.values():
                p(frame)
        times: dict[str, list[float]] = {k: [] for k in pipes}
        found: dict[str, int] = {}
        work = frame.copy()  # drawn on; refreshed before every call so no frame sees earlier drawings
        for _ in range(args.frames):
            for k, p in pipes.items():
                np.copyto(work, frame)
                t0 = time.perf_counter()
                res = p(work)
                draw_results(work, res, fps=0.0)
                times[k].append(time.perf_counter() - t0)
                found[k] = len(res)
        for k, v in times.items():
            med = 1000 * statistics.median(v)
            print(f"{n:>5} | {k:>19} | {med:8.1f} | {1000 * min(v):6.1f} | {1000 * float(np.percentile(v, 90)):6.1f} | "
                  f"{1000 / med:6.1f} | {found[k]}")


def _pipe(clf, quality: str, extra: dict, face_model: str, detector: "str | None" = None) -> DetectionPipeline:
    """The detection pipeline of ``clf`` in a setting, with the detector its profile names (or ``detector``) and
    the face model file the profile names (else ``face_model``)."""
    prof = clf.profile
    opts = {"model_path": face_model, **prof.detector_options(quality), **extra}
    det = build_detector(detector or prof.detector, **opts)
    return DetectionPipeline(det, clf, margin=prof.margin, min_face=0, tta=prof.tta and quality == "accurate")


def ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def thresholds(args) -> None:
    """The evidence behind YUNET_SCORE_THRESHOLD and the Haar figures in docs/detection.md."""
    cv2.setNumThreads(1)
    test = SHARED / "data" / "facemask" / "Test"
    yunet = build_detector("yunet", model_path=args.face_model, score_threshold=0.3)
    folders = {c: sorted((test / c).glob("*.jpg")) for c in ("WithMask", "WithoutMask")}
    scores = {c: [[f.score for f in yunet.detect(cv2.imread(str(p)))] for p in files] for c, files in folders.items()}
    negatives = []  # upscaled CIFAR-10 vehicles: photos without any face
    for c in ("airplane", "automobile", "ship", "truck"):
        for p in sorted((SHARED / "data" / "cifar10" / "test" / c).glob("*.jpg"))[:100]:
            img = cv2.resize(cv2.imread(str(p)), (128, 128), interpolation=cv2.INTER_CUBIC)
            negatives.append([f.score for f in yunet.detect(img)])
    pic1 = [f.score for f in yunet.detect(cv2.imread(str(SHARED / "data" / "scenes" / "pic1.jpeg")))]
    print(f"YuNet scores on pic1: {', '.join(f'{s:.3f}' for s in pic1)}")
    print(f"{'threshold':>9} | {'pic1 faces':>10} | {'WithMask imgs with a face':>25} | "
          f"{'WithoutMask imgs with a face':>28} | {'boxes on 400 face-free imgs':>27}")
    for t in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9):
        cells = []
        for c in ("WithMask", "WithoutMask"):
            k = sum(1 for s in scores[c] if s and s[0] >= t)
            cells.append(f"{k}/{len(scores[c])} ({k / len(scores[c]):.0%})")
        neg = sum(1 for s in negatives for v in s if v >= t)
        print(f"{t:>9.2f} | {sum(v >= t for v in pic1):>10} | {cells[0]:>25} | {cells[1]:>28} | {neg:>27}")
    try:
        haar = build_detector("haar")
    except Exception as e:
        print(f"haar: not measured here: {e}")
        return
    print("haar (frontal face default cascade, minNeighbors 5):")
    print(f"  pic1 faces: {len(haar.detect(cv2.imread(str(SHARED / 'data' / 'scenes' / 'pic1.jpeg'))))}")
    for c, files in folders.items():
        k = sum(1 for p in files if haar.detect(cv2.imread(str(p))))
        print(f"  {c}: {k}/{len(files)} ({k / len(files):.0%}) images with a face")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mobilenet_v3_small", help="a torchvision classifier (weights=None)")
    ap.add_argument("--size", type=int, default=128, help="classifier input side")
    ap.add_argument("--frames", type=int, default=50, help="timed frames per cell")
    ap.add_argument("--face-model", default=str(SHARED / "models" / "face_detection_yunet_2026may.onnx"))
    ap.add_argument("--save-frames", action="store_true", help="write the composed frames to /tmp")
    ap.add_argument("--thresholds", action="store_true", help="print the detector threshold evidence instead")
    ap.add_argument("--bundled", action="store_true", help="the bundled classifier: fast vs accurate setting")
    ap.add_argument("--candidate", default=None, help="--bundled: also this exported classifier (a run folder's "
                    "model.onnx) with YuNet_n, rows marked *")
    ap.add_argument("--n-upscale", type=float, default=2.0, help="--bundled: YuNet_n's accurate upscale")
    ap.add_argument("--n-tile", type=int, default=640, help="--bundled: YuNet_n's accurate tile side")
    args = ap.parse_args(argv)
    if not Path(args.face_model).is_file():
        sys.exit(f"face model {args.face_model} is absent; set VISIONLAB_SHARED or pass --face-model")
    if args.bundled:
        bundled(args)
    else:
        thresholds(args) if args.thresholds else latency(args)


if __name__ == "__main__":
    main()
