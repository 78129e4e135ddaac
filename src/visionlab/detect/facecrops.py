"""Cut a face-crop ImageFolder from box-annotated photos (and from photos of one face), for the face classifier.

``cut_faces(sources, out)`` writes ``OUT/{Train,Validation,Test}/<class>/*.jpg`` with the *same crop geometry as
the detection pipeline* (``detect.pipeline.square_crop``: the box's longer side plus ``margin`` on each edge,
moved inside the photo), so the classifier trains on what it sees at inference time.

- Box-annotated photos (``boxes.csv`` or a PASCAL VOC folder) are split **by photo**: near-duplicate photos
  (difference hash) form one group, groups are split seeded and stratified by the rarest class they hold, and
  every crop of a photo lands in that photo's split. The split is written to ``faces.json``.
- On the training photos the face detector runs as the pipeline runs it; a ``BoxCorrection`` from its boxes to
  the annotated ones is fitted there (boxes.py) and written with the detector settings to ``detect.json``.
  Training crops come from the corrected detector box where the detector found the face (IoU >= 0.5), else from
  the annotated box; rare classes get jittered extra crops (``balance``). Detector boxes that overlap no annotated
  face (IoU < 0.2) become the ``Background`` class, which lets the pipeline reject non-faces. Validation and Test
  crops are cut from the annotated boxes, one per face.
- Photos without boxes in an ImageFolder (``facemask/``: Train/Validation/Test x class) get their face from the
  detector and keep their split; an image with no face or several is listed in ``unused.csv``, not guessed.
"""
from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..data.boxes import AnnotatedImage, canonical_label, read_annotations

SPLITS = ("Train", "Validation", "Test")
BACKGROUND = "Background"
MANIFEST, PROFILE, UNUSED = "faces.json", "detect.json", "unused.csv"
DEFAULT_UPSCALE, DEFAULT_THRESHOLD = 3.0, 0.15


@dataclass
class FaceCropSummary:
    out: Path
    counts: dict  # split -> class -> crops
    photos: dict  # split -> photos
    unused: int
    box_correction_pairs: int

    def __str__(self) -> str:
        lines = [f"face crops in {self.out}"]
        for s in SPLITS:
            if self.counts.get(s):
                lines.append(f"  {s}: {sum(self.counts[s].values())} crops from {self.photos.get(s, 0)} photos "
                             f"({', '.join(f'{k} {v}' for k, v in sorted(self.counts[s].items()))})")
        if self.unused:
            lines.append(f"  {self.unused} image(s) without exactly one face listed in {self.out / UNUSED}")
        return "\n".join(lines)


def dhash(path: Path, size: int = 8) -> int:
    """A 64-bit difference hash of the photo (grey, (size+1) x size): near-duplicates differ in a few bits.
    Hand-written (eight lines) rather than adding the imagehash package and PyWavelets for one function."""
    from PIL import Image

    with Image.open(path) as im:
        g = np.asarray(im.convert("L").resize((size + 1, size), Image.Resampling.LANCZOS), np.int16)
    bits = (g[:, 1:] > g[:, :-1]).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def photo_groups(records: Sequence[AnnotatedImage], max_bits: int = 4) -> list[int]:
    """Group index per photo: photos whose hashes differ in at most ``max_bits`` bits share a group."""
    hashes = [dhash(r.path) for r in records]
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(hashes)):
        for j in range(i):
            if bin(hashes[i] ^ hashes[j]).count("1") <= max_bits:
                parent[find(i)] = find(j)
    roots = {r: k for k, r in enumerate(dict.fromkeys(find(i) for i in range(len(records))))}
    return [roots[find(i)] for i in range(len(records))]


