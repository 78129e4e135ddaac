"""Cut a face-crop ImageFolder from box-annotated photos (and from photos of one face), for the face classifier.

``cut_faces(sources, out)`` writes ``OUT/{Train,Validation,Test}/<class>/*.jpg`` with the *same crop geometry as
the detection pipeline* (``detect.pipeline.square_crop``: the box's longer side plus ``margin`` on each edge,
moved inside the photo), so the classifier trains on what it sees at inference time.

- Box-annotated photos (``boxes.csv`` or a PASCAL VOC folder) are split **by photo group**: near-duplicate photos
  (difference hash at most 4 bits apart or DCT perceptual hash at most 6, ``photo_groups``) form one group, groups
  are split seeded and stratified by the rarest class they hold, and every crop of a photo lands in that photo's
  split. The split and each photo's group are written to ``faces.json``.
- Cross-validation (``folds``, ``fold``): a held-out Test part (the same groups as without folds) and ``folds``
  stratified folds of the other groups (``fold_photos``); Validation is fold ``fold``, Train the other folds, and
  ``faces.json`` records every non-Test photo's fold.
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

from ..boxes import DEFAULT_BOX_FEATURES, BoxMerge
from ..errors import ConfigError, DataError
from .cropnames import face_name, jitter_name
from .pipeline import DEFAULT_MARGIN
from ..data.boxes import AnnotatedImage, canonical_label, read_annotations

SPLITS = ("Train", "Validation", "Test")
BACKGROUND = "Background"
MANIFEST, PROFILE, UNUSED = "faces.json", "detect.json", "unused.csv"
DEFAULT_UPSCALE, DEFAULT_THRESHOLD = 3.0, 0.15
DHASH_BITS, PHASH_BITS = 4, 6  # near-duplicate limits; 6 pHash bits is the limit the shared data's README used


@dataclass
class FaceCropSummary:
    out: Path
    counts: dict  # split -> class -> crops
    photos: dict  # split -> photos
    unused: int
    box_correction_pairs: int
    background_left_out: int = 0  # boxes on no annotated face scoring >= --background-max-score: no crop

    def __str__(self) -> str:
        lines = [f"face crops in {self.out}"]
        for s in SPLITS:
            if self.counts.get(s):
                lines.append(f"  {s}: {sum(self.counts[s].values())} crops from {self.photos.get(s, 0)} photos "
                             f"({', '.join(f'{k} {v}' for k, v in sorted(self.counts[s].items()))})")
        if self.unused:
            lines.append(f"  {self.unused} image(s) without exactly one face listed in {self.out / UNUSED}")
        if self.background_left_out:
            lines.append(f"  {self.background_left_out} detector box(es) on no annotated face taken for faces the "
                         f"annotators left out (--background-max-score): not Background")
        return "\n".join(lines)


def _grey(path: Path, w: int, h: int) -> np.ndarray:
    """The photo in grey, resized to w x h with Lanczos (as imagehash does), as float64."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L").resize((w, h), Image.Resampling.LANCZOS), np.float64)


def _bits_to_int(bits: np.ndarray) -> int:
    return int("".join("1" if b else "0" for b in bits.ravel()), 2)


def dhash(path: Path, size: int = 8) -> int:
    """A 64-bit difference hash of the photo (grey, (size+1) x size): near-duplicates differ in a few bits.
    Hand-written (eight lines) rather than adding the imagehash package and PyWavelets for one function."""
    g = _grey(path, size + 1, size)
    return _bits_to_int(g[:, 1:] > g[:, :-1])


def phash(path: Path, size: int = 8, factor: int = 4) -> int:
    """A 64-bit DCT perceptual hash (imagehash.phash's definition: grey 32 x 32, 2-D DCT-II, the 8 x 8 lowest
    frequencies against their median), so the data set README's limit of 6 bits means the same here.
    Written on scipy.fft rather than importing imagehash, which only the optional `issues` extra installs."""
    from scipy.fft import dct

    n = size * factor
    low = dct(dct(_grey(path, n, n), axis=0), axis=1)[:size, :size]
    return _bits_to_int(low > np.median(low))


