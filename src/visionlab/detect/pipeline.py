"""Image -> faces -> square crops -> one batched classifier call -> a label per face; and the loop over
images, folders, video files and cameras that writes annotated output and JSON lines.

Classifiers take raw RGB pixels (uint8 N x 3 x S x S; normalisation is inside the model), so the torch model of
a run and its ONNX export are interchangeable here.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal, Optional, Sequence

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own log lines would bury our one-line errors
import cv2  # noqa: E402
import numpy as np
from PIL import Image

from ..errors import ConfigError, DataError, ModelError
from ..images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, array_to_uint8, decode_array, pil_to_rgb_array
from ..inference.backends import Classifier, load_classifier
from ..io import WriteError, atomic_write_bytes, shown, write_failed, write_json
from .faces import FACE_DETECTORS, Face, FaceDetector, quiet_opencv

if TYPE_CHECKING:
    from .profile import DetectProfile
    from .summary import VideoSummary

UNSURE = "unsure"
# faces whose box's shorter side is below this many pixels are `unsure`: the face classifier is trained on crowd
# photos where 71% of the faces are under 32 px, but under ~10 px there is too little face left to judge
MIN_FACE = 10
JSONL_FILE = "detections.jsonl"

# BGR
GREEN, RED, AMBER, ORANGE = (40, 170, 40), (40, 40, 220), (0, 180, 255), (0, 110, 240)
# a classifier class with one of these names means "not a face": its boxes are dropped (the second stage)
BACKGROUND_NAMES = ("background", "notaface", "noface", "nonface")


def is_background(label: str) -> bool:
    return "".join(ch for ch in label.lower() if ch.isalpha()) in BACKGROUND_NAMES


def mask_status(label: str) -> str:
    """'mask', 'no_mask', 'incorrect' or 'other' for a class name. A mask under the nose or on the chin
    (``MaskWornIncorrectly``, the Kaggle set's ``mask_weared_incorrect``) is not a mask."""
    key = "".join(ch for ch in label.lower() if ch.isalpha())
    if "mask" not in key:
        return "other"
    if any(w in key for w in ("incorrect", "wrong", "improper", "weared", "chin", "nose", "partial")):
        return "incorrect"
    if key.startswith(("without", "no", "unmask")) or "nomask" in key:
        return "no_mask"
    return "mask"
_PALETTE = [(200, 120, 40), (160, 60, 160), (60, 160, 160), (120, 120, 120), (40, 120, 200)]


@dataclass
class FaceResult:
    box: tuple[int, int, int, int]
    label: str
    confidence: float  # probability of the best guess among the face classes, given that the box is a face
    score: float  # face detector's score
    guess: str  # the classifier's best face class, kept when `label` is `unsure`
    landmarks: Optional[np.ndarray] = None
    probs: Optional[dict] = None  # class -> probability (the classifier's softmax, background excluded)
    face: float = 1.0  # 1 - P(background) where the classifier has a background class

    @property
    def unsure(self) -> bool:
        return self.label == UNSURE

    def to_dict(self) -> dict:
        d = {"box": [int(v) for v in self.box], "label": self.label, "confidence": round(float(self.confidence), 4),
             "score": round(float(self.score), 4), "guess": self.guess, "unsure": self.unsure}
        if self.probs is not None:
            d["probs"] = {k: round(float(v), 5) for k, v in self.probs.items()}
            d["face"] = round(float(self.face), 5)
        return d


def square_crop(image: np.ndarray, box: Sequence[int], margin: float) -> tuple[int, int, int]:
    """(x, y, side) of a square around ``box`` grown by ``margin`` of its longer side on each edge, moved (and if
    need be shrunk) to lie inside the image."""
    h, w = image.shape[:2]
    x, y, bw, bh = box
    side = int(round(max(bw, bh) * (1.0 + 2.0 * margin)))
    side = max(1, min(side, w, h))
    cx, cy = x + bw / 2.0, y + bh / 2.0
    x0 = int(round(min(max(cx - side / 2.0, 0), w - side)))
    y0 = int(round(min(max(cy - side / 2.0, 0), h - side)))
    return x0, y0, side


def _to_bgr(image: np.ndarray, color: str) -> np.ndarray:
    """BGR uint8 of an H x W, H x W x 1, x 3 or x 4 array; other dtypes scaled as the file decoder scales them
    (``images.array_to_uint8``); an empty or oddly shaped array is a ``DataError`` naming its shape."""
    if not isinstance(image, np.ndarray):
        raise DataError(f"expected an image (an H x W x 3 NumPy array, a Pillow image or a path), got "
                        f"{type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise DataError(f"expected an H x W x 3 image, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise DataError(f"the image is empty: shape {image.shape} has no pixels")
    image = array_to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR if color == "bgr" else cv2.COLOR_RGBA2BGR)
    return image if color == "bgr" else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


class DetectionPipeline:
    """Faces of one image, each with a label, a confidence and the detector's score.

    A face is ``unsure`` when its box's shorter side is below ``min_face`` pixels, when the classifier's top
    probability is below ``min_confidence``, or (two classes) when the positive class's probability lies
    strictly between ``unsure_low`` and ``unsure_high``.
    """

    def __init__(self, detector: FaceDetector | str, classifier: Classifier, *, margin: float = 0.2,
                 min_face: int = MIN_FACE, unsure_low: float = 0.35, unsure_high: float = 0.65,
                 min_confidence: float = 0.5, positive_class: Optional[str] = None,
                 detector_options: Optional[dict] = None, min_face_prob: float = 0.5, tta: bool = False) -> None:
        if not 0.0 <= unsure_low <= unsure_high <= 1.0:
            raise ConfigError(f"need 0 <= unsure_low <= unsure_high <= 1, got {unsure_low} and {unsure_high}")
        if margin < 0:
            raise ConfigError(f"margin must be >= 0, got {margin}")
        if isinstance(detector, str):
            detector = FACE_DETECTORS.get(detector)(**(detector_options or {}))
        self.detector = detector
        self.classifier = classifier
        self.margin, self.min_face, self.min_confidence = margin, min_face, min_confidence
        self.unsure_low, self.unsure_high = unsure_low, unsure_high
        from ..evaluation.metrics import positive_index

        classes = list(classifier.classes)
        self.background = next((i for i, c in enumerate(classes) if is_background(c)), None)
        self.face_idx = [i for i in range(len(classes)) if i != self.background]
        if not self.face_idx:
            raise ModelError(f"the classifier's classes {classes} are all background")
        self.face_classes = [classes[i] for i in self.face_idx]
        self.min_face_prob = float(min_face_prob)
        self.tta = bool(tta)  # average each crop with its mirror image (still one classifier call per frame)
        self.positive = (positive_index(self.face_classes, positive_class) if len(self.face_classes) == 2 else None)

    def crops(self, image_bgr: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """uint8 N x 3 x S x S RGB crops, one per face, ready for one classifier call."""
        s = self.classifier.image_size
        out = np.empty((len(faces), 3, s, s), np.uint8)
        for i, f in enumerate(faces):
            x0, y0, side = square_crop(image_bgr, f.box, self.margin)
            crop = image_bgr[y0:y0 + side, x0:x0 + side]
            crop = cv2.resize(crop, (s, s), interpolation=cv2.INTER_AREA if side > s else cv2.INTER_LINEAR)
            out[i] = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)
        return out

    def __call__(self, image: np.ndarray, color: Literal["bgr", "rgb"] = "bgr") -> list[FaceResult]:
        bgr = _to_bgr(image, color)
        faces = self.detector.detect(bgr)
        if not faces:
            return []
        crops = self.crops(bgr, faces)
        if self.tta:
            both = self.classifier.predict_proba(np.concatenate([crops, crops[..., ::-1]]))
            probs = (both[:len(crops)] + both[len(crops):]) / 2
        else:
            probs = self.classifier.predict_proba(crops)
        results = []
        for f, p in zip(faces, probs):
            pf = p[self.face_idx]
            face = float(pf.sum()) if self.background is not None else 1.0
            if face < self.min_face_prob:  # the second stage: the classifier says this box is not a face
                continue
            cond = pf / max(face, 1e-12)  # class probabilities given that the box is a face
            top = int(np.argmax(cond))
            conf = float(cond[top])
            unsure = (min(f.box[2], f.box[3]) < self.min_face or conf < self.min_confidence
                      or (self.positive is not None and self.unsure_low < cond[self.positive] < self.unsure_high))
            guess = self.face_classes[top]
            results.append(FaceResult(f.box, UNSURE if unsure else guess, conf, f.score, guess, f.landmarks,
                                      dict(zip(self.face_classes, pf.tolist())), face))
        return results


def profile_pipeline(classifier: Classifier, detector: FaceDetector | str = "yunet", *, kind: str = "image",
                     quality: str = "auto", profile: "str | os.PathLike | None" = None,
                     face_model: "str | os.PathLike | None" = None, score_threshold: Optional[float] = None,
                     detect_side: Optional[int] = None, margin: Optional[float] = None,
                     **pipeline_options) -> "tuple[DetectionPipeline, Optional[DetectProfile], str]":
    """A ``DetectionPipeline`` set up as the classifier's detection profile says for this input ``kind`` and
    ``quality`` (detector options, crop margin, mirror averaging); explicit options override the profile.
    ``profile`` (a detect.json) overrides the classifier's own. Returns the pipeline, the profile and the
    setting that was used (``accurate`` or ``fast``)."""
    from .profile import read_profile, resolve_quality

    prof = read_profile(profile) if profile is not None else classifier.profile
    setting = resolve_quality(quality, kind)  # type: ignore[arg-type]
    if margin is None:
        margin = prof.margin if prof is not None else 0.2
    if isinstance(detector, str):
        opts: dict = prof.detector_options(setting, kind) if prof is not None and detector.lower() == "yunet" else {}
        if face_model is not None:
            opts["model_path"] = face_model
        if score_threshold is not None:
            opts["score_threshold"] = score_threshold
        if detect_side is not None:
            opts["max_side"] = detect_side
        if detector.lower() != "yunet" and (face_model, score_threshold, detect_side) != (None, None, None):
            raise ConfigError(f"--face-model, --score-threshold and --detect-side apply to the yunet detector, "
                              f"not {detector!r}")
        detector = FACE_DETECTORS.get(detector)(**opts)
    pipe = DetectionPipeline(detector, classifier, margin=margin,
                             tta=prof is not None and prof.tta and setting == "accurate", **pipeline_options)
    return pipe, prof, setting


def detect_faces(image: "str | os.PathLike | np.ndarray | Image.Image",
                 model: "Classifier | str | os.PathLike | None" = None, *,
                 face_model: "str | os.PathLike | None" = None, quality: str = "accurate", color: str = "rgb",
                 backend: Literal["onnx", "torch"] = "onnx", min_face_prob: float = 0.5,
                 **pipeline_options) -> list[FaceResult]:
    """Faces of one photo (a path; a Pillow image of any mode, converted as its file would be decoded; or an
    H x W (x 3 or 4) array in ``color`` order: uint8, or uint16, float 0..1 or bool scaled as the decoder scales
    them), each with box, label, best guess, probabilities and detector score; nothing is written. ``model``
    defaults to the bundled classifier, the face detector to the bundled YuNet; both follow the classifier's
    detection profile. This is ``visionlab.detect(...)``."""
    clf = model if model is not None and not isinstance(model, (str, os.PathLike)) else load_classifier(model, backend)
    pipe, _, _ = profile_pipeline(clf, kind="image", quality=quality, face_model=face_model,
                                  min_face_prob=min_face_prob, **pipeline_options)
    if isinstance(image, (str, os.PathLike)):
        return pipe(read_image(Path(image)), color="bgr")
    if isinstance(image, Image.Image):  # every mode converted as the file decoder converts it (P is not grey)
        return pipe(pil_to_rgb_array(image), color="rgb")
    return pipe(image, color=color)  # type: ignore[arg-type]


def label_color(label: str) -> tuple[int, int, int]:
    """Green for a mask, red for no mask, orange for a mask worn wrongly, amber for unsure (BGR); other classes
    get a fixed palette colour."""
    if label == UNSURE:
        return AMBER
    status = mask_status(label)
    if status != "other":
        return {"mask": GREEN, "no_mask": RED, "incorrect": ORANGE}[status]
    return _PALETTE[sum(map(ord, label)) % len(_PALETTE)]


def draw_results(image_bgr: np.ndarray, results: Sequence[FaceResult], fps: Optional[float] = None) -> np.ndarray:
    """A copy of the image with a box and "label confidence" per face, and an FPS figure when given."""
    out = image_bgr.copy()
    h, w = out.shape[:2]
    thick = max(2, round(min(h, w) / 300))
    fscale = max(0.45, min(h, w) / 900)
    for r in results:
        x, y, bw, bh = r.box
        col = label_color(r.label)
        cv2.rectangle(out, (x, y), (x + bw, y + bh), col, max(1, min(thick, bw // 30)))
        pct = int(r.confidence * 100)  # floor: 0.996 shows as 99%, never a certain-looking 100%
        text = f"{r.label} {pct}%" if r.label != UNSURE else f"? {r.guess} {pct}%"  # amber + "?": unsure
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fscale, 1)
        fs = fscale
        if tw > max(1.5 * bw, 40):  # small faces in a crowd get small labels, not a wall of overlapping text
            fs = max(0.3, fscale * max(1.5 * bw, 40) / tw)
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
        tx = max(0, min(x, w - tw - 4))
        ty = y - 4 if y - th - base - 4 >= 0 else min(h - base, y + bh + th + 4)
        cv2.rectangle(out, (tx, ty - th - base), (tx + tw + 4, ty + base // 2), col, -1)
        cv2.putText(out, text, (tx + 2, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 1, cv2.LINE_AA)
    if fps is not None:
        text = f"{fps:.1f} FPS"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fscale, 1)
        cv2.rectangle(out, (0, 0), (tw + 10, th + base + 10), (0, 0, 0), -1)
        cv2.putText(out, text, (5, th + 5), cv2.FONT_HERSHEY_SIMPLEX, fscale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


# ---------------------------------------------------------------- the loop over inputs


def read_image(path: Path) -> np.ndarray:
    """BGR uint8 for OpenCV, decoded by ``images.decode_array`` as the face crops a classifier trains on are (EXIF
    orientation, palette, alpha on white, 16-bit, CMYK; a FIFO or an oversized file is refused, never read);
    ``DataError`` with the path for anything it cannot decode."""
    try:
        rgb = decode_array(path)
    except DataError as e:
        raise DataError(f"cannot decode image {e}") from None
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _write_image(path: Path, image: np.ndarray) -> Path:
    """The annotated (colour) copy under the input's name; JFIF is written as the JPEG it is, and a suffix OpenCV
    cannot write in colour (.pgm is gray only) as a .png."""
    suffix = {".jfif": ".jpg"}.get(path.suffix.lower(), path.suffix.lower() or ".png")
    ok, buf = cv2.imencode(suffix, image) if suffix != ".pgm" else (False, None)
    if not ok:
        path = path.with_suffix(".png")
        ok, buf = cv2.imencode(".png", image)
    atomic_write_bytes(path, buf.tobytes())
    return path


def _open_capture(source: int | Path) -> cv2.VideoCapture:
    with quiet_opencv():
        cap = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    if not cap.isOpened():
        cap.release()
        if isinstance(source, int):
            raise DataError(f"cannot open camera {source}: no such camera, or it is busy; "
                            f"list cameras with `v4l2-ctl --list-devices` (Linux) and pass --camera N")
        raise DataError(f"cannot open video {source}: not a video file OpenCV can read")
    return cap


def _list_images(folder: Path, exclude: Path, skipped: Optional[list] = None,
                 left_out: Optional[list] = None) -> list[Path]:
    """The regular image files under ``folder``, sorted. ``exclude`` (this run's output folder, resolved) and
    every visionlab output folder under ``folder`` (an earlier ``detect DIR --out DIR/out``) are left out, the
    latter named in ``left_out``; FIFOs, devices and sockets with an image's name are never opened and go to
    ``skipped`` with the reason."""
    from ..files import special_kind
    from ..outdir import is_output_folder

    files, outputs, skip = [], [], []
    for p in sorted(folder.rglob("*")):
        if any(o in p.parents for o in skip):
            continue
        if p.is_dir():
            if p.resolve() == exclude:  # (``p`` is relative where ``folder`` is: compare resolved paths)
                skip.append(p)
            elif not p.is_symlink() and is_output_folder(p):
                skip.append(p)
                outputs.append(p)
            continue
        if p.suffix.lower() not in IMAGE_SUFFIXES or p.name.startswith("."):
            continue
        if p.is_file():
            files.append(p)
        elif skipped is not None and (kind := special_kind(p)) is not None:
            skipped.append([shown(p), f"is {kind}, not a regular file; only regular image files are read"])
    if left_out is not None:
        left_out += outputs
    return files


def _input_kind(src: int | Path) -> str:
    """``camera``, ``folder``, ``video`` or ``image``; ``DataError`` for any other file."""
    if isinstance(src, int):
        return "camera"
    if src.is_dir():
        return "folder"
    if src.suffix.lower() in VIDEO_SUFFIXES:
        return "video"
    if src.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    raise DataError(f"{src} is neither an image ({', '.join(sorted(IMAGE_SUFFIXES))}) nor a video "
                    f"({', '.join(sorted(VIDEO_SUFFIXES))})")


def _resolve_input(input: str | os.PathLike | int, out: Path, only: Optional[Sequence[str | os.PathLike]],
                   skipped: Optional[list] = None) -> tuple[int | Path, str, list[Path]]:
    """The source (a path or a camera index), its kind and, for an image or a folder, the images to read (a
    folder's restricted to ``only`` when given); checked before anything is loaded or written. FIFOs and
    devices named as images go to ``skipped``."""
    if isinstance(input, bool) or not isinstance(input, (int, str, os.PathLike)):
        raise ConfigError(f"input must be a path or a camera index, got {input!r}")
    src: int | Path = input if isinstance(input, int) else Path(input)
    if isinstance(src, Path) and not src.exists():
        raise DataError(f"input {src} does not exist; pass an image, a folder of images, a video file or --camera N")
    kind = _input_kind(src)
    if kind in ("image", "folder") and out.resolve() == (src.resolve() if kind == "folder" else src.resolve().parent):
        raise ConfigError(f"--out {out} is the input's own folder: annotated images would replace the originals; "
                          f"pick another folder")
    files: list[Path] = []
    if kind in ("image", "folder"):
        left_out: list[Path] = []
        files = [src] if kind == "image" else _list_images(src, out.resolve(), skipped, left_out)
        if left_out:
            from ..progress import console

            console.print(f"[yellow]note:[/] left out {len(left_out)} earlier visionlab output folder"
                          f"{'s' if len(left_out) > 1 else ''} inside the input: "
                          f"{', '.join(shown(p) for p in left_out[:5])}{' ...' if len(left_out) > 5 else ''}",
                          highlight=False, soft_wrap=True)
        if only is not None and kind == "folder":  # a subset of the folder (e.g. the validation photos)
            keep = {Path(f).resolve() for f in only}
            files = [f for f in files if f.resolve() in keep]
        if not files:
            odd = f"; {len(skipped)} not regular files: {skipped[0][0]} {skipped[0][1]}" if skipped else ""
            raise DataError(f"no images in {shown(src)} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}){odd}")
    return src, kind, files


def _open_source(src: int | Path, kind: str, blur: Optional[str], zone):
    """The checked ``zone`` (parsed from its string form) and the open capture of a video or camera (``None``
    otherwise), after checking ``blur``: before anything is written, so a bad video or camera leaves no output."""
    from .privacy import check_mode
    from .summary import parse_zone

    if blur is not None:
        check_mode(blur)
    if isinstance(zone, str):
        zone = parse_zone(zone)
    cap = None
    if kind in ("video", "camera"):
        cap = _open_capture(src)
    return zone, cap


def _new_summary(src: int | Path, kind: str, out: Path, pipe: DetectionPipeline, classifier: Classifier,
                 prof: "Optional[DetectProfile]", setting: str, stored: str) -> dict:
    """The summary dict ``run_detection`` returns, before anything is processed."""
    return {"input": str(src) if kind != "camera" else f"camera:{src}", "kind": kind, "out_dir": str(out),
            "jsonl": str(out / JSONL_FILE), "video": None, "processed": 0, "faces": 0, "labels": {},
            "skipped": [], "interrupted": False, "detector": getattr(pipe.detector, "name", "?"),
            "backend": getattr(classifier, "backend", type(classifier).__name__),
            "setting": setting if prof is not None else "default",
            "profile": prof.source if prof is not None else None,
            "faces_stored": stored}


class _DetectionRun:
    """The state one ``run_detection`` call shares between its loops: the pipeline and output options, the open
    JSON lines file, the running totals and FPS, the video summary and the video being written."""

    def __init__(self, pipe: DetectionPipeline, src: int | Path, kind: str, out: Path, summary: dict, *,
                 save_frames: bool, blur: Optional[str], zone, on_frame: Optional[Callable[[dict, np.ndarray], None]],
                 anonymize: Callable) -> None:
        self.pipe, self.src, self.kind, self.out, self.summary = pipe, src, kind, out, summary
        self.save_frames, self.blur, self.zone, self.on_frame, self.anonymize = (save_frames, blur, zone, on_frame,
                                                                                 anonymize)
        self.vs: Optional[VideoSummary] = None
        self.labels: Counter = Counter()
        self.t0 = time.perf_counter()
        self.fps_ema: Optional[float] = None
        self.writer: Optional[cv2.VideoWriter] = None
        self.tmp_video: Optional[Path] = None
        self.final: Optional[Path] = None
        self.written: list[Path] = []  # the images this run wrote, for the message if the disk fills
        self.lines = 0
        self.jsonl_path = out / JSONL_FILE
        try:  # O_EXCL: the folder is this run's own (outdir.claim_out), an existing file is never replaced
            self.jsonl = os.open(self.jsonl_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise write_failed(self.jsonl_path, e) from None

    def process(self, frame: np.ndarray, source: str, index: Optional[int],
                overlay_fps: bool) -> tuple[np.ndarray, dict]:
        t = time.perf_counter()
        results = self.pipe(frame)
        dt = max(time.perf_counter() - t, 1e-6)
        self.fps_ema = 1.0 / dt if self.fps_ema is None else 0.9 * self.fps_ema + 0.1 / dt
        record = {"source": source, "frame": index, "faces": [r.to_dict() for r in results]}
        if self.vs is not None:
            ids = self.vs.update(index or 0, record["faces"],
                                 t=time.perf_counter() - self.t0 if self.kind == "camera" else None)
            for f, i in zip(record["faces"], ids):
                f["track"] = i
        if not self.save_frames:
            return frame, record
        shown = self.anonymize(frame, results, self.blur) if self.blur else frame
        annotated = draw_results(shown, results, self.fps_ema if overlay_fps else None)
        if self.zone is not None:
            self.zone.draw(annotated)
        return annotated, record

    def emit(self, record: dict, annotated: np.ndarray) -> None:
        # after the image or video frame is written, so the JSON lines never run ahead of the output
        self._append(json.dumps(record) + "\n")
        self.lines += 1
        self.summary["processed"] += 1
        self.summary["faces"] += len(record["faces"])
        self.labels.update(f["label"] for f in record["faces"])
        if self.on_frame is not None:
            self.on_frame(record, annotated)

    def _append(self, line: str) -> None:
        """One whole line or none: a short write is continued, a failed one (a full disk) cut back."""
        size = os.lseek(self.jsonl, 0, os.SEEK_END)
        view = memoryview(line.encode())
        try:
            while view:
                n = os.write(self.jsonl, view)
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(self.jsonl, size)
            raise write_failed(self.jsonl_path, e) from None

    def stopped(self, e: WriteError) -> WriteError:
        """``e`` (a write that failed: a full disk) reworded to say what this run had written by then, instead
        of the plain "nothing was changed" that holds only for the file that failed."""
        images = f"{len(self.written)} annotated image{'' if len(self.written) == 1 else 's'} and " \
            if self.save_frames and self.kind in ("image", "folder") else ""
        what = f"{images}{self.lines} line{'' if self.lines == 1 else 's'} of {JSONL_FILE}"
        err = WriteError(f"cannot write {shown(getattr(e, 'path', '?'))}: {getattr(e, 'reason', e)}; this run had "
                         f"written {what} into {shown(self.out)} (each complete) when it stopped; free some space "
                         f"and run the command again")
        err.errno = getattr(e, "errno", None)
        return err

    def read_images(self, bar, files: Sequence[Path], console) -> None:
        """Every image in turn; one of a folder's that cannot be decoded is skipped with a warning line."""
        src, kind, summary = self.src, self.kind, self.summary
        task = bar.add_task(src.name, total=len(files), info="")
        for f in files:
            try:
                img = read_image(f)
            except DataError as e:
                if kind == "image":
                    raise
                console.print(f"[yellow]warning:[/] {e}", highlight=False, soft_wrap=True)
                summary["skipped"].append([shown(f), str(e)])
                bar.advance(task)
                continue
            annotated, record = self.process(img, str(f), None, overlay_fps=False)
            if self.save_frames:
                self.written.append(_write_image(self.out / (f.name if kind == "image" else f.relative_to(src)),
                                                 annotated))
            self.emit(record, annotated)
            bar.update(task, advance=1, info=f"{summary['processed'] / (time.perf_counter() - self.t0):.1f} img/s")

    def read_video(self, bar, cap: cv2.VideoCapture, max_frames: Optional[int], video_summary: bool,
                   bin_seconds: Optional[float], track: bool) -> None:
        """Frame by frame into ``<stem>.part.mp4`` (``close`` gives it its final name), up to ``max_frames``."""
        from .summary import VideoSummary

        src, kind, out = self.src, self.kind, self.out
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if fps and np.isfinite(fps) and 0 < fps <= 240 else 25.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if kind == "video" else 0
        total = min(count, max_frames) if count > 0 and max_frames else (count or max_frames or None)
        stem = f"camera{src}" if kind == "camera" else src.stem
        self.final = final = out / f"{stem}.mp4"
        self.tmp_video = out / f".{stem}.part.mp4"  # renamed on finish: a half-written file never has the final name
        task = bar.add_task(str(src) if kind == "video" else f"camera {src}", total=total, info="")
        if video_summary:
            self.vs = VideoSummary(fps, bin_seconds, duration_s=count / fps if kind == "video" and count > 0
                                   else None, zone=self.zone, track=track)
        index = 0
        while max_frames is None or index < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            if self.writer is None and self.save_frames:
                h, w = frame.shape[:2]
                self.writer = cv2.VideoWriter(str(self.tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                if not self.writer.isOpened():
                    self.writer = None
                    raise DataError(f"cannot write {final}: this OpenCV build has no mp4v encoder")
            annotated, record = self.process(frame, self.summary["input"], index, overlay_fps=True)
            if self.writer is not None:
                self.writer.write(annotated)
            self.emit(record, annotated)
            index += 1
            bar.update(task, advance=1, info=f"{self.fps_ema:.1f} FPS")
        if kind == "camera" and index == 0:
            raise DataError(f"camera {src} opened but gave no frame; is another program using it?")

    def close(self, cap: Optional[cv2.VideoCapture]) -> None:
        """Finalise the outputs, also after an error or Ctrl-C: the JSON lines closed, the video renamed into
        place (or its part file removed when no frame was written)."""
        os.close(self.jsonl)
        if cap is not None:
            cap.release()
        if self.writer is not None:
            self.writer.release()
            os.replace(self.tmp_video, self.final)  # type: ignore[arg-type]
            self.summary["video"] = str(self.final)
        elif self.tmp_video is not None:
            self.tmp_video.unlink(missing_ok=True)

    def finish(self) -> dict:
        """The summary with the video summary written (a Ctrl-C'd video still gets one), labels and timing."""
        summary = self.summary
        if self.vs is not None:
            summary["summary"] = self.vs.write(self.out)
            write_json(self.out / "summary.json", summary["summary"])  # the totals, for scripts
        summary["labels"] = dict(self.labels)
        summary["seconds"] = round(time.perf_counter() - self.t0, 3)
        summary["fps"] = round(summary["processed"] / max(summary["seconds"], 1e-9), 2)
        return summary


def run_detection(input: str | os.PathLike | int, classifier: Classifier | str | os.PathLike | None,
                  out_dir: str | os.PathLike, detector: FaceDetector | str = "yunet", *,
                  backend: Literal["onnx", "torch"] = "onnx", threads: int = 1,
                  face_model: str | os.PathLike | None = None, score_threshold: Optional[float] = None,
                  detect_side: Optional[int] = None, margin: Optional[float] = None, min_face: int = MIN_FACE,
                  unsure_low: float = 0.35, unsure_high: float = 0.65, min_confidence: float = 0.5,
                  positive_class: Optional[str] = None, max_frames: Optional[int] = None, show_progress: bool = True,
                  on_frame: Optional[Callable[[dict, np.ndarray], None]] = None, quality: str = "auto",
                  profile: "str | os.PathLike | None" = None, min_face_prob: float = 0.5,
                  files: Optional[Sequence[str | os.PathLike]] = None, video_summary: bool = True,
                  bin_seconds: Optional[float] = None, zone=None, track: bool = True, blur: Optional[str] = None,
                  save_frames: bool = True) -> dict:
    """Detect and label every face of ``input`` and write the results under ``out_dir``.

    ``input``: an image file, a folder (every image in it, recursively), a video file, or an ``int`` camera
    index. ``classifier``: a ``Classifier``, a run folder or an ``.onnx`` file (see ``load_classifier``); ``None``
    is the bundled face-mask classifier.
    ``detect_side`` shrinks frames to that longer side for YuNet only (crops still come from the full frame):
    320 roughly triples detection speed at 640x480 and misses faces under ~20 px. ``quality`` picks the
    classifier's detection profile setting (detect/profile.py): ``accurate`` (upscaled photo, low threshold, the
    background class rejecting the extra boxes), ``fast``, or ``auto`` (accurate for photos, fast for video);
    ``profile`` overrides the classifier's own ``detect.json``. ``score_threshold``/``margin`` override it too.
    ``files`` restricts a folder to those images. Video and cameras also get ``summary.csv``/``summary.png`` (per
    time bin of ``bin_seconds``: faces, per class, mask rate with a Wilson interval, people by track; see
    detect/summary.py and docs/video.md), counted inside ``zone`` (``"x1,y1,x2,y2"`` or a polygon) only.
    ``blur`` (``blur``/``pixelate``) anonymises every face in the saved images and video; ``save_frames=False``
    writes only the JSON lines and the summary.
    Writes annotated images (same relative names) or ``<stem>.mp4`` (mp4v; ``camera<N>.mp4`` for a camera),
    and ``detections.jsonl`` with one line per image or frame. An unreadable image in a folder is skipped with
    one warning line; Ctrl-C stops cleanly with the video and JSON lines finalised. ``on_frame(record,
    annotated_bgr)`` is called after each image or frame. Returns a summary dict.
    """
    from ..progress import console, progress

    from ..outdir import claim_out

    out = Path(out_dir)
    odd: list = []  # FIFOs and devices named as images: listed with the unreadable files
    src, kind, files = _resolve_input(input, out, files, odd)
    if classifier is None or isinstance(classifier, (str, os.PathLike)):
        classifier = load_classifier(classifier, backend, threads)
    pipe, prof, setting = profile_pipeline(classifier, detector, kind=kind, quality=quality, profile=profile,
                                           face_model=face_model, score_threshold=score_threshold,
                                           detect_side=detect_side, margin=margin, min_face=min_face,
                                           unsure_low=unsure_low, unsure_high=unsure_high,
                                           min_confidence=min_confidence, positive_class=positive_class,
                                           min_face_prob=min_face_prob)

    from .privacy import anonymize, faces_stored

    zone, cap = _open_source(src, kind, blur, zone)
    try:
        out = claim_out(out, "detect")  # an existing folder's files are never replaced: a new sub-folder
    except BaseException:
        if cap is not None:
            cap.release()
        raise
    summary = _new_summary(src, kind, out, pipe, classifier, prof, setting, faces_stored(blur, save_frames))
    summary["skipped"] += odd
    for p, why in odd:
        console.print(f"[yellow]warning:[/] {p}: {why}", highlight=False, soft_wrap=True)
    run = _DetectionRun(pipe, src, kind, out, summary, save_frames=save_frames, blur=blur, zone=zone,
                        on_frame=on_frame, anonymize=anonymize)
    try:
        with progress(disable=not show_progress) as bar:
            if kind in ("image", "folder"):
                run.read_images(bar, files, console)
            else:
                run.read_video(bar, cap, max_frames, video_summary, bin_seconds, track)
    except KeyboardInterrupt:
        summary["interrupted"] = True
    except WriteError as e:
        raise run.stopped(e) from None
    finally:
        run.close(cap)
    try:
        return run.finish()
    except WriteError as e:
        raise run.stopped(e) from None
