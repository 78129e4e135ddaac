"""Terminal labelling: one queued image at a time, a colour preview drawn with half-block characters, one key
per decision. Keys: ``1``-``9`` (then letters) pick a class, ``u`` undoes the last label this session gave,
``s`` skips, ``q`` quits. A label is fsync'd to the store before the next image shows, so quitting, closing
the terminal or a kill loses nothing that was confirmed with "saved".

The file is read once per image: the preview is drawn from those bytes and the label is stored under their
hash, and only if that is still the hash the queue scored (a file changed since ``query`` is skipped with a
note, a deleted one likewise), so a label always names the content the person looked at.
"""
from __future__ import annotations

import io
import os
import string
import sys
import uuid
from collections import deque
from collections.abc import Generator
from typing import Iterable, Iterator, Optional

import numpy as np
from rich.console import Console
from rich.style import Style
from rich.table import Table
from rich.text import Text

from ..errors import DataError
from .facecontext import caption, outlined
from .session import Project, load_queue
from .store import ChangedImageError, read_regular, sha256_bytes, warn

RESERVED = {"u": "undo", "s": "skip", "q": "quit"}
NOT_A_FACE, NOT_A_FACE_KEY = "NotAFace", "n"  # facemodel.NOT_A_FACE (not imported: labelling starts without ONNX)


def class_keys(classes: list[str]) -> dict[str, str]:
    """``{"1": first class, ...}``: digits 1-9, then lower-case letters other than u/s/q; in a face pool ``n`` is
    NotAFace too."""
    keys = [str(i) for i in range(1, 10)] + [c for c in string.ascii_lowercase if c not in RESERVED]
    if len(classes) > len(keys):
        raise ValueError(f"the labelling UI has keys for {len(keys)} classes, the project has {len(classes)}")
    out = dict(zip(keys, classes))
    if NOT_A_FACE in classes and NOT_A_FACE_KEY not in out:  # a face pool: "n" for "not a face", as well
        out[NOT_A_FACE_KEY] = NOT_A_FACE
    return out