def hamming(hashes: Sequence[int]) -> np.ndarray:
    """N x N bit distances between 64-bit hashes."""
    h = np.array(hashes, dtype=np.uint64)
    return np.bitwise_count(h[:, None] ^ h[None, :]).astype(np.int64)


def photo_groups(records: Sequence[AnnotatedImage], max_bits: int = DHASH_BITS,
                 phash_bits: Optional[int] = PHASH_BITS) -> list[int]:
    """Group index per photo (numbered in photo order): two photos are one group when their difference hashes
    differ in at most ``max_bits`` bits or their DCT hashes in at most ``phash_bits`` (None: difference hash
    only); groups are the connected components of that relation (SciPy), so a chain of near-duplicates is one."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    if not records:
        return []
    near = hamming([dhash(r.path) for r in records]) <= max_bits
    if phash_bits is not None:
        near |= hamming([phash(r.path) for r in records]) <= phash_bits
    _, comp = connected_components(csr_matrix(near), directed=False)
    first = {c: k for k, c in enumerate(dict.fromkeys(comp.tolist()))}
    return [first[c] for c in comp.tolist()]


def _group_members(groups: Sequence[int]) -> dict[int, list[int]]:
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    return members


def _group_labels(records: Sequence[AnnotatedImage], members: dict[int, list[int]], gids: Sequence[int],
                  min_count: int = 2) -> list[str]:
    """The rarest class (over all photos) each group holds, for stratifying; a label held by fewer than
    ``min_count`` of these groups becomes "other"."""
    freq = Counter(b.label for r in records for b in r.boxes)
    labels = []
    for g in gids:
        present = {b.label for i in members[g] for b in records[i].boxes}
        labels.append(min(present, key=lambda c: (freq[c], c)) if present else "none")
    counts = Counter(labels)
    return [lab if counts[lab] >= min_count else "other" for lab in labels]


def _shares(ratios: tuple[float, float, float]) -> tuple[float, float, float]:
    total = sum(ratios)
    r_train, r_val, r_test = (r / total for r in ratios)
    if r_train <= 0:
        raise ConfigError("the train share of --split-ratios must be positive")
    return r_train, r_val, r_test


def _cut_groups(records, members, gs, share: float, seed: int) -> tuple[list[int], list[int]]:
    """Groups ``gs`` cut in two, the second holding ``share`` of them, stratified by their rarest class."""
    from sklearn.model_selection import train_test_split

    if share <= 0 or len(gs) < 2:
        return list(gs), []
    n = max(1, round(share * len(gs)))
    labels = _group_labels(records, members, gs)
    try:
        a, b = train_test_split(gs, test_size=n, random_state=seed, stratify=labels)
    except ValueError:  # a class too rare to stratify
        a, b = train_test_split(gs, test_size=n, random_state=seed)
    return list(a), list(b)


def _by_photo(members: dict[int, list[int]], named: dict, n: int) -> list:
    out = {}
    for value, gs in named.items():
        for g in gs:
            for i in members[g]:
                out[i] = value
    return [out[i] for i in range(n)]


def split_photos(records: Sequence[AnnotatedImage], ratios: tuple[float, float, float], seed: int,
                 groups: Optional[Sequence[int]] = None) -> list[str]:
    """Split name per photo. Groups stay whole; groups are stratified by the rarest class they contain."""
    r_train, r_val, r_test = _shares(ratios)
    groups = list(groups) if groups is not None else list(range(len(records)))
    members = _group_members(groups)
    rest, test = _cut_groups(records, members, sorted(members), r_test, seed)
    train, val = _cut_groups(records, members, rest, r_val / max(r_train + r_val, 1e-12) if r_val > 0 else 0.0,
                             seed)
    return _by_photo(members, {"Train": train, "Validation": val, "Test": test}, len(records))


def fold_photos(records: Sequence[AnnotatedImage], ratios: tuple[float, float, float], seed: int, folds: int,
                groups: Optional[Sequence[int]] = None) -> list[Optional[int]]:
    """Fold index (0..folds-1) per photo, None for the held-out Test part. The Test part is the one
    ``split_photos`` gives with the same ratios and seed (only the test share counts); the other groups are dealt
    into ``folds`` folds stratified by their rarest class, seeded. Samples are the groups themselves (one row per
    group), so sklearn's StratifiedKFold stratifies groups, where StratifiedGroupKFold would balance photos."""
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ConfigError(f"--folds {folds}: give at least 2 folds")
    _, _, r_test = _shares(ratios)
    groups = list(groups) if groups is not None else list(range(len(records)))
    members = _group_members(groups)
    rest, test = _cut_groups(records, members, sorted(members), r_test, seed)
    rest = sorted(rest)
    if len(rest) < folds:
        raise ConfigError(f"--folds {folds}: only {len(rest)} photo group(s) are left beside the Test part")
    labels = _group_labels(records, members, rest, min_count=folds)
    counts = Counter(labels)
    if 0 < counts["other"] < folds and len(counts) > 1:  # too few to spread over the folds: with the commonest
        common = max((c for c in counts if c != "other"), key=lambda c: counts[c])
        labels = [common if lab == "other" else lab for lab in labels]
    kf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    named: dict = {None: test}
    for k, (_, held) in enumerate(kf.split(np.zeros(len(rest)), labels)):
        named[k] = [rest[j] for j in held]
    return _by_photo(members, named, len(records))


