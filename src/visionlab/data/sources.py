"""Where images come from: a folder of class folders, CIFAR-10 through torchvision, or the synthetic generator.

``build(cfg)`` picks a source (``cfg.source``, or detected from ``cfg.data``), works out the splits on file
lists first, decodes only what those splits need (through the cache) and returns an ``ImageData``.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..config import RunConfig
from ..errors import DataError
from ..io import cache_root
from ..registry import Registry
from . import splits as sp
from .cache import load_or_decode, native_size, remember_arrays
from .checks import check_layout
from .types import ImageData, Split

Source = Callable[[RunConfig, Optional[int]], ImageData]
SOURCES: Registry[Source] = Registry("data source")

DEFAULT_SIZE = 64
SPLIT_FORMAT = "splits-v1"  # bump when the split procedure changes
CIFAR_DIR = "cifar-10-batches-py"
SYNTHETIC_SEED = 0  # the synthetic set is one fixed data set; cfg.seed varies its splits, as for a folder


def build(cfg: RunConfig, image_size: Optional[int] = None) -> ImageData:
    """The data ``cfg`` names, split and decoded. ``image_size`` overrides ``cfg.image_size``."""
    if cfg.data is None:
        from ..errors import ConfigError

        raise ConfigError("no --data given: pass an image folder (class folders), 'cifar10', or 'synthetic' for "
                          "generated images")
    name = cfg.source if cfg.source != "auto" else detect_source(str(cfg.data))
    return SOURCES.get(name)(cfg, image_size)


def detect_source(data: str) -> str:
    """'synthetic', 'cifar10' (the word, or a folder in torchvision's CIFAR-10 format) or 'folder'."""
    if data.lower() == "synthetic":
        return "synthetic"
    p = Path(data).expanduser()
    if p.exists():
        return "cifar10" if cifar_root(p) is not None else "folder"
    return "cifar10" if data.lower() == "cifar10" else "folder"  # a missing folder is reported by check_layout


def cifar_root(p: Path) -> Optional[Path]:
    """The root torchvision's CIFAR10 wants (the parent of cifar-10-batches-py) if ``p`` holds that format."""
    if (p / CIFAR_DIR).is_dir():
        return p
    if (p / "data_batch_1").is_file() and (p / "batches.meta").is_file():
        return p.parent if p.name == CIFAR_DIR else None
    return None


# ------------------------------------------------------------------------------------------------------------
# Shared steps: image size, split assignment, assembling the result
def assign(labels: np.ndarray, cfg: RunConfig, given: Optional[dict[str, np.ndarray]] = None,
           where: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) positions into ``labels``.

    ``given`` holds the splits the data came with (train always; val, test if present). Missing ones are carved
    from train by ``cfg.val_split`` / ``cfg.test_split``; ``cfg.split_ratios`` pools everything and re-splits.
    ``cfg.limit_per_class`` then thins train only.
    """
    # The split depends only on the label sequence, the given splits and the options: remember it under those.
    parts = [labels] + [given[k] for k in sorted(given)] if given else [labels]
    key = _content_key(SPLIT_FORMAT, sorted(given) if given else None, cfg.split_ratios, cfg.val_split,
                       cfg.test_split, cfg.seed, cfg.limit_per_class, index=tuple(parts))

    def compute() -> dict[str, np.ndarray]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", sp.SplitWarning)
            tr, va, te = _assign(labels, cfg, given, where)
        notes = [str(w.message) for w in caught if issubclass(w.category, sp.SplitWarning)]
        return {"train": tr, "val": va, "test": te, "notes": np.asarray(notes, dtype=str)}

    got = remember_arrays("splits", key, compute, cfg.cache_dir)
    for note in got["notes"].tolist():  # said again on every run, not only the one that computed the split
        warnings.warn(note, sp.SplitWarning, stacklevel=3)
    return tuple(got[k].astype(np.int64) for k in ("train", "val", "test"))  # type: ignore[return-value]


def _assign(labels: np.ndarray, cfg: RunConfig, given: Optional[dict[str, np.ndarray]],
            where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        if cfg.split_ratios is not None:
            tr, va, te = sp.by_ratios(labels, cfg.split_ratios, cfg.seed)
        elif given is None:
            tr, va, te = sp.three_way(labels, cfg.val_split, cfg.test_split, cfg.seed)
        else:
            tr, va, te = given["train"], given.get("val"), given.get("test")
            if va is None and te is None:
                tr, va, te = sp.three_way(labels, cfg.val_split, cfg.test_split, cfg.seed, idx=tr)
            elif va is None:
                tr, va = sp.holdout(tr, labels, cfg.val_split, cfg.seed, "validation split")
            elif te is None:
                tr, te = sp.holdout(tr, labels, cfg.test_split, cfg.seed, "test split")
            va = np.zeros(0, np.int64) if va is None else va
            te = np.zeros(0, np.int64) if te is None else te
    except ValueError as e:
        raise DataError(f"{where}: {e}; lower --val-split/--test-split or add images") from None
    tr = sp.limit_per_class(tr, labels, cfg.limit_per_class, cfg.seed)
    return tr, va, te


def _content_key(*parts: object, index: tuple[np.ndarray, ...] = ()) -> str:
    h = hashlib.sha256("|".join(map(str, parts)).encode("utf-8", "surrogateescape"))  # (non-UTF-8 names)
    for a in index:
        h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes() + b"/")
    return h.hexdigest()[:32]


def _split(x: torch.Tensor, y: np.ndarray, pos: np.ndarray, paths: Optional[list[str]]) -> Optional[Split]:
    if len(pos) == 0:
        return None
    p = torch.from_numpy(np.ascontiguousarray(pos, dtype=np.int64))
    return Split(x.index_select(0, p), torch.from_numpy(y[pos].astype(np.int64)), [paths[i] for i in pos] if paths else None)


def _assemble(x: torch.Tensor, y: np.ndarray, parts: tuple[np.ndarray, np.ndarray, np.ndarray], classes: list[str],
              paths: Optional[list[str]], where: str) -> tuple[Split, Optional[Split], Optional[Split]]:
    """Splits from rows of ``x``; train must keep every class (a class lost to unreadable files is an error)."""
    train, val, test = (_split(x, y, p, paths) for p in parts)
    if train is None:
        raise DataError(f"{where}: no training images are left; add images or lower --val-split/--test-split")
    present = set(np.unique(y[parts[0]]).tolist())
    missing = [c for i, c in enumerate(classes) if i not in present]
    if missing:
        raise DataError(f"{where}: the training split has no readable images of class(es) {missing}; "
                        f"add images or check the skipped files")
    return train, val, test


# ------------------------------------------------------------------------------------------------------------
@SOURCES.register("folder", help="a folder of class folders, optionally inside train/validation/test folders")
def from_folder(cfg: RunConfig, image_size: Optional[int] = None) -> ImageData:
    layout = check_layout(cfg.data)
    root, classes = layout.root, layout.classes
    files, labels, origin = [], [], []
    for split, per_class in layout.files.items():
        for c, name in enumerate(classes):
            files.extend(per_class[name])
            labels.extend([c] * len(per_class[name]))
            origin.extend([split] * len(per_class[name]))
    y, origin_a = np.asarray(labels, np.int64), np.asarray(origin)
    given = None if not layout.is_split else {s: np.flatnonzero(origin_a == s) for s in layout.splits}
    tr, va, te = assign(y, cfg, given, str(root))

    # decode only what the splits use (limit_per_class on a big set then costs little)
    needed = np.unique(np.concatenate([tr, va, te]))
    needed_files = [files[i] for i in needed]
    # a model's default side was settled by visionlab.resolve before the data layer is asked
    size = image_size or cfg.image_size or native_size(needed_files, root, cfg.cache_dir) or DEFAULT_SIZE
    dec = load_or_decode(needed_files, root, size, cfg.cache_dir, quiet=cfg.quiet, label=root.name)

    # rows of dec.x by original position; files that did not decode drop out of their split
    row = np.full(len(files), -1, np.int64)
    row[needed[dec.kept]] = np.arange(len(dec.kept))
    parts = tuple(row[p][row[p] >= 0] for p in (tr, va, te))
    y_rows = y[needed[dec.kept]]
    kept_paths = [str(files[i]) for i in needed[dec.kept]]
    train, val, test = _assemble(dec.x, y_rows, parts, classes, kept_paths, str(root))
    key = _content_key("folder", dec.key, classes, index=parts)
    return ImageData(classes, train, val, test, dec.skipped, "folder", str(root), key)


@SOURCES.register("cifar10", help="CIFAR-10 via torchvision: downloaded into the cache, or a local copy")
def from_cifar10(cfg: RunConfig, image_size: Optional[int] = None) -> ImageData:
    from torchvision.datasets import CIFAR10

    data = str(cfg.data)
    p = Path(data).expanduser()
    if p.exists():
        root, download = cifar_root(p), False
        if root is None:
            raise DataError(f"{p} does not hold CIFAR-10 in torchvision's format ({CIFAR_DIR}/data_batch_1 ...); "
                            f"pass the folder that contains {CIFAR_DIR}, or use --source folder for image files")
    else:
        root, download = cache_root(cfg.cache_dir) / "cifar10", True
    try:
        train_ds = CIFAR10(str(root), train=True, download=download)
        test_ds = CIFAR10(str(root), train=False, download=download)
    except Exception as e:  # URLError, socket errors, RuntimeError("Dataset not found or corrupted")
        if download:
            raise DataError(f"could not download CIFAR-10 into {root} ({e}); without a network pass --data with a "
                            f"local copy: a folder of class folders (e.g. ../shared/data/cifar10) or a folder "
                            f"holding {CIFAR_DIR}") from None
        raise DataError(f"{root / CIFAR_DIR}: CIFAR-10 files are missing or corrupted ({e}); replace them, or "
                        f"pass --data cifar10 to download a fresh copy") from None
    classes = list(train_ds.classes)
    x = torch.from_numpy(np.concatenate([train_ds.data, test_ds.data])).permute(0, 3, 1, 2).contiguous()
    y = np.concatenate([np.asarray(train_ds.targets), np.asarray(test_ds.targets)]).astype(np.int64)
    n_train = len(train_ds.targets)
    size = image_size or cfg.image_size or 32  # CIFAR's native size
    if size != x.shape[-1]:
        x = resize_uint8(x, size)
    given = {"train": np.arange(n_train), "test": np.arange(n_train, len(y))}
    parts = assign(y, cfg, given, str(root))
    train, val, test = _assemble(x, y, parts, classes, None, str(root))
    stamps = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted((root / CIFAR_DIR).iterdir())]
    key = _content_key("cifar10", root, stamps, size, classes, index=parts)
    return ImageData(classes, train, val, test, [], "cifar10", str(root), key)


@SOURCES.register("synthetic", help="generated face-mask-like images (WithMask / WithoutMask), no files needed")
def from_synthetic(cfg: RunConfig, image_size: Optional[int] = None) -> ImageData:
    from .synthetic import FORMAT, synthetic_images

    size = image_size or cfg.image_size or DEFAULT_SIZE
    n = cfg.synthetic_per_class
    x, y_t, classes = _cached_synthetic(n, size, cfg.cache_dir, synthetic_images)
    y = y_t.numpy()
    parts = assign(y, cfg, None, "synthetic data")
    train, val, test = _assemble(x, y, parts, classes, None, "synthetic data")
    key = _content_key("synthetic", FORMAT, SYNTHETIC_SEED, n, size, index=parts)
    return ImageData(classes, train, val, test, [], "synthetic", f"synthetic ({n} per class)", key)


def _cached_synthetic(n: int, size: int, cache_dir: Optional[str], make) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Rendering costs ~4 ms an image; a demo or study re-reads the same set, so keep it beside decoded data."""
    from .cache import save_array
    from .synthetic import CLASSES, FORMAT

    path = cache_root(cache_dir) / "synthetic" / f"{FORMAT}-s{SYNTHETIC_SEED}-n{n}-{size}px.npy"
    y = torch.arange(len(CLASSES)).repeat_interleave(n)
    try:
        x = np.load(path, allow_pickle=False)
        if x.shape == (len(CLASSES) * n, 3, size, size) and x.dtype == np.uint8:
            return torch.from_numpy(x), y, list(CLASSES)
    except (OSError, ValueError):
        pass
    x_t, y, classes = make(n, size, SYNTHETIC_SEED)
    try:
        save_array(path, lambda f: np.save(f, x_t.numpy(), allow_pickle=False))
    except OSError:
        pass
    return x_t, y, classes


def resize_uint8(x: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Bilinear, antialiased resize of a uint8 N x 3 x H x W tensor to size x size (as Pillow's, in batches)."""
    out = torch.empty((x.shape[0], x.shape[1], size, size), dtype=torch.uint8)
    for s in range(0, x.shape[0], chunk):
        f = torch.nn.functional.interpolate(x[s:s + chunk].float(), size=(size, size), mode="bilinear",
                                            antialias=True, align_corners=False)
        out[s:s + chunk] = f.round_().clamp_(0, 255).to(torch.uint8)
    return out
