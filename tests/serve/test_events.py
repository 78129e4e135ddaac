"""Alerts in the service: `visionlab serve --alert RULE` evaluates the rules of `detect --alert` on every image it
detects, fires each once per cool-down (the service's wall time), sends the events to --alert-to targets and keeps
the latest for GET /v1/events and the page's events panel. A real server on loopback, the bundled classifier
(pic1: two faces, both with a mask) and, for the page, headless Chromium."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import start_server
from .test_browser import CHROMIUM, FLAGS, SHOTS, wait_until

COOLDOWN = 3.0
RULES = ["faces>=2", "mask_rate<0.5"]  # pic1 holds the first (2 faces) and never the second (both masked)


@pytest.fixture(scope="module")
def alert_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-alerts")
    sink = tmp / "events.jsonl"
    # a command sink: the event JSON arrives on its stdin and is appended to a file
    cmd = f"{sys.executable} -c \"import sys; open({str(sink)!r}, 'a').write(sys.stdin.read())\""
    args = [a for r in RULES for a in ("--alert", r)] + ["--alert-to", cmd, "--alert-cooldown", str(COOLDOWN)]
    srv = start_server(args, tmp / "server.log")
    srv.sink = sink
    yield srv
    srv.stop()


def _post(c, photo: Path) -> dict:
    with open(photo, "rb") as f:
        r = c.post("/v1/predict", files={"file": (photo.name, f, "image/jpeg")})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_rule_fires_once_per_cooldown_and_reaches_the_sink(alert_server, scene):
    with alert_server.client() as c:
        before = c.get("/v1/events").json()
        assert before["rules"] == RULES and before["cooldown"] == COOLDOWN
        t0 = time.monotonic()
        assert len(_post(c, scene)["faces"]) == 2
        t1 = time.monotonic()  # the event fired between t0 and t1
        first = c.get("/v1/events").json()
        assert first["total"] == before["total"] + 1
        event = first["events"][-1]
        assert event["rule"] == "faces>=2" and event["value"] == 2 and event["source"] == "serve"
        assert event["counts"]["faces"] == 2 and event["counts"]["with"] == 2
        _post(c, scene)
        if time.monotonic() - t0 < COOLDOWN:  # the second image came within the cool-down: no event
            assert c.get("/v1/events").json()["total"] == first["total"]
        time.sleep(max(0.0, COOLDOWN - (time.monotonic() - t1)) + 0.1)
        _post(c, scene)  # after the cool-down: the rule fires again
        now = c.get("/v1/events").json()
        assert now["total"] == first["total"] + 1 and now["by_rule"] == {"faces>=2": now["total"], "mask_rate<0.5": 0}
        again = now["events"][-1]
        assert again["id"] == event["id"] + 1 and again["t"] - event["t"] >= COOLDOWN
        # ?after= gives only the newer events
        assert [e["id"] for e in c.get("/v1/events", params={"after": event["id"]}).json()["events"]] == [again["id"]]
        assert c.get("/v1/events", params={"after": -1}).status_code == 422
        deadline = time.monotonic() + 20  # the sink runs in the monitor's worker thread, not in the request
        while time.monotonic() < deadline and c.get("/v1/events").json()["sent"] < now["total"]:
            time.sleep(0.1)
        sent = [json.loads(ln) for ln in alert_server.sink.read_text().splitlines()]
        assert [e["id"] for e in sent][-2:] == [event["id"], again["id"]] and sent[-1]["rule"] == "faces>=2"
        assert "/v1/events" in c.get("/openapi.json").json()["paths"]


def test_without_rules_the_service_has_no_events(client):
    body = client.get("/v1/events").json()
    assert body["rules"] == [] and body["events"] == [] and body["total"] == 0


def test_a_bad_rule_stops_the_service_with_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "visionlab", "serve", "--alert", "masks>=1", "--port", "0"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "--alert 'masks>=1': unknown metric 'masks'" in p.stderr and "Traceback" not in p.stderr + p.stdout


def test_the_page_shows_the_events(alert_server, scene, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium) for the browser test")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=str(CHROMIUM),
                                                   headless=True, args=FLAGS, viewport={"width": 1280, "height": 900})
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.set_default_timeout(60_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(alert_server.url + "/")
            wait_until(page, "() => !document.getElementById('events-card').hidden")
            assert "faces>=2, mask_rate<0.5" in page.inner_text("#events-meta")
            time.sleep(COOLDOWN + 0.1)  # out of any earlier event's cool-down: this upload fires
            with alert_server.client() as c:
                total = c.get("/v1/events").json()["total"]
            page.set_input_files("#file", str(scene))
            wait_until(page, "(n) => document.getElementById('events-card').dataset.total === String(n)", total + 1)
            items = page.locator("#events li")
            assert items.count() == min(total + 1, 100)
            newest = items.first
            assert newest.get_attribute("data-id") == str(total + 1) and "new" in newest.get_attribute("class")
            assert "faces>=2" in newest.inner_text() and "faces 2" in newest.inner_text()
            page.screenshot(path=str(SHOTS / "visionlab-serve-events.png"), full_page=True)
            assert not [e for e in errors if "favicon" not in e], errors
        finally:
            ctx.close()
