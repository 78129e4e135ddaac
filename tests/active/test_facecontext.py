"""Labelling a face pool with context: the frame with the face outlined, the terminal UI showing both, keys
for every class plus n (not a face), skip and undo; the store is the same store."""
from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image
from rich.console import Console

from visionlab.active import loop
from visionlab.active.facecontext import OUTLINE, caption, frame_path, outlined, outlined_jpeg
from visionlab.active.session import Project, load_queue
from visionlab.active.ui import class_keys, run_labeller


def _amber(a: np.ndarray) -> np.ndarray:
    return (np.abs(a.astype(int) - np.array(OUTLINE)).sum(-1) < 60)


def test_outline_surrounds_the_face(face_project):
    q = loop.query(face_project, k=3)
    item = q["items"][0]
    im = outlined(face_project, item, 4096)
    frame = Image.open(frame_path(face_project, item))
    assert im.size == frame.size
    a = np.asarray(im)
    x, y, w, h = item["context"]["box"]
    amber = _amber(a)
    assert amber.sum() > 2 * (w + h)  # a drawn rectangle ...
    ys, xs = np.nonzero(amber)
    assert xs.min() < x and xs.max() > x + w and ys.min() < y and ys.max() > y + h  # ... around the box
    assert not _amber(np.asarray(frame.convert("RGB"))).sum() > amber.sum() / 2
    small = Image.open(io.BytesIO(outlined_jpeg(face_project, item, 300)))
    assert max(small.size) == 300
    assert caption(item).startswith(item["context"]["source"])


def test_frame_outside_the_frames_folder_is_refused(face_project):
    item = {"context": {"frame": "../../etc/passwd", "box": [0, 0, 1, 1]}}
    assert frame_path(face_project, item) is None and outlined(face_project, item) is None
    item = {"context": {"frame": "labels.jsonl", "box": [0, 0, 1, 1]}}
    assert frame_path(face_project, item) is None


def test_keys_for_every_class_and_n_for_not_a_face():
    keys = class_keys(["MaskWornIncorrectly", "WithMask", "WithoutMask", "NotAFace"])
    assert keys == {"1": "MaskWornIncorrectly", "2": "WithMask", "3": "WithoutMask", "4": "NotAFace", "n": "NotAFace"}
    assert "n" not in class_keys(["a", "b"])


def test_terminal_labelling_with_context_undo_and_skip(face_project):
    q = loop.query(face_project, k=5)
    items = q["items"]
    con = Console(record=True, width=140, force_terminal=True, color_system="truecolor")
    done = run_labeller(Project(face_project), preview=True, width=16, keys=iter("2nu3s1q"), console=con)
    text = con.export_text()
    assert "from: " + caption(items[0]) in text and "n not a face" in text
    assert text.count("▀") > 16 * 8  # the face and its frame, side by side
    assert done == {"labelled": 4, "undone": 1, "skipped": 1, "unavailable": 0, "left": 2}
    live = {lab.sha256: lab.label for lab in Project(face_project).store.labels()}
    # 2 -> WithMask on the first; n -> NotAFace on the second, undone, then 3 -> WithoutMask; skip the third;
    # 1 -> MaskWornIncorrectly on the fourth
    assert live == {items[0]["sha256"]: "WithMask", items[1]["sha256"]: "WithoutMask",
                    items[3]["sha256"]: "MaskWornIncorrectly"}
    recs = [json.loads(x) for x in (face_project / "labels.jsonl").read_text().splitlines()]
    assert [r["op"] for r in recs] == ["label", "label", "undo", "label", "label"]
    assert recs[1]["label"] == "NotAFace" and recs[2]["ref"] == recs[1]["id"]
    assert load_queue(Project(face_project))["items"] == items
