"""Issue 14 against the real server on loopback: Host/Origin checks (item 7), header/body timeouts, the
total spooled-upload bound and decode memory (item 6), project-file damage and the queue (items 2, 3, 4,
12), broken JSON (item 13) and `serve --max-concurrency 0` (item 9). Each failed before its fix."""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import CLASSES, QUEUE_K, _pool, start_server

TIMEOUT = 2  # --header-timeout and --request-timeout of this module's server, seconds
SPOOL_MB = 20


@pytest.fixture(scope="module")
def proj(tmp_path_factory) -> Path:
    from visionlab.active import loop

    root = tmp_path_factory.mktemp("rel-active")
    loop.init(_pool(root), root / "project", classes=CLASSES, model="pixels", train=False)
    loop.query(root / "project", k=QUEUE_K, strategy="random")
    return root / "project"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, run_dir, proj, face_model):
    d = tmp_path_factory.mktemp("rel-log")
    tmp = d / "tmp"
    tmp.mkdir()
    os.environ["TMPDIR"], old = str(tmp), os.environ.get("TMPDIR")  # where the server spools uploads
    try:
        s = start_server([str(run_dir), "--active", str(proj), "--face-model", str(face_model),
                          "--header-timeout", str(TIMEOUT), "--request-timeout", str(TIMEOUT),
                          "--max-spool-mb", str(SPOOL_MB)], d / "server.log")
    finally:
        if old is None:
            os.environ.pop("TMPDIR")
        else:
            os.environ["TMPDIR"] = old
    s.tmp = tmp
    yield s
    s.stop()


@pytest.fixture
def c(srv):
    with srv.client() as client:
        yield client


def port(srv) -> int:
    return int(srv.url.rsplit(":", 1)[1])


