"""Alerts: rules parsed or refused in one line; events POSTed to a webhook on loopback (once per rule, not again
within the cool-down), a command sink, sending that never blocks the frame loop, and `run_detection --alert`
end to end on a clip of a bundled photo."""
from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import pytest

from visionlab.detect import run_detection
from visionlab.detect.alerts import AlertMonitor, parse_rule
from visionlab.errors import ConfigError

PHOTOS = Path(__file__).resolve().parents[2] / "src" / "visionlab" / "assets" / "photos"


class Hook:
    """A webhook receiver on 127.0.0.1 keeping every JSON body POSTed to it; ``delay`` seconds per request."""

    def __init__(self, delay: float = 0.0) -> None:
        self.bodies: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                hook.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def _face(label: str) -> dict:
    return {"box": [0, 0, 20, 20], "label": label}


def test_rules_parse_or_say_what_to_write():
    r = parse_rule("mask_rate < 0.8/60s")
    assert (r.metric, r.op, r.value, r.window) == ("mask_rate", "<", 0.8, 60.0)
    assert parse_rule("without>=1").window is None
    for bad, why in [("without", "not a rule"), ("masks>=1", "unknown metric"), ("faces>=1/0s", "more than 0")]:
        with pytest.raises(ConfigError, match=why):
            parse_rule(bad)
    with pytest.raises(ConfigError, match="--alert needs --alert-to"):
        AlertMonitor(["without>=1"], [])


def test_each_rule_fires_once_then_not_again_within_the_cooldown(hook):
    mon = AlertMonitor(["without>=1", "faces>=2", "mask_rate<0.5/2s"], [hook.url], cooldown=10.0, source="cam")
    masked, bare = _face("WithMask"), _face("WithoutMask")
    for i in range(50):  # 5 s at 10 FPS: an unmasked face in every frame, a masked one in the first half
        mon.observe([bare, masked] if i < 25 else [bare], t=i / 10, frame=i)
    mon.observe([masked, masked], t=9.9, frame=99)  # inside the cool-down: faces>=2 holds but does not fire
    mon.observe([bare, bare], t=10.5, frame=105)  # past it: both count rules fire again
    mon.close()
    rules = [b["rule"] for b in hook.bodies]
    assert sorted(rules) == sorted(["without>=1", "faces>=2", "without>=1", "faces>=2", "mask_rate<0.5/2s"])
    first = {b["rule"]: b for b in hook.bodies[::-1]}  # the first event of each rule
    assert first["without>=1"]["t"] == 0.0 and first["without>=1"]["value"] == 1
    assert first["faces>=2"]["t"] == 0.0 and first["faces>=2"]["source"] == "cam"
    # half the faces of the first 2.5 s are masked: the 2 s window drops below 50% once masked ones leave it
    assert 2.5 <= first["mask_rate<0.5/2s"]["t"] <= 2.6 and first["mask_rate<0.5/2s"]["value"] < 0.5
    assert mon.summary()["by_rule"] == {"without>=1": 2, "faces>=2": 2, "mask_rate<0.5/2s": 1}
    assert mon.summary()["sent"] == 5 and mon.summary()["failed"] == 0


def test_a_slow_sink_never_blocks_the_frames_and_a_command_gets_the_event(tmp_path):
    slow = Hook(delay=1.0)
    log = tmp_path / "events.jsonl"
    cmd = f"{sys.executable} -c \"import sys; open({str(log)!r}, 'a').write(sys.stdin.read())\""
    try:
        mon = AlertMonitor(["without>=1"], [slow.url, cmd], cooldown=0.0)
        t0 = time.perf_counter()
        for i in range(5):
            mon.observe([_face("WithoutMask")], t=float(i), frame=i)
        assert time.perf_counter() - t0 < 0.5  # 5 events to a 1 s server: queued, not waited for
        mon.close(timeout=20)
    finally:
        slow.close()
    assert len(slow.bodies) == 5
    assert [json.loads(x)["frame"] for x in log.read_text().splitlines()] == [0, 1, 2, 3, 4]


def test_a_failing_sink_is_said_once_and_counted(capsys):
    lines = []
    mon = AlertMonitor(["faces>=1"], ["http://127.0.0.1:9/nothing-listens"], cooldown=0.0, say=lines.append)
    for i in range(3):
        mon.observe([_face("WithMask")], t=float(i))
    mon.close()
    assert mon.summary()["failed"] == 3 and len(lines) == 1 and "failed" in lines[0]


def test_detect_with_alerts_end_to_end(tmp_path, hook):
    pic = cv2.resize(cv2.imread(str(PHOTOS / "pic1.jpeg")), (480, 320))
    clip = tmp_path / "door.mp4"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (480, 320))
    for _ in range(12):  # 1.2 s
        w.write(pic)
    w.release()
    s = run_detection(clip, None, tmp_path / "a", show_progress=False, quality="fast", save_frames=False,
                      alert=["faces>=1"], alert_to=[hook.url], alert_cooldown=0.5)
    assert s["faces"] >= 12  # faces in every frame
    # the clip's own clock: events at 0.0, 0.5 and 1.0 s, whatever the processing speed
    assert [b["t"] for b in hook.bodies] == [0.0, 0.5, 1.0] and s["alerts"]["events"] == 3
    assert [b["frame"] for b in hook.bodies] == [0, 5, 10] and s["alerts"]["sent"] == 3
    with pytest.raises(ConfigError, match="--alert 'nonsense'"):
        run_detection(clip, None, tmp_path / "b", show_progress=False, alert=["nonsense"], alert_to=[hook.url])
    assert not (tmp_path / "b").exists()