def fold_split(fold_of: Sequence[Optional[int]], fold: int) -> list[str]:
    """Split name per photo for one fold: Validation = that fold, Train = the other folds, Test = the held-out
    part."""
    return ["Test" if f is None else "Validation" if f == fold else "Train" for f in fold_of]


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


def _fit_correction(boxed: Sequence[AnnotatedImage], split: list[str], raw: dict, merge: BoxMerge = "nms",
                    kind: str = DEFAULT_BOX_FEATURES):
    """The box correction from the training photos' matched pairs (IoU >= 0.3: the offsets it must learn), of the
    boxes the detector's search gave (``merge``: single boxes, or fused ones with their fused scores), with the
    inputs ``kind`` names (boxes.BOX_FEATURES)."""
    from ..boxes import BoxCorrection, match, xywh_to_xyxy

    X, L, S, T = [], [], [], []
    for i, r in enumerate(boxed):
        if split[i] != "Train" or not len(raw[i]):
            continue
        gt = np.array([[b.x0, b.y0, b.x1, b.y1] for b in r.boxes])
        for d, g, _ in match(xywh_to_xyxy(raw[i][:, :4]), gt, 0.3):
            X.append(raw[i][d, :4]), L.append(raw[i][d, 4:14]), S.append(raw[i][d, 14]), T.append(gt[g])
    return BoxCorrection.fit(np.array(X), np.array(L), np.array(S), np.array(T), merge=merge, kind=kind)


def _cut_photo(w: _Writer, r: AnnotatedImage, img: np.ndarray, raw: np.ndarray, sp: str, correction,
               copies: dict, rng: np.random.Generator, margin: float, background: bool,
               background_max_score: Optional[float] = None) -> int:
    """One box-annotated photo's crops: a face crop per annotated face (a training face from its corrected
    detector box where matched, with jittered copies of rare classes), and ``Background`` crops of the
    detector boxes that overlap no annotated face, except those scoring ``background_max_score`` or more (taken
    for faces the annotators left out: no crop). Returns how many boxes were left out so."""
    from ..boxes import iou_matrix, match, xywh_to_xyxy

    stem = r.path.stem
    gt = np.array([[b.x0, b.y0, b.x1, b.y1] for b in r.boxes])
    fixed = correction(raw[:, :4], raw[:, 4:14], raw[:, 14]) if len(raw) else np.zeros((0, 4))
    matched = {g: d for d, g, _ in match(xywh_to_xyxy(fixed), gt, 0.5)} if sp == "Train" else {}
    for j, b in enumerate(r.boxes):
        box = tuple(fixed[matched[j]]) if j in matched else b.xywh
        w.write(sp, b.label, face_name(stem, j), w.crop(img, box, margin))
        for k in range(copies.get(b.label, 0) if sp == "Train" else 0):
            w.write(sp, b.label, jitter_name(stem, j, k), w.crop(img, _jitter(b.xywh, rng), margin))
    if not (background and len(fixed)):
        return 0
    m = iou_matrix(xywh_to_xyxy(fixed), gt).max(1) if len(gt) else np.zeros(len(fixed))
    alone = np.flatnonzero(m < 0.2)
    face_like = raw[alone, 14] >= (np.inf if background_max_score is None else background_max_score)
    for d in alone[~face_like]:
        w.write(sp, BACKGROUND, f"{stem}_bg{d:03d}.jpg", w.crop(img, fixed[d], margin))
    return int(face_like.sum())


