"""Alerts: rules over the faces of each frame (``without>=1``: a face without a mask; ``mask_rate<0.8/60s``: the
mask rate of the last 60 s below 80%) that, when they hold, send an event to sinks: a command (the event JSON on
its stdin) or a webhook (the event JSON POSTed to a URL). A rule fires at most once per cool-down.

Sending never blocks the frame loop: events go into a bounded queue that one worker thread empties; when the
queue is full (a sink far slower than the events) the event is dropped and counted, not waited for.
"""
from __future__ import annotations

import json
import operator
import queue
import re
import shlex
import subprocess
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from ..errors import ConfigError
from ..registry import Registry
from .summary import count_key

METRICS = ("faces", "with", "without", "incorrect", "unsure", "mask_rate")
_OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, ">": operator.gt, "<": operator.lt}
_RULE = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|==|>|<)\s*([0-9]*\.?[0-9]+)\s*(?:/\s*([0-9]*\.?[0-9]+)\s*s)?\s*$")
_HELP = ("write METRIC OP NUMBER, optionally /SECONDSs for a window, e.g. 'without>=1' or 'mask_rate<0.8/60s'; "
         f"metrics: {', '.join(METRICS)}; ops: >=, >, <=, <, ==")
QUEUE_SIZE = 64
EVENTS_KEPT = 100  # the latest events a monitor keeps (a stream that runs for days: the counts are kept, not all)
SEND_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Rule:
    """``metric op value`` over one frame (``window`` None) or over the frames of the last ``window`` seconds.
    Counts are face-frames (as in summary.csv); ``mask_rate`` is with / (with + without + incorrect) and a
    window or frame without such a face does not evaluate."""

    text: str
    metric: str
    op: str
    value: float
    window: Optional[float] = None

    def holds(self, counts: dict) -> Optional[float]:
        """The metric's value when the rule holds for ``counts``, else None."""
        if self.metric == "mask_rate":
            n = counts.get("with", 0) + counts.get("without", 0) + counts.get("incorrect", 0)
            if n == 0:
                return None
            v: float = counts.get("with", 0) / n
        else:
            v = counts.get(self.metric, 0)
        return v if _OPS[self.op](v, self.value) else None


def parse_rule(text: str) -> Rule:
    """A ``Rule`` from its text; a ``ConfigError`` naming --alert and what to write otherwise."""
    m = _RULE.match(str(text).lower())
    if m is None:
        raise ConfigError(f"--alert {text!r} is not a rule; {_HELP}")
    metric, op, value, window = m.groups()
    if metric not in METRICS:
        raise ConfigError(f"--alert {text!r}: unknown metric {metric!r}; {_HELP}")
    if window is not None and float(window) <= 0:
        raise ConfigError(f"--alert {text!r}: the window must be more than 0 s; {_HELP}")
    return Rule(str(text).strip(), metric, op, float(value), float(window) if window is not None else None)


# ---------------------------------------------------------------- sinks

Sink = Callable[[dict], None]
ALERT_SINKS: Registry[Callable[[str], Sink]] = Registry("alert sink")


@ALERT_SINKS.register("webhook")
def webhook(url: str) -> Sink:
    """POST the event as JSON to ``url`` (stdlib urllib: one small request needs no client library)."""
    def send(event: dict) -> None:
        req = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=SEND_TIMEOUT_S) as r:
            r.read()
    return send


@ALERT_SINKS.register("command")
def command(cmd: str) -> Sink:
    """Run ``cmd`` (split as a shell would, but no shell) with the event JSON on its stdin; a non-zero exit is a
    failure."""
    argv = shlex.split(cmd)
    if not argv:
        raise ConfigError("--alert-to '' is empty; give a URL (http://...) or a command")

    def send(event: dict) -> None:
        subprocess.run(argv, input=json.dumps(event) + "\n", text=True, check=True, timeout=SEND_TIMEOUT_S,
                       capture_output=True)
    return send


def sink_for(target: str) -> tuple[str, Sink]:
    """The sink kind and sender for an ``--alert-to`` target: an http(s) URL is a webhook, anything else a
    command."""
    kind = "webhook" if str(target).lower().startswith(("http://", "https://")) else "command"
    return kind, ALERT_SINKS.get(kind)(target)


# ---------------------------------------------------------------- the monitor


