"""Terminal labelling: one queued image at a time, a colour preview drawn with half-block characters, one key
per decision. Keys: ``1``-``9`` (then letters) pick a class, ``u`` undoes the last label, ``s`` skips, ``q``
quits. A label is fsync'd to the store before the next image shows, so quitting, closing the terminal or a
kill loses nothing that was confirmed with "saved".
"""
from __future__ import annotations

import os
import string
import sys
from collections import deque
from typing import Iterable, Iterator, Optional

import numpy as np
from rich.console import Console
from rich.style import Style
from rich.text import Text

from .session import Project

RESERVED = {"u": "undo", "s": "skip", "q": "quit"}


def class_keys(classes: list[str]) -> dict[str, str]:
    """``{"1": first class, ...}``: digits 1-9, then lower-case letters other than u/s/q."""
    keys = [str(i) for i in range(1, 10)] + [c for c in string.ascii_lowercase if c not in RESERVED]
    if len(classes) > len(keys):
        raise ValueError(f"the labelling UI has keys for {len(keys)} classes, the project has {len(classes)}")
    return dict(zip(keys, classes))


def half_blocks(path: str | os.PathLike, width: int = 32, max_rows: int = 24) -> Text:
    """The image as ``width`` columns of '▀': foreground colour is the upper pixel, background the lower."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
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
    """Single key presses: unbuffered on a terminal, else characters from stdin (blank ones skipped)."""
    if sys.stdin.isatty():
        import termios
        import tty

        fd = sys.stdin.fileno()
        while True:
            old = termios.tcgetattr(fd)
            try:
                tty.setcbreak(fd)
                ch = os.read(fd, 1).decode(errors="replace")
            except KeyboardInterrupt:
                ch = "q"
            finally:
                termios.tcsetattr(fd, termios.TCSADRAIN, old)
            yield ch if ch else None
    else:
        while True:
            ch = sys.stdin.read(1)
            if not ch:
                yield None
            elif not ch.isspace():
                yield ch


def run_labeller(proj: Project, preview: bool = True, width: int = 32, keys: Optional[Iterable[str]] = None,
                 console: Optional[Console] = None) -> dict:
    from .loop import load_queue

    con = console or Console(highlight=False)
    queue = load_queue(proj)
    store = proj.store
    keymap = class_keys(proj.classes)
    by_hash = {it["sha256"]: it for it in queue["items"]}
    live = store.current()
    todo = deque(it for it in queue["items"] if it["sha256"] not in live)
    total = len(queue["items"])
    done = {"labelled": 0, "undone": 0, "skipped": 0}
    reader = iter(keys) if keys is not None else terminal_keys()
    legend = "  ".join(f"[bold]{k}[/] {c}" for k, c in keymap.items()) + \
        "   [bold]u[/] undo  [bold]s[/] skip  [bold]q[/] quit"
    if not todo:
        con.print(f"nothing to label: all {total} queued images have labels. Next: `visionlab active retrain "
                  f"{proj.path}` then `query`")
    while todo:
        item = todo[0]
        if item["sha256"] in store.current():  # labelled meanwhile (another terminal)
            todo.popleft()
            continue
        labelled_now = sum(1 for it in queue["items"] if it["sha256"] in store.current())
        path = proj.pool / item["path"]
        con.rule(f"{labelled_now + 1}/{total}  {item['path']}")
        if preview:
            try:
                con.print(half_blocks(path, width), end="")
            except Exception as e:  # a preview must never stop labelling
                con.print(f"[yellow](no preview: {e})[/]")
        con.print(f"image: {path}", highlight=False, markup=False)
        if "prediction" in item:
            con.print(f"model {queue.get('model_version')}: {item['prediction']} ({item['confidence']:.2f})",
                      highlight=False)
        con.print(legend)
        key = next(reader, None)
        if key is None or key == "q":
            break
        key = key.lower()
        if key in keymap:
            lab = store.add(path, keymap[key], "human", queue.get("model_version"), sha256=item["sha256"])
            con.print(f"saved #{lab.id}: {item['path']} -> {lab.label}", highlight=False, markup=False)
            done["labelled"] += 1
            todo.popleft()
        elif key == "u":
            undone = store.undo(source="human")
            if undone is None:
                con.print("nothing to undo")
                continue
            con.print(f"undone #{undone.id}: {undone.path} (was {undone.label})", highlight=False, markup=False)
            done["undone"] += 1
            back = by_hash.get(undone.sha256, {"path": undone.path, "sha256": undone.sha256})
            todo.appendleft(back)
        elif key == "s":
            con.print(f"skipped: {item['path']}", highlight=False, markup=False)
            done["skipped"] += 1
            todo.popleft()
        else:
            con.print(f"unknown key {key!r}")
    left = sum(1 for it in queue["items"] if it["sha256"] not in store.current())
    con.print(f"{done['labelled']} labelled, {done['undone']} undone, {done['skipped']} skipped; "
              f"{left} of {total} queued images still without a label")
    return dict(done, left=left)