def _cut_boxed(boxed: list[AnnotatedImage], det, w: _Writer, manifest: dict, rng: np.random.Generator, *,
               split_ratios: tuple[float, float, float], seed: int, margin: float, balance: bool, max_jitter: int,
               background: bool, show_progress: bool, dhash_bits: int = DHASH_BITS, phash_bits: int = PHASH_BITS,
               folds: Optional[int] = None, fold: Optional[int] = None,
               background_max_score: Optional[float] = None, box_correction: str = DEFAULT_BOX_FEATURES):
    """The box-annotated photos split by photo (recorded in ``manifest``) and cut; returns the box correction
    (inputs: ``box_correction``) fitted on the training photos. With ``folds``: Validation is fold ``fold``, Train
    the other folds."""
    groups = photo_groups(boxed, dhash_bits, phash_bits if phash_bits >= 0 else None)
    if folds is None:
        split = split_photos(boxed, split_ratios, seed, groups)
    else:
        fold_of = fold_photos(boxed, split_ratios, seed, folds, groups)
        split = fold_split(fold_of, fold)
        manifest["folds"] = {"k": folds, "fold": fold,
                             "fold_of": {r.name: f for r, f in sorted(zip(boxed, fold_of), key=lambda t: t[0].name)
                                         if f is not None}}
    manifest["photos"] = {s: sorted(r.name for r, sp in zip(boxed, split) if sp == s) for s in SPLITS}
    manifest["groups"] = int(max(groups) + 1)
    manifest["grouping"] = {"dhash_bits": dhash_bits, "phash_bits": phash_bits}
    manifest["photo_groups"] = dict(sorted((r.name, g) for r, g in zip(boxed, groups)))
    imgs, raw = _detect_all(boxed, det, show_progress)
    correction = _fit_correction(boxed, split, raw, det.box_merge, box_correction)
    freq = Counter(b.label for i, r in enumerate(boxed) if split[i] == "Train" for b in r.boxes)
    top = max(freq.values()) if freq else 1
    copies = {c: (min(max_jitter, max(0, round(top / (2 * n)) - 1)) if balance else 0) for c, n in freq.items()}
    manifest["jitter_copies"] = copies
    skipped: Counter = Counter()
    for i, r in enumerate(boxed):
        skipped[split[i]] += _cut_photo(w, r, imgs.pop(i), raw[i], split[i], correction, copies, rng, margin,
                                        background, background_max_score)
    if background_max_score is not None:
        manifest["background"] = {"max_score": background_max_score,
                                  "left_out": {s: skipped[s] for s in SPLITS}}
    return correction


def _check_counts(synthetic_incorrect: int, turned_copies: int) -> None:
    if synthetic_incorrect < 0 or turned_copies < 0:
        raise ConfigError(f"--synthetic-incorrect and --turned-copies are counts of 0 or more, not "
                          f"{min(synthetic_incorrect, turned_copies)}")


def _check_options(folds: Optional[int], fold: Optional[int], synthetic_incorrect: int, turned_copies: int,
                   margin: float, background_max_score: Optional[float], box_correction: str) -> None:
    """Every option of ``cut_faces`` that can be wrong, checked before anything is read or written."""
    from ..boxes import BOX_FEATURES

    BOX_FEATURES.get(box_correction)  # an unknown name: one line naming the known ones
    _check_folds(folds, fold)
    _check_counts(synthetic_incorrect, turned_copies)
    if margin < 0:  # the pipeline refuses such a profile; its crops would be 1 px squares blown up to --size
        raise ConfigError(f"--margin is a share of the face box's longer side on each edge, 0 or more, not {margin}")
    if background_max_score is not None and not 0 < background_max_score <= 1:
        raise ConfigError(f"--background-max-score is a detector score above 0 and at most 1, not "
                          f"{background_max_score}")


