"""The HTTP API against the real server: detection, model details, the documented error for each bad
upload (and the server still serving after it), the labelling queue and the concurrency limit."""
from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import threading
import time

import httpx
import pytest
from PIL import Image

from .conftest import CLASSES


def assert_error(r: httpx.Response, status: int, error: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error", "detail"}, body
    assert body["error"] == error, body
    assert body["detail"]


def test_predict_finds_and_labels_both_faces(client, scene):
    r = client.post("/v1/predict", files={"file": ("pic1.jpeg", scene.read_bytes(), "image/jpeg")},
                    params={"annotated": "true"})
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["width"], data["height"]) == (840, 549)
    assert len(data["faces"]) == 2
    for f in data["faces"]:
        x, y, w, h = f["box"]
        assert 0 <= x and 0 <= y and x + w <= 840 and y + h <= 549 and w > 50 and h > 50
        assert f["label"] in CLASSES + ["unsure"] and f["guess"] in CLASSES  # a 1-epoch model may well be unsure
        assert f["label"] in (f["guess"], "unsure")
        assert 0.5 <= f["confidence"] <= 1 and f["confidence"] == max(f["probs"].values())
        assert 0.7 <= f["detector_score"] <= 1
        assert set(f["probs"]) == set(CLASSES) and abs(sum(f["probs"].values()) - 1) < 1e-3
    # the two people stand side by side: one box on each half
    assert data["faces"][0]["box"][0] < 420 < data["faces"][1]["box"][0]
    assert set(data["timings"]) == {"queue_ms", "decode_ms", "detect_ms", "classify_ms", "total_ms"}
    annotated = Image.open(io.BytesIO(base64.b64decode(data["annotated_jpeg"])))
    assert annotated.format == "JPEG" and annotated.size == (840, 549)

    plain = client.post("/v1/predict", files={"file": ("pic1.jpeg", scene.read_bytes(), "image/jpeg")}).json()
    assert plain["annotated_jpeg"] is None
    assert [f["box"] for f in plain["faces"]] == [f["box"] for f in data["faces"]]


def test_model_and_health(client, run_dir):
    m = client.get("/v1/model").json()
    assert m["classes"] == CLASSES and m["image_size"] == 64 and m["model"] == "small_cnn"
    assert len(m["version"]) == 12 and int(m["version"], 16) >= 0
    assert m["metrics"]["test_acc"] == json.loads((run_dir / "metrics.json").read_text())["test_acc"]
    assert m["detector"]["name"] == "yunet" and m["detector"]["score_threshold"] == 0.7
    assert m["detector"]["model_file"] == "face_detection_yunet_2026may.onnx" and m["backend"] in ("onnx", "torch")
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["model_version"] == m["version"] and h["active_project"] is True


def test_page_and_its_assets_are_local(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in r.text and client.get(asset).status_code == 200
    assert "http://" not in r.text and "https://" not in r.text  # no CDN
    assert "cdn" not in client.get("/docs").text.lower()  # FastAPI's own docs page would load a CDN


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, scene):
    d = tmp_path_factory.mktemp("bad")
    big = d / "50mp.png"
    Image.new("RGB", (10_000, 5_000), (30, 90, 200)).save(big)  # 50 MP of one colour: a small file
    assert big.stat().st_size < 1_000_000
    jpeg = scene.read_bytes()
    return {"empty": b"", "text": b"hello, this is not an image\n", "truncated": jpeg[: len(jpeg) // 2],
            "50mp": big.read_bytes(), "garbage_jpeg": jpeg[:200] + bytes(range(256)) * 40}


@pytest.mark.parametrize("name,status,error", [
    ("empty", 415, "unsupported_media_type"),
    ("text", 415, "unsupported_media_type"),
    ("truncated", 400, "invalid_image"),
    ("garbage_jpeg", 400, "invalid_image"),
    ("50mp", 413, "image_too_large"),
])
def test_bad_upload_gets_documented_error_and_server_keeps_serving(client, server, bad_files, name, status, error):
    t0 = time.monotonic()
    r = client.post("/v1/predict", files={"file": (f"{name}.jpg", bad_files[name], "image/jpeg")})
    assert_error(r, status, error)
    assert time.monotonic() - t0 < 10  # the 50 MP header is refused before decoding, not after
    assert client.get("/health").status_code == 200 and server.alive()


def test_huge_body_is_refused_with_and_without_content_length(client, server):
    body = b"\xff\xd8" + bytes(11 * 2 ** 20)  # over the default 10 MiB cap
    r = client.post("/v1/predict", files={"file": ("huge.jpg", body, "image/jpeg")})
    assert_error(r, 413, "payload_too_large")

    def chunks():  # no Content-Length: the server counts bytes as they arrive
        yield b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        for _ in range(12):
            yield bytes(2 ** 20)
        yield b"\r\n--xx--\r\n"

    r = client.post("/v1/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xx"})
    assert_error(r, 413, "payload_too_large")
    assert client.get("/health").status_code == 200 and server.alive()