def split_photos(records: Sequence[AnnotatedImage], ratios: tuple[float, float, float], seed: int,
                 groups: Optional[Sequence[int]] = None) -> list[str]:
    """Split name per photo. Groups stay whole; groups are stratified by the rarest class they contain."""
    from sklearn.model_selection import train_test_split

    total = sum(ratios)
    r_train, r_val, r_test = (r / total for r in ratios)
    if r_train <= 0:
        raise ConfigError("the train share of --split-ratios must be positive")
    groups = list(groups) if groups is not None else list(range(len(records)))
    freq = Counter(b.label for r in records for b in r.boxes)
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    gids = sorted(members)

    def strat(gs):
        labels = []
        for g in gs:
            present = {b.label for i in members[g] for b in records[i].boxes}
            labels.append(min(present, key=lambda c: freq[c]) if present else "none")
        counts = Counter(labels)
        return [lab if counts[lab] >= 2 else "other" for lab in labels]

    def cut(gs, share):
        if share <= 0 or len(gs) < 2:
            return list(gs), []
        n = max(1, round(share * len(gs)))
        labels = strat(gs)
        try:
            a, b = train_test_split(gs, test_size=n, random_state=seed, stratify=labels)
        except ValueError:  # a class too rare to stratify
            a, b = train_test_split(gs, test_size=n, random_state=seed)
        return list(a), list(b)

    rest, test = cut(gids, r_test)
    train, val = cut(rest, r_val / max(r_train + r_val, 1e-12) if r_val > 0 else 0.0)
    name = {}
    for s, gs in (("Train", train), ("Validation", val), ("Test", test)):
        for g in gs:
            for i in members[g]:
                name[i] = s
    return [name[i] for i in range(len(records))]


def _jitter(box: tuple[float, float, float, float], rng: np.random.Generator) -> tuple[float, float, float, float]:
    """The annotated box shifted by up to 8% and scaled by 0.9-1.1: the spread of corrected detector boxes."""
    x, y, w, h = box
    s = rng.uniform(0.9, 1.1)
    cx, cy = x + w / 2 + rng.uniform(-0.08, 0.08) * w, y + h / 2 + rng.uniform(-0.08, 0.08) * h
    return (cx - w * s / 2, cy - h * s / 2, w * s, h * s)


