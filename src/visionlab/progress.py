"""Progress shared by long work (data decoding, frozen features, epochs, the report, export, detection, studies).

``progress()`` is rich's bar with an ETA in a terminal. Where stderr is not a terminal (``> log 2>&1``, CI, a
notebook's captured stream) rich draws nothing until the end, so ``progress()`` returns a ``LineProgress``
instead: the same API, but each task prints one plain line when it starts, at most every
``VISIONLAB_PROGRESS_SECONDS`` (default 10) while it runs, and when it ends. ``disable=True`` (``--quiet``)
prints nothing in either case.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Optional

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

# soft_wrap: a line is never cut at 80 columns where stderr is a file or a pipe (a path broken in two cannot be
# copied or grepped); a terminal wraps it on screen by itself
console = Console(stderr=True, soft_wrap=True)


def say(word: str, text: str, style: str = "yellow") -> None:
    """One stderr line: ``word`` in ``style``, then ``text`` as it is (escaped: a "[" in a file's name is part of
    the name, not rich markup)."""
    console.print(f"[{style}]{word}[/] {escape(text)}", highlight=False)


def line_interval() -> float:
    """Seconds between two plain progress lines of one task (``VISIONLAB_PROGRESS_SECONDS``, default 10)."""
    try:
        return max(0.0, float(os.environ.get("VISIONLAB_PROGRESS_SECONDS", "10")))
    except ValueError:
        return 10.0


def _clock(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class LineProgress(Progress):
    """rich's Progress for a stream that is not a terminal: no live bar (rich would draw it only at the end);
    each task says where it is in one plain line at its start, every ``every`` seconds and at its end.

    The bookkeeping (completed, elapsed, speed, time remaining) is rich's own; only the drawing differs. A
    heartbeat thread repeats a task's line when a long step leaves it without news for ``every`` seconds.
    """

    def __init__(self, *columns: Any, every: Optional[float] = None, **kwargs: Any) -> None:
        kwargs["disable"] = True  # rich's live display off; lines are printed here instead
        super().__init__(*columns, **kwargs)
        self.every = line_interval() if every is None else every
        self._last: dict[TaskID, float] = {}
        self._said: dict[TaskID, tuple] = {}  # (completed, info) of the task's last line: no line repeats it
        self._ended: set[TaskID] = set()
        self._stop_beat = threading.Event()
        self._beat: Optional[threading.Thread] = None

    def start(self) -> None:
        super().start()
        if self.every > 0:
            self._beat = threading.Thread(target=self._heartbeat, name="progress-lines", daemon=True)
            self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop_beat.wait(min(1.0, self.every)):
            with self._lock:
                quiet = [t for t in self._tasks if t not in self._ended
                         and time.monotonic() - self._last.get(t, 0.0) >= self.every]
            for task_id in quiet:
                self._line(task_id)

    def _line(self, task_id: TaskID, event: str = "") -> None:
        task = self._tasks[task_id]
        done, total = task.completed, task.total
        info = str(task.fields.get("info", "") or "")
        if event == "start":
            count = f" {int(total)} step{'' if int(total) == 1 else 's'}" if total else ""
            text = f"{task.description}: started{count}"
        elif event == "end":
            count = f"{int(done)}/{int(total)} " if total else ""
            text = f"{task.description}: done {count}in {_clock(task.elapsed)}"
        else:
            count = f"{int(done)}/{int(total)} ({100 * done / total:.0f}%)" if total else f"{int(done)}"
            eta = f", eta {_clock(task.time_remaining)}" if total else ""
            text = f"{task.description}: {count}, {_clock(task.elapsed)} elapsed{eta}"
        if info and event != "start":
            text += f" - {info}"
        self._last[task_id] = time.monotonic()
        self._said[task_id] = (done, info)
        console.print(f"[{time.strftime('%H:%M:%S')}] {text}", markup=False, highlight=False, soft_wrap=True)

    def add_task(self, description: str, start: bool = True, total: Optional[float] = 100.0, completed: int = 0,
                 visible: bool = True, **fields: Any) -> TaskID:
        task_id = super().add_task(description, start, total, completed, visible, **fields)
        self._line(task_id, "start")
        return task_id

    def _maybe(self, task_id: TaskID) -> None:
        task = self._tasks[task_id]
        if task_id in self._ended:
            return
        if task.total is not None and task.completed >= task.total:
            self._ended.add(task_id)
            self._line(task_id, "end")
        elif (time.monotonic() - self._last.get(task_id, 0.0) >= self.every
              and self._said.get(task_id) != (task.completed, str(task.fields.get("info", "") or ""))):
            self._line(task_id)

    def update(self, task_id: TaskID, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(task_id, **kwargs)
        self._maybe(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._maybe(task_id)

    def stop(self) -> None:
        """Each task not yet said to be done (stopped early, no total) ends with its last state."""
        self._stop_beat.set()
        if self._beat is not None:
            self._beat.join()
        for task_id in list(self._tasks):
            if task_id not in self._ended:
                self._ended.add(task_id)
                self._line(task_id, "end")
        super().stop()


def progress(disable: bool = False, transient: bool = False) -> Progress:
    """A progress display with ETA: a rich bar in a terminal, plain periodic lines otherwise, nothing when
    ``disable`` (``--quiet``)."""
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    if not disable and not console.is_terminal:
        return LineProgress(*columns, console=console)
    return Progress(*columns, console=console, disable=disable, transient=transient)


class Steps:
    """A few named steps of one phase (the report: predictions, threshold, plots, Grad-CAM, page) on one
    progress task: ``with Steps("report", 5, quiet) as s: s.next("plots"); ...``."""

    def __init__(self, name: str, total: int, quiet: bool = False) -> None:
        self.name, self.total, self.quiet = name, total, quiet
        self._bar: Optional[Progress] = None
        self._task: Optional[TaskID] = None
        self._done = 0

    def __enter__(self) -> "Steps":
        self._bar = progress(disable=self.quiet)
        self._bar.__enter__()
        self._task = self._bar.add_task(self.name, total=self.total, info="")
        return self

    def next(self, what: str) -> None:
        """Step ``what`` begins (the one before it is done)."""
        assert self._bar is not None and self._task is not None
        self._bar.update(self._task, completed=self._done, info=what)
        self._done += 1

    def __exit__(self, *exc: Any) -> None:
        assert self._bar is not None and self._task is not None
        if exc[0] is None:
            self._bar.update(self._task, completed=self.total, info="")
        self._bar.__exit__(*exc)