def _check_folds(folds: Optional[int], fold: Optional[int]) -> None:
    """--folds K and --fold I go together, with 2 <= K and 0 <= I < K."""
    if folds is None and fold is None:
        return
    if folds is None:
        raise ConfigError(f"--fold {fold} needs --folds K (the number of folds)")
    if folds < 2:
        raise ConfigError(f"--folds {folds}: give at least 2 folds")
    if fold is None or not 0 <= fold < folds:
        raise ConfigError(f"--folds {folds} needs --fold I with I from 0 to {folds - 1} (the validation fold)")


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
              score_threshold: float = DEFAULT_THRESHOLD, margin: float = DEFAULT_MARGIN, size: int = 128,
              split_ratios: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0, balance: bool = True,
              max_jitter: int = 10, background: bool = True, label_map: Optional[dict] = None,
              show_progress: bool = True, detector: str = "yunet", folds: Optional[int] = None,
              fold: Optional[int] = None, dhash_bits: int = DHASH_BITS,
              phash_bits: int = PHASH_BITS, synthetic_incorrect: int = 0, turned_copies: int = 0,
              box_merge: BoxMerge = "nms", mirror_search: bool = False,
              background_max_score: Optional[float] = None,
              box_correction: str = DEFAULT_BOX_FEATURES) -> FaceCropSummary:
    """Write a face-crop ImageFolder from box-annotated photo sets and/or ImageFolders of one-face photos.
    ``detector``: a YuNet-family name from ``FACE_DETECTORS`` (yunet, yunet_ort); the profile records it.
    ``folds``/``fold``: cross-validation over the box-annotated photos outside the held-out Test part
    (``fold_photos``): Validation = fold ``fold`` (0..folds-1), Train = the other folds; Test is the same for every
    fold and the same as without ``folds``. ``dhash_bits``/``phash_bits``: the near-duplicate limits of
    ``photo_groups`` (``phash_bits`` -1: difference hash only). ``synthetic_incorrect``: that many Train crops of
    masks moved below the nose (synthmask.py), made from Train's own faces after the cut. ``turned_copies``: that
    many extra copies of each Train face that YuNet's landmarks show turned aside (turned.py), made last.
    ``box_merge``/``mirror_search``: the detector's search (faces.py), so the crops and the box correction are
    those of the boxes `visionlab detect` will classify; the profile records it for the photo setting.
    ``background_max_score``: a detector box that overlaps no annotated face but scores this or more is taken for
    a face the annotators left out (turned-away and distant faces often are) and cut as nothing, not Background;
    ``faces.json`` counts them per split. None: every such box is Background. ``box_correction``: the inputs of
    the box correction fitted on the Train photos (boxes.BOX_FEATURES: linear or quadratic)."""
    from ..boxes import BoxCorrection
    from .faces import build_detector
    from ..io import write_json

    from ..outdir import claim_out

    if not sources:
        raise ConfigError("give at least one source: a boxes.csv, a VOC folder or an ImageFolder")
    _check_options(folds, fold, synthetic_incorrect, turned_copies, margin, background_max_score, box_correction)
    boxed, folders = _sort_sources(sources, images, label_map)  # a source that cannot be read leaves no --out behind
    # crops are never mixed with old ones: a folder that holds files is refused (a file or read-only: one line)
    out = claim_out(out, "faces", policy="refuse")
    rng = np.random.default_rng(seed)
    w = _Writer(out, size)
    manifest: dict = {"format": "visionlab-face-crops-v1", "sources": [str(s) for s in sources], "seed": seed,
                      "split_ratios": list(split_ratios), "margin": margin, "crop_size": size,
                      "detector": {"name": detector, "upscale": upscale, "score_threshold": score_threshold,
                                   "box_merge": box_merge, "mirror_search": mirror_search,
                                   "box_correction": box_correction},
                      "photos": {}}
    unused: list[tuple[str, str]] = []
    det = build_detector(detector, model_path=face_model, score_threshold=score_threshold, upscale=upscale,
                         box_merge=box_merge, mirror_search=mirror_search)
    correction: Optional[BoxCorrection] = None
    if boxed:
        correction = _cut_boxed(boxed, det, w, manifest, rng, split_ratios=split_ratios, seed=seed, margin=margin,
                                balance=balance, max_jitter=max_jitter, background=background,
                                show_progress=show_progress, dhash_bits=dhash_bits, phash_bits=phash_bits,
                                folds=folds, fold=fold, background_max_score=background_max_score,
                                box_correction=box_correction)
    elif folds is not None:
        raise ConfigError("--folds needs box-annotated photos (a boxes.csv or a VOC folder) among the sources")

    for root in folders:
        _cut_folder(root, det, correction, w, margin, unused, manifest, show_progress, label_map, split_ratios, seed)

    profile = _profile(det, detector, correction, margin, seed, named=face_model is not None)
    _add_made(out, w, manifest, synthetic_incorrect, turned_copies, seed)
    manifest["counts"] = {s: dict(sorted(c.items())) for s, c in w.counts.items()}
    write_json(out / MANIFEST, manifest)
    write_json(out / PROFILE, profile)
    if unused:
        _write_unused(out / UNUSED, unused)
    photos = {s: len(v) for s, v in manifest["photos"].items()}
    return FaceCropSummary(out, manifest["counts"], photos, len(unused), correction.pairs if correction else 0,
                           sum(manifest.get("background", {}).get("left_out", {}).values()))