class _Writer:
    def __init__(self, out: Path, size: int, quality: int = 95) -> None:
        self.out, self.size, self.quality = out, size, quality
        self.counts: dict = defaultdict(Counter)

    def crop(self, image_bgr: np.ndarray, box, margin: float) -> np.ndarray:
        import cv2

        from .pipeline import square_crop

        b = tuple(int(round(v)) for v in box)
        x0, y0, side = square_crop(image_bgr, b, margin)
        c = image_bgr[y0:y0 + side, x0:x0 + side]
        s = self.size
        return cv2.resize(c, (s, s), interpolation=cv2.INTER_AREA if side > s else cv2.INTER_LINEAR)

    def write(self, split: str, label: str, name: str, crop_bgr: np.ndarray) -> None:
        import cv2

        from ..io import atomic_write_bytes

        ok, buf = cv2.imencode(".jpg", crop_bgr, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise DataError(f"cannot encode a crop of {name}")
        atomic_write_bytes(self.out / split / label / name, buf.tobytes())
        self.counts[split][label] += 1


def _read_bgr(path: Path) -> np.ndarray:
    import cv2

    from ..images import decode_array

    return cv2.cvtColor(decode_array(path), cv2.COLOR_RGB2BGR)  # EXIF, palette, 16-bit handled once, everywhere


def _sort_sources(sources: Sequence[str | Path], images: str | Path | None,
                  label_map: Optional[dict]) -> tuple[list[AnnotatedImage], list[Path]]:
    """The box-annotated photos of the sources (boxes.csv, VOC folders) and the one-face ImageFolders."""
    boxed: list[AnnotatedImage] = []
    folders: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir() and not (p / "boxes.csv").is_file() and not list(p.glob("*.xml")) \
                and not (p / "annotations").is_dir():
            folders.append(p)
        else:
            boxed.extend(read_annotations(p, images, label_map))
    return boxed, folders


def _detect_all(boxed: Sequence[AnnotatedImage], det, show_progress: bool) -> tuple[dict, dict]:
    """Every photo decoded (BGR) and the detector's raw rows for it, by photo index."""
    from ..progress import progress

    raw: dict[int, np.ndarray] = {}
    imgs: dict[int, np.ndarray] = {}
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("detecting faces", total=len(boxed), info="")
        for i, r in enumerate(boxed):
            img = _read_bgr(r.path)
            imgs[i] = img
            raw[i] = det.detect_raw(img)
            bar.advance(task)
    return imgs, raw


def _fit_correction(boxed: Sequence[AnnotatedImage], split: list[str], raw: dict):
    """The box correction from the training photos' matched pairs (IoU >= 0.3: the offsets it must learn)."""
    from ..boxes import BoxCorrection, match, xywh_to_xyxy

    X, L, S, T = [], [], [], []
    for i, r in enumerate(boxed):
        if split[i] != "Train" or not len(raw[i]):
            continue
        gt = np.array([[b.x0, b.y0, b.x1, b.y1] for b in r.boxes])
        for d, g, _ in match(xywh_to_xyxy(raw[i][:, :4]), gt, 0.3):
            X.append(raw[i][d, :4]), L.append(raw[i][d, 4:14]), S.append(raw[i][d, 14]), T.append(gt[g])
    return BoxCorrection.fit(np.array(X), np.array(L), np.array(S), np.array(T))


def _cut_photo(w: _Writer, r: AnnotatedImage, img: np.ndarray, raw: np.ndarray, sp: str, correction,
               copies: dict, rng: np.random.Generator, margin: float, background: bool) -> None:
    """One box-annotated photo's crops: a face crop per annotated face (a training face from its corrected
    detector box where matched, with jittered copies of rare classes), and ``Background`` crops of the
    detector boxes that overlap no annotated face."""
    from ..boxes import iou_matrix, match, xywh_to_xyxy

    stem = r.path.stem
    gt = np.array([[b.x0, b.y0, b.x1, b.y1] for b in r.boxes])
    fixed = correction(raw[:, :4], raw[:, 4:14], raw[:, 14]) if len(raw) else np.zeros((0, 4))
    matched = {g: d for d, g, _ in match(xywh_to_xyxy(fixed), gt, 0.5)} if sp == "Train" else {}
    for j, b in enumerate(r.boxes):
        box = tuple(fixed[matched[j]]) if j in matched else b.xywh
        w.write(sp, b.label, f"{stem}_{j:03d}.jpg", w.crop(img, box, margin))
        for k in range(copies.get(b.label, 0) if sp == "Train" else 0):
            w.write(sp, b.label, f"{stem}_{j:03d}_j{k}.jpg", w.crop(img, _jitter(b.xywh, rng), margin))
    if background and len(fixed):
        m = iou_matrix(xywh_to_xyxy(fixed), gt).max(1) if len(gt) else np.zeros(len(fixed))
        for d in np.flatnonzero(m < 0.2):
            w.write(sp, BACKGROUND, f"{stem}_bg{d:03d}.jpg", w.crop(img, fixed[d], margin))


def _cut_boxed(boxed: list[AnnotatedImage], det, w: _Writer, manifest: dict, rng: np.random.Generator, *,
               split_ratios: tuple[float, float, float], seed: int, margin: float, balance: bool, max_jitter: int,
               background: bool, show_progress: bool):
    """The box-annotated photos split by photo (recorded in ``manifest``) and cut; returns the box correction
    fitted on the training photos."""
    groups = photo_groups(boxed)
    split = split_photos(boxed, split_ratios, seed, groups)
    manifest["photos"] = {s: sorted(r.name for r, sp in zip(boxed, split) if sp == s) for s in SPLITS}
    manifest["groups"] = int(max(groups) + 1)
    imgs, raw = _detect_all(boxed, det, show_progress)
    correction = _fit_correction(boxed, split, raw)
    freq = Counter(b.label for i, r in enumerate(boxed) if split[i] == "Train" for b in r.boxes)
    top = max(freq.values()) if freq else 1
    copies = {c: (min(max_jitter, max(0, round(top / (2 * n)) - 1)) if balance else 0) for c, n in freq.items()}
    manifest["jitter_copies"] = copies
    for i, r in enumerate(boxed):
        _cut_photo(w, r, imgs.pop(i), raw[i], split[i], correction, copies, rng, margin, background)
    return correction


def _write_unused(path: Path, unused: list[tuple[str, str]]) -> None:
    """``unused.csv``: the images that gave no crop, and why."""
    from ..io import atomic_write_text

    buf = io.StringIO()
    cw = csv.writer(buf)
    cw.writerow(["image", "reason"])
    cw.writerows(unused)
    atomic_write_text(path, buf.getvalue())


def cut_faces(sources: Sequence[str | Path], out: str | Path, *, images: str | Path | None = None,
              face_model: str | Path | None = None, upscale: float = DEFAULT_UPSCALE,
              score_threshold: float = DEFAULT_THRESHOLD, margin: float = 0.2, size: int = 128,
              split_ratios: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0, balance: bool = True,
              max_jitter: int = 10, background: bool = True, label_map: Optional[dict] = None,
              show_progress: bool = True, detector: str = "yunet") -> FaceCropSummary:
    """Write a face-crop ImageFolder from box-annotated photo sets and/or ImageFolders of one-face photos.
    ``detector``: a YuNet-family name from ``FACE_DETECTORS`` (yunet, yunet_ort); the profile records it."""
    from ..boxes import BoxCorrection
    from .faces import build_detector
    from ..io import write_json

    from ..outdir import claim_out

    if not sources:
        raise ConfigError("give at least one source: a boxes.csv, a VOC folder or an ImageFolder")
    # crops are never mixed with old ones: a folder that holds files is refused (a file or read-only: one line)
    out = claim_out(out, "faces", policy="refuse")
    boxed, folders = _sort_sources(sources, images, label_map)
    rng = np.random.default_rng(seed)
    w = _Writer(out, size)
    manifest: dict = {"format": "visionlab-face-crops-v1", "sources": [str(s) for s in sources], "seed": seed,
                      "split_ratios": list(split_ratios), "margin": margin, "crop_size": size,
                      "detector": {"name": detector, "upscale": upscale, "score_threshold": score_threshold},
                      "photos": {}}
    unused: list[tuple[str, str]] = []
    det = build_detector(detector, model_path=face_model, score_threshold=score_threshold, upscale=upscale)
    correction: Optional[BoxCorrection] = None
    if boxed:
        correction = _cut_boxed(boxed, det, w, manifest, rng, split_ratios=split_ratios, seed=seed, margin=margin,
                                balance=balance, max_jitter=max_jitter, background=background,
                                show_progress=show_progress)

    for root in folders:
        _cut_folder(root, det, correction, w, margin, unused, manifest, show_progress, label_map, split_ratios, seed)

    profile = {"detector": detector, "upscale": upscale, "score_threshold": score_threshold, "margin": margin,
               "tta": True,
               "box_correction": correction.to_dict() if correction is not None else None,
               "made_by": "visionlab data faces", "seed": seed}
    manifest["counts"] = {s: dict(sorted(c.items())) for s, c in w.counts.items()}
    write_json(out / MANIFEST, manifest)
    write_json(out / PROFILE, profile)
    if unused:
        _write_unused(out / UNUSED, unused)
    photos = {s: len(v) for s, v in manifest["photos"].items()}
    return FaceCropSummary(out, manifest["counts"], photos, len(unused), correction.pairs if correction else 0)


def _cut_folder(root: Path, det, correction, w: _Writer, margin: float, unused: list, manifest: dict,
                show_progress: bool, label_map: Optional[dict], split_ratios=(0.7, 0.15, 0.15), seed: int = 0) -> None:
    """One-face photos of an ImageFolder (split folders kept) -> crops of the one face the detector finds."""
    from .faces import build_detector
    from ..progress import progress
    from ..data.checks import check_layout

    layout = check_layout(root)
    single = build_detector(det.name, model_path=det.model_path, score_threshold=0.6, upscale=1.0,
                            box_correction=correction)
    items = []
    rng = np.random.default_rng(seed)
    p = np.asarray(split_ratios, np.float64) / sum(split_ratios)
    for split_name, classes in layout.files.items():
        for cls, files in classes.items():
            label = canonical_label(cls, label_map, f"{root}/{cls}: ")
            if split_name == "all":  # one folder of class folders: seeded split per image (one face each)
                names = rng.choice(SPLITS, size=len(files), p=p)
            else:
                names = [{"train": "Train", "val": "Validation", "test": "Test"}[split_name]] * len(files)
            items += [(sp, label, Path(f)) for sp, f in zip(names, files)]
    with progress(disable=not show_progress) as bar:
        task = bar.add_task(f"faces in {root.name}", total=len(items), info="")
        for sp, label, f in items:
            bar.advance(task)
            try:
                img = _read_bgr(f)
            except DataError as e:
                unused.append((str(f), f"unreadable: {e}"))
                continue
            faces = single.detect(img)
            if len(faces) != 1:
                unused.append((str(f), "no face found" if not faces else f"{len(faces)} faces found"))
                continue
            w.write(sp, label, f"{root.name}_{f.stem}.jpg", w.crop(img, faces[0].box, margin))
    manifest.setdefault("folders", {})[str(root)] = {"images": len(items)}
