"""Roll-over of a camera or stream's files, so a session that runs for days writes files of bounded size: time is
cut into periods of whole summary bins (``Periods``), and when one ends its files (detections.jsonl, summary.csv,
the annotated video) are kept under names carrying the period's start (``keep_as``) while the plain names start
afresh. Nothing is ever deleted: the user decides what to keep; each file holds one period at most.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path


class Periods:
    """Periods of ``seconds`` rounded to whole bins of ``bin_seconds`` (at least one bin), counted from the run's
    start; ``wall0`` is the run's start on the wall clock (``time.time()``), for the names."""

    def __init__(self, seconds: float, bin_seconds: float, wall0: float) -> None:
        self.bin_seconds = float(bin_seconds)
        self.bins = max(1, round(float(seconds) / self.bin_seconds))
        self.seconds = self.bins * self.bin_seconds
        self.wall0 = float(wall0)

    def index(self, t: float) -> int:
        """The period of time ``t`` (seconds since the start), on the same bin edges as ``VideoSummary``."""
        return int(math.floor(t / self.bin_seconds + 1e-9)) // self.bins

    def stamp(self, k: int) -> str:
        """Period ``k``'s start in local time, for a file name: 20261206-140000 (with milliseconds,
        20261206-140000.400, for periods under a second), so that the names sort in time order."""
        t = self.wall0 + k * self.seconds
        text = time.strftime("%Y%m%d-%H%M%S", time.localtime(t))
        return text if self.seconds >= 1 else f"{text}.{int(t % 1 * 1000):03d}"


def keep_as(src: Path, name: Path, stamp: str) -> Path:
    """Move ``src`` (a finished file of this run's own folder) to ``<name's stem>-<stamp><name's suffix>`` beside
    it, never replacing a file: a name already there (two periods starting in one second) gets -2, -3, ...
    Returns the new path."""
    k = 1
    while True:
        dst = name.with_name(f"{name.stem}-{stamp}{'' if k == 1 else f'-{k}'}{name.suffix}")
        try:
            os.link(src, dst)  # fails when dst exists: no check-then-rename race
        except FileExistsError:
            k += 1
            continue
        except OSError:  # a file system without hard links: this run's own folder, so a checked rename will do
            if dst.exists():
                k += 1
                continue
            os.replace(src, dst)
            return dst
        src.unlink()
        return dst
