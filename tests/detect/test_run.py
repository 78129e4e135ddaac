"""run_detection's one FPS figure: frames processed per wall second, the same on the video overlay, in the returned
summary, in summary.json and on the command's last line; a single photo gets its time instead."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from visionlab.detect import run_detection
from visionlab.detect.pipeline import draw_results

PHOTOS = Path(__file__).resolve().parents[2] / "src" / "visionlab" / "assets" / "photos"
SIZE = (480, 320)


def _clip(path: Path, n: int) -> None:
    pic = cv2.resize(cv2.imread(str(PHOTOS / "pic1.jpeg")), SIZE)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, SIZE)
    for _ in range(n):
        w.write(pic)
    w.release()


def _overlay_value(annotated: np.ndarray) -> float:
    """The FPS figure drawn on a frame, read back by drawing every candidate 0.0 .. 300.0 on a black frame and
    matching the overlay's box pixel for pixel (the box covers what is under it, so only its text matters)."""
    blank = np.zeros_like(annotated)
    fscale = max(0.45, min(annotated.shape[:2]) / 900)  # draw_results' text scale
    hits = []
    for v in np.arange(0, 3000) / 10:
        (tw, th), base = cv2.getTextSize(f"{v:.1f} FPS", cv2.FONT_HERSHEY_SIMPLEX, fscale, 1)
        box = (slice(0, th + base + 11), slice(0, tw + 11))
        if np.array_equal(draw_results(blank, [], float(v))[box], annotated[box]):
            hits.append(round(float(v), 1))
    assert len(hits) == 1, hits
    return hits[0]


def test_one_fps_figure_for_overlay_summary_and_summary_json(tmp_path):
    clip = tmp_path / "door.mp4"
    n = 12
    _clip(clip, n)
    frames: list[np.ndarray] = []

    def slow(record, annotated):  # time outside the detector counts too: the rate is per wall second
        frames.append(annotated)
        time.sleep(0.05)

    s = run_detection(clip, None, tmp_path / "o", show_progress=False, quality="fast", on_frame=slow)
    assert s["processed"] == n and len(frames) == n
    assert abs(s["fps"] - n / s["seconds"]) <= 0.01 * s["fps"] + 0.01
    assert s["fps"] < 1 / 0.05  # the sleeps count: a detector-only rate would be above 20
    totals = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert totals["fps"] == s["fps"] and totals["source_fps"] == 10.0 and s["summary"]["fps"] == s["fps"]
    last = _overlay_value(frames[-1])
    # the last frame is drawn before its own 0.05 s sleep and the file's closing: a little above the final figure
    assert s["fps"] - 0.1 <= last <= s["fps"] * 1.25 + 0.1, (last, s["fps"])


def test_a_single_photo_has_its_time_and_no_fps(tmp_path):
    s = run_detection(PHOTOS / "pic1.jpeg", None, tmp_path / "o", show_progress=False)
    assert s["fps"] is None and s["seconds"] > 0
    p = subprocess.run([sys.executable, "-m", "visionlab", "detect", str(PHOTOS / "pic1.jpeg"), "--out",
                        str(tmp_path / "cli")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    line = next(x for x in p.stdout.splitlines() if x.startswith("1 image:"))
    assert "FPS" not in line and line.rstrip().endswith(" s")
    assert float(line.rsplit(" in ", 1)[1].split()[0]) > 0
