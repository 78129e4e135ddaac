"""Checks on what a user hands us: a folder's layout (one image file is checked by decoding it:
``visionlab.images.decode_image``).

Every failure is a ``DataError`` that names the folder and says what to do.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

# Folder names (lower case) that mark an already split data set, and the split each one means.
SPLIT_NAMES = {"train": "train", "training": "train", "validation": "val", "val": "val", "valid": "val",
               "test": "test", "testing": "test"}
SPLIT_ORDER = ("train", "val", "test")


@dataclass
class Layout:
    """A checked image folder: ``splits`` maps train/val/test (or "all" when unsplit) to class folders' parent."""

    root: Path
    splits: dict[str, Path]
    classes: list[str]
    files: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # split -> class -> file paths

    @property
    def is_split(self) -> bool:
        return "all" not in self.splits


def _visible_dirs(d: Path) -> list[Path]:
    return sorted((p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def list_files(class_dir: str | Path) -> list[str]:
    """Every non-hidden file under a class folder (recursive, as ImageFolder reads), in a stable order.

    Plain strings, not Paths: for 60,000 files pathlib alone costs seconds, and a warm start should not.
    """
    out: list[str] = []
    seen: set[tuple[int, int]] = set()  # (device, inode) of every folder walked: a symlink loop ends here
    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # reached again through a symlink: already listed once
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    return out


def check_layout(root: str | Path) -> Layout:
    """Check that ``root`` is a folder of class folders, or of train/validation/test folders of class folders.

    Raises ``DataError`` naming the path and saying what to do when it does not exist, has no class folders,
    has only one class, its splits have different class names, or a split or class folder holds no files.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root} does not exist; pass --data with a folder of class folders "
                        f"(<folder>/<class>/*.jpg), or 'synthetic' or 'cifar10'")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a folder; pass --data with a folder of class folders")
    subs = _visible_dirs(root)
    named = {SPLIT_NAMES[p.name.lower()]: p for p in subs if p.name.lower() in SPLIT_NAMES}
    if named:
        if "train" not in named:
            raise DataError(f"{root} has {', '.join(p.name for p in named.values())} folders but no train folder; "
                            f"add {root}/train/<class>/ or pass the folder of class folders itself")
        splits = {k: named[k] for k in SPLIT_ORDER if k in named}
    else:
        splits = {"all": root}

    per_split: dict[str, list[str]] = {}
    files: dict[str, dict[str, list[str]]] = {}
    for split, sdir in splits.items():
        classes = [p.name for p in _visible_dirs(sdir)]
        if not classes:
            raise DataError(f"{sdir} has no class folders; put images in {sdir}/<class>/*.jpg "
                            f"(one folder per class)")
        if split == "all" and len(classes) == 1:
            raise DataError(f"{sdir} has only one class folder ({classes[0]}); a classifier needs at least two: "
                            f"add {sdir}/<other class>/")
        files[split] = {c: list_files(sdir / c) for c in classes}
        if not any(files[split].values()):
            raise DataError(f"{sdir} is an empty split: its class folders hold no files; add images or remove it")
        for c, fs in files[split].items():
            if not fs:
                raise DataError(f"{sdir / c} holds no files; add images of class {c!r} or remove the folder")
        per_split[split] = classes

    first = next(iter(per_split))
    for split, classes in per_split.items():
        if classes != per_split[first]:
            raise DataError(f"{splits[split]} has classes {classes} but {splits[first]} has {per_split[first]}; "
                            f"use the same class folder names in every split")
    if len(per_split[first]) < 2:
        raise DataError(f"{splits[first]} has only one class folder ({per_split[first][0]}); a classifier needs "
                        f"at least two: add another class folder in every split")
    return Layout(root, splits, per_split[first], files)