def check_alerts(rules: Sequence[str], targets: Sequence[str], need_target: bool = True) -> list[Rule]:
    """The parsed rules, after checking that each rule parses and has somewhere to go (before a run writes
    anything; ``need_target`` False: the caller shows the events itself, as the service's page does);
    ``ConfigError`` otherwise."""
    parsed = [parse_rule(r) for r in rules]
    if parsed and not targets and need_target:
        raise ConfigError("--alert needs --alert-to: a URL to POST events to, or a command to run")
    if targets and not parsed:
        raise ConfigError("--alert-to needs at least one --alert rule, e.g. --alert 'without>=1'")
    for t in targets:
        sink_for(t)
    return parsed



class AlertMonitor:
    """Evaluates ``rules`` on each frame's faces (``observe``) and hands each event to a worker thread that sends
    it to every target. ``cooldown``: seconds (on the clock ``observe`` is given) before a rule can fire again.
    ``say(line)`` reports a failed send (the first per target) and ``close`` waits briefly for queued events.
    ``need_target`` False: rules without a target are fine (the service keeps the events for its page).
    ``observe`` may be called from several threads (the service's inference threads): one lock covers it.
    """

    def __init__(self, rules: Sequence[str], targets: Sequence[str], cooldown: float = 60.0, *, source: str = "",
                 say: Callable[[str], None] = print, need_target: bool = True) -> None:
        self.rules = check_alerts(rules, targets, need_target)
        self.sinks = [(str(t), *sink_for(t)) for t in targets]
        self.cooldown, self.source, self.say = float(cooldown), source, say
        # the latest EVENTS_KEPT events, in order (also when a send failed or was dropped); each has an ``id``,
        # 1, 2, ... over the whole run, so a reader can ask for the ones after the last it saw
        self.events: deque = deque(maxlen=EVENTS_KEPT)
        self.fired = 0
        self._by_rule: dict[str, int] = {r.text: 0 for r in self.rules}
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._last: dict[str, float] = {}
        self._windows: dict[str, deque] = {r.text: deque() for r in self.rules if r.window is not None}
        self._warned: set[str] = set()
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self._worker = threading.Thread(target=self._work, name="visionlab-alerts", daemon=True)
        self._worker.start()

    def observe(self, faces: Sequence[dict], t: float, frame: Optional[int] = None) -> list[dict]:
        """Count one frame's faces (``FaceResult.to_dict()`` dicts) at time ``t`` (seconds) and fire the rules
        that hold and are out of their cool-down; returns the events fired (already queued, never waited for)."""
        counts: dict = {"faces": len(faces)}
        for f in faces:
            k = count_key(f["label"])
            counts[k] = counts.get(k, 0) + 1
        with self._lock:
            return self._observe(counts, t, frame)

    def _observe(self, counts: dict, t: float, frame: Optional[int]) -> list[dict]:
        fired = []
        for rule in self.rules:
            c = counts
            if rule.window is not None:
                win = self._windows[rule.text]
                win.append((t, counts))
                while win and win[0][0] <= t - rule.window:
                    win.popleft()
                c = {}
                for _, fc in win:
                    for k, v in fc.items():
                        c[k] = c.get(k, 0) + v
            value = rule.holds(c)
            if value is None:
                continue
            last = self._last.get(rule.text)
            if last is not None and t - last < self.cooldown:
                continue
            self._last[rule.text] = t
            self.fired += 1
            self._by_rule[rule.text] += 1
            event = {"id": self.fired, "rule": rule.text, "value": value, "t": round(float(t), 3), "frame": frame,
                     "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "source": self.source,
                     "counts": {k: v for k, v in c.items() if v}}
            self.events.append(event)
            fired.append(event)
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                self.dropped += 1
        return fired

    def _work(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            for target, kind, send in self.sinks:
                try:
                    send(event)
                    self.sent += 1
                except Exception as e:  # noqa: BLE001 - any failure of a user's command or server is reported, not raised
                    self.failed += 1
                    if target not in self._warned:
                        self._warned.add(target)
                        self.say(f"alert {kind} {target} failed ({type(e).__name__}: {e}); later failures are "
                                 f"only counted")

    def close(self, timeout: float = SEND_TIMEOUT_S) -> None:
        """Let the worker send what is queued (at most ``timeout`` seconds), then stop it."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._worker.join(timeout)

    def recent(self, after: int = 0) -> list[dict]:
        """The kept events (the latest ``EVENTS_KEPT``) whose id is above ``after``, oldest first."""
        with self._lock:
            return [e for e in self.events if e["id"] > after]

    def summary(self) -> dict:
        return {"events": self.fired, "by_rule": dict(self._by_rule), "sent": self.sent, "failed": self.failed,
                "dropped": self.dropped, "cooldown": self.cooldown}
