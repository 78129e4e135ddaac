"""Wall time of a run by phase, so that the times a run reports add up to the time it took."""
from __future__ import annotations

import time
from typing import Optional


_entered: Optional[float] = None


def mark_entry(on: bool = True) -> None:
    """Called by the CLI's entry point: the first run's setup then counts the imports the command needed
    (torch, the models) as a user timing the command sees them. ``on=False`` (the command ended) forgets it."""
    global _entered
    _entered = time.perf_counter() if on else None


def _start() -> float:
    global _entered
    start, _entered = (_entered if _entered is not None else time.perf_counter()), None  # once per mark
    return start


class PhaseClock:
    """Wall time of a run by phase (setup, training, evaluation), measured back to back from one start so
    the phases add up to the total: ``lap(name)`` closes the phase that ran since the last lap."""

    PHASES = ("setup", "training", "evaluation")

    def __init__(self) -> None:
        self.start = self._last = _start()
        self.phases: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def lap(self, name: str, moved: Optional[dict[str, float]] = None) -> None:
        """Close phase ``name``; ``moved`` re-books seconds measured inside it to other phases."""
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + now - self._last
        for other, secs in (moved or {}).items():
            secs = min(secs, self.phases[name])
            self.phases[name] -= secs
            self.phases[other] = self.phases.get(other, 0.0) + secs
        self._last = now

    def seconds(self, running: Optional[str] = None) -> dict[str, float]:
        """metrics.json's times: ``setup_seconds``, ``train_seconds``, ``evaluation_seconds`` and
        ``total_seconds`` (their sum); ``running`` counts the phase in progress up to now."""
        phases = dict(self.phases)
        if running:
            phases[running] = phases.get(running, 0.0) + time.perf_counter() - self._last
        keys = {"setup": "setup_seconds", "training": "train_seconds", "evaluation": "evaluation_seconds"}
        out = {keys[p]: round(phases.get(p, 0.0), 2) for p in self.PHASES}
        out["total_seconds"] = round(sum(phases.get(p, 0.0) for p in self.PHASES), 2)
        return out

    def summary(self, running: Optional[str] = None) -> dict[str, str]:
        """The report's rows of the same times (the one in progress: up to the page being written)."""
        s = self.seconds(running)
        mark = " (until this report)"
        return {"setup s (data, features)": f"{s['setup_seconds']:.1f}", "training s": f"{s['train_seconds']:.1f}",
                "evaluation s" + (mark if running == "evaluation" else ""): f"{s['evaluation_seconds']:.1f}",
                "total s" + (mark if running else ""): f"{s['total_seconds']:.1f}"}
