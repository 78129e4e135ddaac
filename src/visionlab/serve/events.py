"""The service's alerts: the ``--alert`` rules of ``visionlab serve`` evaluated on every image it detects (the same
rules and ``AlertMonitor`` as `visionlab detect`, detect/alerts.py), the cool-down on the service's wall clock,
events sent to any ``--alert-to`` targets and the latest kept for ``GET /v1/events`` and the page's events panel.
"""
from __future__ import annotations

import sys
import time
from typing import Optional, Sequence

from fastapi import FastAPI, Query

from ..detect.alerts import AlertMonitor
from ..detect.config import DetectConfig
from .schemas import AlertEvent, ErrorBody, EventsOut


class ServiceAlerts:
    """An ``AlertMonitor`` over the service's images (``None`` monitor without rules: nothing is evaluated)."""

    def __init__(self, config: DetectConfig) -> None:
        self.started = time.perf_counter()
        self.monitor: Optional[AlertMonitor] = None
        if config.alert:  # the page shows the events, so rules without --alert-to are fine here
            self.monitor = AlertMonitor(config.alert, config.alert_to, config.alert_cooldown, source="serve",
                                        say=lambda line: print(f"visionlab serve: warning: {line}", file=sys.stderr,
                                                               flush=True),
                                        need_target=False)
        self.cooldown = config.alert_cooldown

    def observe(self, faces: Sequence[dict]) -> None:
        """Evaluate the rules on one image's faces (``FaceResult.to_dict()`` dicts), now."""
        if self.monitor is not None:
            self.monitor.observe(faces, time.perf_counter() - self.started)

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.close(timeout=2.0)

    def out(self, after: int = 0) -> EventsOut:
        m = self.monitor
        if m is None:
            return EventsOut(rules=[], cooldown=self.cooldown, total=0, by_rule={}, sent=0, failed=0, events=[])
        s = m.summary()
        return EventsOut(rules=[r.text for r in m.rules], cooldown=self.cooldown, total=s["events"],
                         by_rule=s["by_rule"], sent=s["sent"], failed=s["failed"],
                         events=[AlertEvent(**e) for e in m.recent(after)])


def add_event_routes(app: FastAPI, alerts: ServiceAlerts) -> None:
    """``GET /v1/events``: the rules and the latest events."""
    @app.get("/v1/events", response_model=EventsOut, tags=["detection"],
             responses={422: {"model": ErrorBody, "description": "invalid request"}})
    async def events(after: int = Query(0, ge=0, description="only events whose id is above this (the last id a "
                                                             "client saw)")) -> EventsOut:
        """The service's --alert rules and their latest events (at most 100), evaluated on every image POSTed to
        /v1/predict."""
        return alerts.out(after)