def _add_made(out: Path, w: _Writer, manifest: dict, synthetic_incorrect: int, turned_copies: int,
              seed: int) -> None:
    """The Train crops made after the cut: masks moved below the nose (synthmask.py), then extra copies of faces
    turned aside (turned.py); both counted in ``w`` and recorded in ``manifest``."""
    if synthetic_incorrect > 0:
        from .synthmask import MWI, synthesize

        made = synthesize(out, synthetic_incorrect, seed=seed)
        manifest["synthetic_incorrect"] = {**made, "list": "synthetic.csv"}
        w.counts["Train"][MWI] += made["written"]
    if turned_copies > 0:
        from .turned import repeat_turned

        made_turned = repeat_turned(out, turned_copies)
        manifest["turned_copies"] = {"copies": turned_copies, "per_class": made_turned, "list": "turned.csv"}
        for c, n in made_turned.items():
            w.counts["Train"][c] += n["written"]


def _profile(det, detector: str, correction, margin: float, seed: int, named: bool) -> dict:
    """detect.json of the crops: the detector and its search as they cut them, the box correction fitted on it."""
    from ..assets import bundled_name

    profile = {"detector": detector, "upscale": det.upscale, "score_threshold": det.score_threshold, "margin": margin,
               "tta": True,
               "box_correction": correction.to_dict() if correction is not None else None,
               "made_by": "visionlab data faces", "seed": seed}
    if det.box_merge != "nms" or det.mirror_search:  # the photo setting searches as the crops were cut (profile.py)
        profile |= {"box_merge": det.box_merge, "mirror_search": det.mirror_search}
    shipped = bundled_name(det.model_path) if named else None
    if shipped:  # a face model visionlab ships (or a byte-for-byte copy): named, not the path, so it runs anywhere
        profile["face_model"] = shipped
    return profile


def _cut_folder(root: Path, det, correction, w: _Writer, margin: float, unused: list, manifest: dict,
                show_progress: bool, label_map: Optional[dict], split_ratios=(0.7, 0.15, 0.15), seed: int = 0) -> None:
    """One-face photos of an ImageFolder (split folders kept) -> crops of the one face the detector finds."""
    from .faces import build_detector
    from ..progress import progress
    from ..data.checks import check_layout

    layout = check_layout(root)
    # contained=None: the one-face photos are cut from every box the detector keeps, as before the containment rule
    # (a photo with a second box stays unused), so the crops, and a model rebuilt from them, do not change
    single = build_detector(det.name, model_path=det.model_path, score_threshold=0.6, upscale=1.0,
                            box_correction=correction, contained=None, box_merge=det.box_merge,
                            mirror_search=det.mirror_search)
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