def half_blocks(path: str | os.PathLike | bytes, width: int = 32, max_rows: int = 24) -> Text:
    """The image (a path or its bytes) as ``width`` columns of '▀': foreground colour is the upper pixel,
    background the lower."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        rows = max(1, min(max_rows, round(im.height / im.width * width / 2)))
        arr = np.asarray(im.resize((width, 2 * rows), Image.BILINEAR))
    text = Text()
    for r in range(rows):
        for c in range(width):
            top, bottom = arr[2 * r, c], arr[2 * r + 1, c]
            text.append("▀", Style(color=f"rgb({top[0]},{top[1]},{top[2]})",
                                   bgcolor=f"rgb({bottom[0]},{bottom[1]},{bottom[2]})"))
        text.append("\n")
    return text


def terminal_keys() -> Iterator[Optional[str]]:
    """Single key presses: unbuffered on a terminal (cbreak mode for the whole session, so no key typed
    between two reads waits in a line buffer), else characters from stdin with blanks skipped. Close the
    generator to restore the terminal."""
    if sys.stdin.isatty():
        import termios
        import tty

        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while True:
                try:
                    ch = os.read(fd, 1).decode(errors="replace")
                except KeyboardInterrupt:
                    ch = "q"
                yield ch if ch else None
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
    else:
        while True:
            ch = sys.stdin.read(1)
            if not ch:
                yield None
            elif not ch.isspace():
                yield ch


def run_labeller(proj: Project, preview: bool = True, width: int = 32, keys: Optional[Iterable[str]] = None,
                 console: Optional[Console] = None) -> dict:
    reader = iter(keys) if keys is not None else terminal_keys()
    try:
        return Labeller(proj, console or Console(highlight=False), preview, width).run(reader)
    finally:
        if isinstance(reader, Generator):
            reader.close()  # the terminal leaves cbreak mode


class Labeller:
    def __init__(self, proj: Project, con: Console, preview: bool, width: int) -> None:
        self.proj, self.con, self.preview, self.width = proj, con, preview, width
        self.queue = load_queue(proj)
        self.items = self.queue["items"]
        self.store = proj.store
        self.keymap = class_keys(proj.classes)
        self.done = {"labelled": 0, "undone": 0, "skipped": 0, "unavailable": 0}
        # this run of the labeller: its labels carry it, and `u` undoes only those
        self.session = f"terminal-{uuid.uuid4().hex[:12]}"
        self.mine: list[int] = []

    def left(self) -> int:
        live = self.store.current()
        return sum(1 for it in self.items if it["sha256"] not in live)

    def load(self, item: dict) -> Optional[bytes]:
        """The queued file's bytes if they are still what the queue scored; else None, with a note."""
        path = self.proj.pool / item["path"]
        try:
            data = read_regular(path)
        except DataError as e:
            self.con.print(f"skipped: {item['path']} is no longer readable in the pool ({e})", markup=False)
            return None
        if sha256_bytes(data) != item["sha256"]:
            self.con.print(f"skipped: {item['path']} changed since the query; run `visionlab active query` again "
                           f"to queue its new content", markup=False)
            return None
        return data

    def show(self, item: dict, data: bytes) -> None:
        con, path = self.con, self.proj.pool / item["path"]
        con.rule(f"{len(self.items) - self.left() + 1}/{len(self.items)}  {item['path']}")
        if self.preview:
            try:
                face = half_blocks(data, self.width)
                frame = outlined(self.proj.path, item, 512) if item.get("context") else None
                if frame is None:
                    con.print(face, end="")
                else:  # the face enlarged, beside its photo or frame with the face outlined
                    buf = io.BytesIO()
                    frame.save(buf, "PNG")
                    grid = Table.grid(padding=(0, 2))
                    grid.add_row(face, half_blocks(buf.getvalue(), 2 * self.width, max_rows=self.width))
                    con.print(grid)
            except Exception as e:  # a preview must never stop labelling
                con.print(f"[yellow](no preview: {e})[/]")
        con.print(f"image: {path}", markup=False)
        if item.get("context"):
            con.print(f"from: {caption(item)}", markup=False)
        if "prediction" in item:
            con.print(f"model {self.queue.get('model_version')}: {item['prediction']} ({item['confidence']:.2f})")
        con.print("  ".join(f"[bold]{k}[/] {'not a face' if k == NOT_A_FACE_KEY else c}"
                            for k, c in self.keymap.items()) + "   [bold]u[/] undo  [bold]s[/] skip  [bold]q[/] quit")

    def undo_mine(self) -> Optional[object]:
        """Cancel this session's newest label that is still live (another session's labels are never touched)."""
        while self.mine:
            entry = self.mine.pop()
            try:
                return self.store.undo(entry, session=self.session)
            except DataError:  # already undone elsewhere (e.g. `visionlab active undo`): try the one before
                continue
        return None

    def run(self, reader: Iterator[Optional[str]]) -> dict:
        con, store = self.con, self.store
        live = store.current()
        if store.problems:
            warn(store.problems)
        todo = deque(it for it in self.items if it["sha256"] not in live)
        by_hash = {it["sha256"]: it for it in self.items}
        if not todo:
            con.print(f"nothing to label: all {len(self.items)} queued images have labels. Next: "
                      f"`visionlab active retrain {self.proj.path}`, then `query`", markup=False)
        while todo:
            item = todo[0]
            if item["sha256"] in store.current():  # labelled meanwhile, in another terminal
                todo.popleft()
                continue
            data = self.load(item)
            if data is None:
                self.done["unavailable"] += 1
                todo.popleft()
                continue
            self.show(item, data)
            key = next(reader, None)
            if key is None or key == "q":
                break
            key = key.lower()
            if key in self.keymap:
                try:
                    lab = store.add(self.proj.pool / item["path"], self.keymap[key], "human",
                                    self.queue.get("model_version"), sha256=sha256_bytes(data),
                                    session=self.session)
                except ChangedImageError as e:
                    con.print(f"not saved: {e}", markup=False)
                    self.done["unavailable"] += 1
                    todo.popleft()
                    continue
                except DataError as e:  # deleted after it was shown, a duplicate from another terminal, a full disk
                    con.print(f"not saved: {e}", markup=False)
                    if "no space" in str(e):
                        break
                    todo.popleft()
                    continue
                con.print(f"saved #{lab.id}: {item['path']} -> {lab.label}", markup=False)
                self.mine.append(lab.id)
                self.done["labelled"] += 1
                todo.popleft()
            elif key == "u":
                try:
                    undone = self.undo_mine()
                except DataError as e:
                    con.print(f"not undone: {e}", markup=False)
                    continue
                if undone is None:
                    con.print("nothing to undo in this session")
                    continue
                con.print(f"undone #{undone.id}: {undone.path} (was {undone.label})", markup=False)
                self.done["undone"] += 1
                todo.appendleft(by_hash.get(undone.sha256, {"path": undone.path, "sha256": undone.sha256}))
            elif key == "s":
                con.print(f"skipped: {item['path']}", markup=False)
                self.done["skipped"] += 1
                todo.popleft()
            else:
                con.print(f"unknown key {key!r}", markup=False)
        left = self.left()
        d = self.done
        extra = f", {d['unavailable']} changed or missing" if d["unavailable"] else ""
        con.print(f"{d['labelled']} labelled, {d['undone']} undone, {d['skipped']} skipped{extra}; "
                  f"{left} of {len(self.items)} queued images still without a label")
        return dict(d, left=left)
