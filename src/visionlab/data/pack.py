"""One-blob image packs: every file of an image tree concatenated into ``images.bin`` plus ``index.json``
(relative path, offset, length). 60,000 small JPEGs travel and open as two files; the bytes are the
original files', so decoding a pack gives the same pixels as decoding the tree."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError
from ..io import atomic_write_text, write_via

BLOB, INDEX = "images.bin", "index.json"


def pack(root: str | Path, out: str | Path) -> Path:
    """Pack every file under ``root`` into ``out/images.bin`` + ``out/index.json``; returns ``out``."""
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    files = sorted(f for f in root.rglob("*") if f.is_file() and not f.name.startswith("."))
    entries: list[list] = []

    def write_blob(tmp: Path) -> None:
        offset = 0
        with open(tmp, "wb") as blob:
            for f in files:
                data = f.read_bytes()
                blob.write(data)
                entries.append([str(f.relative_to(root)), offset, len(data)])
                offset += len(data)

    write_via(out / BLOB, write_blob)  # the blob first: an index never points into a half-written blob
    atomic_write_text(out / INDEX, json.dumps({"root": root.name, "files": entries}))
    return out


def unpack(src: str | Path, dest: str | Path) -> Path:
    """Write a pack back out as the original tree under ``dest`` (for tools that want files)."""
    src, dest = Path(src), Path(dest)
    index = json.loads((src / INDEX).read_text())
    with open(src / BLOB, "rb") as blob:
        for rel, off, n in index["files"]:
            p = dest / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            blob.seek(off)
            p.write_bytes(blob.read(n))
    return dest