def test_request_errors_are_json(client):
    assert_error(client.post("/v1/predict"), 422, "invalid_request")  # no file field
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/v1/predict"), 405, "method_not_allowed")


# --- active learning -------------------------------------------------------------------------------------
def live_labels(project) -> dict[str, dict]:
    """sha256 -> live label record, replaying the store's undo records."""
    live = {}
    for line in (project / "labels.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["op"] == "label":
            live[rec["id"]] = rec
        else:
            live.pop(rec["ref"], None)
    return {r["sha256"]: r for r in live.values()}


def test_queue_label_duplicate_unknown_and_undo(client, project):
    q = client.get("/v1/queue/next").json()
    assert q["classes"] == CLASSES and q["keys"] == {"1": CLASSES[0], "2": CLASSES[1]}
    item = q["item"]
    img = client.get(item["image_url"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(img.content)).size[0] > 0

    # skip passes over an item without labelling it
    assert client.get("/v1/queue/next", params={"skip": item["id"]}).json()["item"]["id"] != item["id"]

    assert_error(client.post("/v1/labels", json={"id": item["id"], "label": "Nope"}), 422, "unknown_class")
    assert_error(client.post("/v1/labels", json={"id": "0" * 64, "label": CLASSES[0]}), 404, "not_in_queue")
    assert_error(client.post("/v1/labels", json={"id": "../../etc/passwd", "label": CLASSES[0]}), 422,
                 "invalid_request")

    r = client.post("/v1/labels", json={"id": item["id"], "label": CLASSES[1]})
    assert r.status_code == 201, r.text
    entry = r.json()
    assert live_labels(project)[item["id"]]["label"] == CLASSES[1]
    assert live_labels(project)[item["id"]]["source"] == "human"
    assert_error(client.post("/v1/labels", json={"id": item["id"], "label": CLASSES[0]}), 409, "already_labelled")
    after = client.get("/v1/queue/next").json()
    assert after["item"]["id"] != item["id"] and after["remaining"] == q["remaining"] - 1

    r = client.post("/v1/labels/undo", json={"entry_id": entry["entry_id"]})
    assert r.status_code == 200 and r.json()["id"] == item["id"]
    assert item["id"] not in live_labels(project)
    assert_error(client.post("/v1/labels/undo", json={"entry_id": entry["entry_id"]}), 404, "no_such_label")
    assert client.get("/v1/queue/next").json()["item"]["id"] == item["id"]  # back at the front


@pytest.mark.parametrize("path", ["/v1/queue/image/..%2F..%2Fetc%2Fpasswd", "/v1/queue/image/%2Fetc%2Fpasswd",
                                  "/v1/queue/image/" + "a" * 64, "/v1/queue/image/../../pool/x.jpg"])
def test_queue_image_never_serves_a_path_from_the_request(client, path):
    r = client.get(path)
    assert r.status_code in (404, 422) and r.json()["error"] in ("not_found", "not_in_queue", "invalid_request")


# --- concurrency limit -----------------------------------------------------------------------------------
def test_busy_server_answers_503_with_retry_after(run_dir, face_model, scene):
    """A server with one inference slot and no waiting room: while the slot is held, a request gets 503."""
    import socket

    import uvicorn

    from visionlab.serve import create_app

    app = create_app(run_dir, face_model=face_model, max_concurrency=1, max_queue=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.1)
        limiter = app.state.limiter

        async def hold():
            await limiter.sem.acquire()

        asyncio.run_coroutine_threadsafe(hold(), loop).result(5)
        files = {"file": ("pic1.jpeg", scene.read_bytes(), "image/jpeg")}
        r = httpx.post(f"{url}/v1/predict", files=files, timeout=30)
        assert_error(r, 503, "busy")
        assert r.headers["retry-after"] == "1"
        assert httpx.get(f"{url}/health").json()["rejected"] == 1
        loop.call_soon_threadsafe(limiter.sem.release)
        assert httpx.post(f"{url}/v1/predict", files=files, timeout=30).status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)


def test_cli_mount_and_loopback_default():
    import inspect

    from typer.testing import CliRunner

    from visionlab.cli import app
    from visionlab.serve.cli import is_loopback, serve

    r = CliRunner().invoke(app, ["serve", "--help"])
    assert r.exit_code == 0, r.output
    for opt in ("--host", "--port", "--active", "--face-model"):
        assert opt in r.output
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def test_docs_serves_swagger_ui_from_this_server(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    srcs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert srcs and all(s.startswith("/") for s in srcs)  # nothing from a CDN
    assert "<script>" not in page.text  # the Content-Security-Policy allows no inline script
    for s in srcs:
        r = client.get(s)
        assert r.status_code == 200 and len(r.content) > 0, s
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text
    assert "/openapi.json" in client.get("/static/docs.js").text
    csp = page.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'self'" in csp  # scripts: this server's files only
    assert "unsafe-inline" not in client.get("/").headers["content-security-policy"]  # the page keeps the strict one