def err(r, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.json()["error"] == code, r.text


# --- item 7: DNS rebinding ---------------------------------------------------------------------------------
def test_other_host_names_and_cross_origin_posts_are_refused(c, srv, proj):
    p = port(srv)
    err(c.get("/v1/queue/next", headers={"Host": f"evil.example:{p}"}), 421, "misdirected_request")  # before: 200
    assert c.get("/v1/queue/next", headers={"Host": f"localhost:{p}"}).status_code == 200
    item = c.get("/v1/queue/next").json()["item"]
    before = (proj / "labels.jsonl").read_bytes()
    err(c.post("/v1/labels", json={"id": item["id"], "label": CLASSES[0]},
               headers={"Origin": "http://evil.example"}), 403, "forbidden_origin")
    err(c.post("/v1/labels", json={"id": item["id"], "label": CLASSES[0]}, headers={"Origin": "null"}),
        403, "forbidden_origin")
    assert (proj / "labels.jsonl").read_bytes() == before
    r = c.post("/v1/labels", json={"id": item["id"], "label": CLASSES[0]}, headers={"Origin": srv.url})
    assert r.status_code == 201, r.text  # the page's own origin is fine
    assert c.post("/v1/labels/undo", json={"entry_id": r.json()["entry_id"]}).status_code == 200


def test_allow_host_widens_the_list():
    from starlette.testclient import TestClient

    from visionlab.serve.limits import HostCheck

    async def ok(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    strict = TestClient(HostCheck(ok, ["127.0.0.1", "localhost", "::1"]), base_url="http://evil.example")
    assert strict.get("/").status_code == 421
    wider = TestClient(HostCheck(ok, ["127.0.0.1", "evil.example"]), base_url="http://evil.example")
    assert wider.get("/").status_code == 200
    assert TestClient(HostCheck(ok, ["*"]), base_url="http://anything:81").get("/").status_code == 200
    assert TestClient(HostCheck(ok, ["::1"]), base_url="http://[::1]:8000").get("/").status_code == 200


# --- item 13: statuses as documented -----------------------------------------------------------------------
def test_broken_json_is_400(c):
    r = c.post("/v1/labels", content=b'{"id": ', headers={"content-type": "application/json"})
    err(r, 400, "bad_request")  # before: 422


def _jpeg() -> bytes:
    from visionlab.assets import PHOTOS

    return (PHOTOS / "maksssksksss627.jpg").read_bytes()  # a real photo with two faces


def test_a_multipart_body_cut_before_its_closing_boundary_is_400(c):
    """Issue 28 item 10: a body cut before its closing boundary got 422 `Field required`."""
    head = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n")
    whole = head + _jpeg() + b"\r\n--xyz--\r\n"
    ctype = {"content-type": "multipart/form-data; boundary=xyz"}
    for cut in (whole[:len(head) + 100], whole[:-9], head):  # in the file, just before the end, after the header
        r = c.post("/v1/predict", content=cut, headers=ctype)
        err(r, 400, "bad_request")  # before: 422 invalid_request (body.file: Field required)
        assert "closing boundary" in r.json()["detail"]
    r = c.post("/v1/predict", content=whole, headers=ctype)  # the whole body is still answered
    assert r.status_code == 200, r.text
    r = c.post("/v1/predict", content=whole + b"an epilogue after the end is allowed\r\n", headers=ctype)
    assert r.status_code == 200, r.text
    other = b'--xyz\r\nContent-Disposition: form-data; name="other"\r\n\r\n1\r\n--xyz--\r\n'
    err(c.post("/v1/predict", content=other, headers=ctype), 422, "invalid_request")  # a whole body lacking `file`


# --- items 4, 12, 3, 2: the queue over HTTP ----------------------------------------------------------------
def test_damaged_project_files_never_give_500(c, proj):
    labels = proj / "labels.jsonl"
    saved = labels.read_bytes()
    try:
        with open(labels, "ab") as f:
            f.write(b'{"id": 90, "op": "label", "path": "x.jpg", "label": "WithMask", "source": "human"}\n')
            f.write(b'{"id": 91, "op": "label", "path": "y.jpg", "sha256": "' + b"a" * 64 +
                    b'", "label": "Cat", "source": "human"}\n')
            f.write(b"garbage\n")
        r = c.get("/v1/queue/next")  # before: KeyError -> 500
        assert r.status_code == 200, r.text
        w = r.json()["warnings"]
        assert any("without a valid sha256" in x for x in w) and any("unknown class 'Cat'" in x for x in w)
        assert any("not valid JSON" in x for x in w)
    finally:
        labels.write_bytes(saved)
    queue = proj / "queue.json"
    saved = queue.read_bytes()
    try:
        queue.write_text('{"items": [{"path": 3}]}')
        err(c.get("/v1/queue/next"), 503, "project_unavailable")
        queue.write_bytes(b"\xff\xfe")
        err(c.get("/v1/queue/next"), 503, "project_unavailable")
    finally:
        queue.write_bytes(saved)


def test_deleted_and_changed_pool_images_are_passed_over(c, proj):
    pool = Path(json.loads((proj / "state.json").read_text())["pool"])
    q = c.get("/v1/queue/next").json()
    first = q["item"]
    path = next(it["path"] for it in json.loads((proj / "queue.json").read_text())["items"]
                if it["sha256"] == first["id"])
    backup = (pool / path).read_bytes()
    try:
        (pool / path).unlink()
        nxt = c.get("/v1/queue/next").json()  # before: the deleted image stayed first for ever
        assert nxt["item"]["id"] != first["id"] and nxt["unavailable"] == 1
        err(c.get(first["image_url"]), 404, "image_missing")
        err(c.post("/v1/labels", json={"id": first["id"], "label": CLASSES[0]}), 404, "image_missing")
        Image.new("RGB", (50, 50), (1, 2, 3)).save(pool / path, format=Image.registered_extensions()[
            Path(path).suffix.lower()])  # other content under the queued name
        assert c.get("/v1/queue/next").json()["item"]["id"] != first["id"]
        err(c.get(first["image_url"]), 409, "image_changed")
        err(c.post("/v1/labels", json={"id": first["id"], "label": CLASSES[0]}), 409, "image_changed")
    finally:
        (pool / path).write_bytes(backup)
    assert c.get("/v1/queue/next").json()["item"]["id"] == first["id"]


def test_http_undo_only_its_own_labels(c, proj):
    from visionlab.active import loop

    q = json.loads((proj / "queue.json").read_text())["items"]
    other = loop.add_label(proj, q[-1]["path"], CLASSES[0])  # a terminal's label
    try:
        err(c.post("/v1/labels/undo", json={"entry_id": other.id}), 404, "no_such_label")  # before: 200
    finally:
        loop.undo(proj, other.id)


# --- item 6: slow clients and memory -----------------------------------------------------------------------
def test_half_sent_headers_are_dropped_and_health_keeps_answering(c, srv):
    socks = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", port(srv)))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
            socks.append(s)
        assert c.get("/health").status_code == 200
        time.sleep(TIMEOUT + 2)
        closed = 0
        for s in socks:
            s.settimeout(2)
            try:
                closed += s.recv(1) == b""
            except (socket.timeout, ConnectionResetError):
                closed += isinstance(sys.exc_info()[1], ConnectionResetError)
        assert closed == len(socks)  # before: all still held after 65 s
        assert c.get("/health").status_code == 200
    finally:
        for s in socks:
            s.close()


def test_a_stalled_body_ends_with_408(srv):
    s = socket.create_connection(("127.0.0.1", port(srv)))
    try:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                  b"boundary=x\r\nContent-Length: 1000000\r\n\r\n--x\r\nContent-Disposition: form-data; "
                  b'name="file"; filename="a.jpg"\r\n\r\n' + b"\xff" * 1000)
        s.settimeout(TIMEOUT + 10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 408"), data[:200]
    finally:
        s.close()


def spooled_bytes(pid: int, tmp: Path) -> int:
    total = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(tmp)):
                total += os.stat(f"/proc/{pid}/fd/{fd}").st_size
        except OSError:
            pass
    return total


def test_unfinished_uploads_are_bounded_in_total(c, srv):
    socks, answers = [], []
    head = (b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 10000000\r\n\r\n--x\r\nContent-Disposition: form-data; name=\"file\"; "
            b"filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n")
    try:
        for _ in range(30):
            s = socket.create_connection(("127.0.0.1", port(srv)))
            s.settimeout(5)
            s.sendall(head)
            try:
                s.sendall(b"\x89PNG" + b"\0" * (4 << 20))  # 4 MiB of a 10 MB body, then nothing
            except OSError:
                pass  # already answered and closed
            socks.append(s)
        time.sleep(0.5)
        peak = spooled_bytes(srv.proc.pid, srv.tmp)
        for s in socks:
            try:
                answers.append(s.recv(64))
            except (socket.timeout, ConnectionResetError):
                answers.append(b"")
        busy = sum(a.startswith(b"HTTP/1.1 503") for a in answers)
        # before: 30 x 8 MiB spooled (240 MiB); now at most --max-spool-mb is admitted, the rest get 503 at once
        assert busy >= 30 - SPOOL_MB // 10, answers
        assert peak <= SPOOL_MB * 2 ** 20, peak
        assert c.get("/health").status_code == 200
    finally:
        for s in socks:
            s.close()


def test_a_many_byte_image_is_refused_by_its_decoded_size(c):
    buf = io.BytesIO()
    Image.fromarray(np.zeros((6000, 6000), np.float32), "F").save(buf, "TIFF", compression="tiff_deflate")
    assert len(buf.getvalue()) < 2 ** 20  # small on the wire, 36 MP under the 40 MP cap, 4 bytes a sample
    r = c.post("/v1/predict", files={"file": ("f.tif", buf.getvalue(), "image/tiff")})
    err(r, 413, "image_too_large")
    assert "decoding it needs" in r.json()["detail"]


# --- item 9: bad options -----------------------------------------------------------------------------------
@pytest.mark.parametrize("opt, says", [(["--max-concurrency", "0"], "--max-concurrency must be at least 1"),
                                       (["--max-queue", "-1"], "--max-queue must be 0 or more")])
def test_bad_serve_options_are_one_line(run_dir, opt, says):
    p = subprocess.run([sys.executable, "-m", "visionlab", "serve", str(run_dir), *opt], capture_output=True,
                       text=True, timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode == 2 and says in out and "Traceback" not in out, out
