"""Streams: `detect http://...` against an MJPEG server on loopback (multipart/x-mixed-replace JPEG frames made from
the bundled photos), compared with the same frames as a video file; a stream that drops mid-way is reconnected and
what happens is said; a pipeline slower than the stream drops frames instead of lagging."""
from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import pytest

from visionlab.detect import run_detection
from visionlab.detect.stream import is_stream_url, redact

PHOTOS = Path(__file__).resolve().parents[2] / "src" / "visionlab" / "assets" / "photos"
SIZE = (480, 320)


def _frames(repeat: int = 3) -> list[np.ndarray]:
    """Each bundled photo, resized to one size, ``repeat`` frames in a row: a clip of real faces."""
    pics = [cv2.resize(cv2.imread(str(p)), SIZE) for p in sorted(PHOTOS.glob("*.jp*g"))]
    assert len(pics) >= 3
    return [p for p in pics for _ in range(repeat)]


class MJPEGServer:
    """An HTTP MJPEG camera on 127.0.0.1: connection k gets ``per_connection[k]`` frames and is then closed;
    connections past the list get 404 (the camera is gone). ``sent`` counts the frames written."""

    def __init__(self, jpegs: list[bytes], per_connection: list[int], pause: float = 0.0) -> None:
        self.jpegs, self.per_connection, self.pause = jpegs, list(per_connection), pause
        self.connections = 0
        self.sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # the test's output stays the run's own
                pass

            def do_GET(self):
                k = server.connections
                server.connections += 1
                if k >= len(server.per_connection):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                start = sum(server.per_connection[:k])
                for j in range(server.per_connection[k]):
                    jpg = server.jpegs[(start + j) % len(server.jpegs)]
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                                     + jpg + b"\r\n")
                    self.wfile.flush()
                    server.sent += 1
                    if server.pause:
                        time.sleep(server.pause)
                # returning closes the connection: the stream drops

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cam.mjpg"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "MJPEGServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _jpegs(frames: list[np.ndarray]) -> list[bytes]:
    return [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for f in frames]


def test_urls_are_streams_and_passwords_are_hidden():
    assert is_stream_url("rtsp://10.0.0.2:554/cam") and is_stream_url("HTTPS://x/y.mjpg")
    assert not is_stream_url("clip.mp4") and not is_stream_url("C:/clip.mp4") and not is_stream_url(0)
    assert redact("rtsp://admin:s3cret@10.0.0.2:554/cam") == "rtsp://admin:***@10.0.0.2:554/cam"
    assert redact("http://127.0.0.1:8080/x.mjpg") == "http://127.0.0.1:8080/x.mjpg"


def test_stream_counts_match_the_same_frames_from_a_file(tmp_path):
    frames = _frames()
    jpegs = _jpegs(frames)
    (tmp_path / "clip.mjpeg").write_bytes(b"".join(jpegs))  # the same JPEG frames as a video file
    ref = run_detection(tmp_path / "clip.mjpeg", None, tmp_path / "file", show_progress=False, quality="fast")
    with MJPEGServer(jpegs, [len(frames)]) as server:
        s = run_detection(server.url, None, tmp_path / "live", show_progress=False, quality="fast",
                          drop_frames=False, reconnect_attempts=0)
    assert s["kind"] == "stream" and s["input"] == server.url
    assert s["processed"] == len(frames) == ref["processed"] and s["dropped"] == 0 and s["reconnects"] == 0
    assert ref["faces"] > len(frames)  # real faces were found, more than one a frame
    assert s["faces"] == ref["faces"] and s["labels"] == ref["labels"]
    t, r = s["summary"], ref["summary"]
    for key in ("frames", "faces", "with", "without", "incorrect", "unsure"):
        assert t[key] == r[key], key
    assert t["people"]["count"] == r["people"]["count"]
    live = tmp_path / "live"
    assert {p.name for p in live.iterdir()} >= {"detections.jsonl", "summary.csv", "summary.json", "stream.mp4"}
    on_disk = json.loads((live / "summary.json").read_text())
    assert on_disk["faces"] == s["faces"] and on_disk["fps"] == s["fps"] and on_disk["dropped"] == 0
    lines = [json.loads(x) for x in (live / "detections.jsonl").read_text().splitlines()]
    assert len(lines) == len(frames) and lines[0]["source"] == server.url
    # each frame's time: the run's clock from the first frame, and the local wall time it was seen
    seen = [datetime.fromisoformat(x["at"]) for x in lines]
    assert lines[0]["time_s"] == 0.0 and all(a["time_s"] <= b["time_s"] for a, b in zip(lines, lines[1:]))
    assert all(abs((b - seen[0]).total_seconds() - x["time_s"]) < 0.05 for b, x in zip(seen, lines))
    assert all(b.tzinfo is not None for b in seen)


def test_a_dropped_stream_is_reconnected_then_the_run_ends(tmp_path, capsys):
    frames = _frames(repeat=2)
    with MJPEGServer(_jpegs(frames), [4, 3]) as server:  # 4 frames, drop, 3 frames, drop, then 404
        t0 = time.perf_counter()
        s = run_detection(server.url, None, tmp_path / "o", show_progress=False, quality="fast", drop_frames=False,
                          reconnect_attempts=2, reconnect_delay=0.05, save_frames=False)
        took = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert server.connections == 4  # the first, the reconnect, two failed tries
    assert s["processed"] == 7 and s["reconnects"] == 1 and s["gave_up"] and not s["interrupted"]
    assert err.count("stream dropped; reconnecting in 0.05 s (try 1 of 2)") == 2
    assert err.count("reconnected") == 1 and "(try 2 of 2)" in err and "gave up after 2 reconnect tries" in err
    assert took < 30
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["reconnects"] == 1


def test_a_slow_pipeline_drops_frames_instead_of_lagging(tmp_path):
    frames = _frames(repeat=1)
    n = 30
    with MJPEGServer(_jpegs(frames), [n], pause=0.01) as server:
        s = run_detection(server.url, None, tmp_path / "o", show_progress=False, quality="fast", save_frames=False,
                          reconnect_attempts=0, on_frame=lambda rec, img: time.sleep(0.1))
    assert server.sent == n
    assert s["dropped"] > 0 and s["processed"] + s["dropped"] == n  # every frame processed or counted as dropped
    assert s["processed"] < n / 2


def test_an_unreachable_stream_is_one_error_and_writes_nothing(tmp_path):
    from visionlab.errors import DataError

    with MJPEGServer([], []) as server:  # every request is 404
        with pytest.raises(DataError, match="cannot open stream http://127.0.0.1"):
            run_detection(server.url, None, tmp_path / "o", show_progress=False)
    assert not (tmp_path / "o").exists()


def test_an_rtsp_url_where_nothing_listens_is_one_clear_line(tmp_path):
    """`visionlab detect rtsp://127.0.0.1:PORT/cam` with no camera there: exit 2, one line saying nothing listens,
    in seconds, and no output folder."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"rtsp://admin:secret@127.0.0.1:{port}/cam"
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "visionlab", "detect", url, "--out", str(tmp_path / "o"),
                        "--reconnect-delay", "0"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and time.perf_counter() - t0 < 60
    err = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert err == [f"error: cannot open stream rtsp://admin:***@127.0.0.1:{port}/cam: nothing listens on "
                   f"127.0.0.1:{port} (connection refused); check the URL in a player (e.g. ffplay) and that the "
                   f"camera is on"], p.stderr
    assert "secret" not in p.stderr + p.stdout and not (tmp_path / "o").exists()


def test_the_command_streams_says_reconnects_and_sends_alerts(tmp_path):
    """`visionlab detect URL` as a user runs it: repeated --alert flags, the reconnect lines on stderr and the
    last lines with dropped frames, reconnects and alerts."""
    import subprocess
    import sys

    from .test_alerts import Hook

    hook = Hook()
    try:
        with MJPEGServer(_jpegs(_frames(repeat=1)), [3, 2]) as server:
            p = subprocess.run([sys.executable, "-m", "visionlab", "detect", server.url, "--out", str(tmp_path / "o"),
                                "--quality", "fast", "--no-drop-frames", "--no-save-frames", "--reconnect-attempts",
                                "1", "--reconnect-delay", "0.05", "--alert", "faces>=1", "--alert", "unsure>=100",
                                "--alert-to", hook.url, "--alert-cooldown", "3600"],
                               capture_output=True, text=True, timeout=300)
    finally:
        hook.close()
    assert p.returncode == 0, p.stderr
    assert "stream dropped; reconnecting in 0.05 s (try 1 of 1)" in p.stderr and "reconnected" in p.stderr
    assert "gave up after 1 reconnect try" in p.stderr
    assert "5 frames:" in p.stdout
    assert "0 dropped (no time for them), 1 reconnect" in p.stdout
    assert "alerts: 1 event (faces>=1 1, unsure>=100 0); 1 sent, 0 failed" in p.stdout
    assert [b["rule"] for b in hook.bodies] == ["faces>=1"]


def test_a_live_summary_is_refreshed_while_the_stream_runs(tmp_path):
    """Each time a bin ends, summary.csv and summary.json are rewritten: a long session can be read as it runs."""
    seen: list[tuple[int, dict]] = []
    out = tmp_path / "o"

    def peek(record, annotated):
        time.sleep(0.05)
        if (out / "summary.json").exists():
            rows = (out / "summary.csv").read_text().splitlines()
            seen.append((len(rows) - 1, json.loads((out / "summary.json").read_text())))

    with MJPEGServer(_jpegs(_frames(repeat=2)), [12], pause=0.05) as server:
        s = run_detection(server.url, None, out, show_progress=False, quality="fast", save_frames=False,
                          drop_frames=False, reconnect_attempts=0, bin_seconds=0.2, on_frame=peek)
    assert seen, "no summary was written while the stream ran"
    assert all(t["running"] for _, t in seen) and max(n for n, _ in seen) >= 2  # bins appear as time passes
    assert all(t["faces"] <= s["faces"] for _, t in seen) and seen[-1][1]["frames"] < s["processed"] + 1
    final = json.loads((out / "summary.json").read_text())
    assert "running" not in final and final["faces"] == s["faces"] and final["frames"] == s["processed"]


def test_a_long_stream_rolls_its_files_over_per_period(tmp_path):
    """A stream that runs for days writes bounded files: every period (here 0.6 s, two bins of 0.3 s) its
    detections.jsonl, summary.csv and video are kept under names with the period's start and the plain names start
    afresh; nothing is lost or deleted, every frame is in exactly one file and the totals cover the whole run."""
    import re

    frames = _frames(repeat=10)
    out = tmp_path / "o"
    with MJPEGServer(_jpegs(frames), [len(frames)], pause=0.06) as server:
        s = run_detection(server.url, None, out, show_progress=False, quality="fast", drop_frames=False,
                          reconnect_attempts=0, bin_seconds=0.3, rollover_seconds=0.6)
    # The run's clock starts at the first frame out of the pipeline, which may come a few frames into the stream
    # (FFmpeg reads some while it opens it, and a loaded machine is slower to start), so the periods are checked
    # against each frame's time_s on that clock (below); 40 frames 0.06 s apart span over a second even after a
    # slow start, so the files roll over at least once.
    assert s["processed"] == len(frames) and s["periods"] >= 2
    names = sorted(p.name for p in out.iterdir())
    stamp = r"-\d{8}-\d{6}\.\d{3}"  # the period's start, to the millisecond for periods under a second
    rolled = {kind: [n for n in names if re.fullmatch(kind.replace(".", stamp + r"\."), n)]
              for kind in ("detections.jsonl", "summary.csv", "stream.mp4")}
    assert all(len(v) == s["periods"] - 1 for v in rolled.values()), (rolled, names)
    assert set(names) == {*sum(rolled.values(), []), "detections.jsonl", "summary.csv", "stream.mp4",
                          "summary.json", "summary.png"}
    # every frame once, in order, across the files; no file holds more than one period (two bins)
    files = rolled["detections.jsonl"] + ["detections.jsonl"]
    per_file = [[json.loads(ln)["frame"] for ln in (out / n).read_text().splitlines()] for n in files]
    assert all(per_file) and sum(per_file, []) == list(range(len(frames)))  # the names sort in time order
    # each file holds the frames of one period (0.6 s on the run's clock), a later period than the file before
    when = [[json.loads(ln)["time_s"] for ln in (out / n).read_text().splitlines()] for n in files]
    # (time_s is rounded to the millisecond: a frame within 1 ms of a period's edge may be in either period)
    period = [set.intersection(*({int((x - 0.0011) / 0.6), int((x + 0.0011) / 0.6)} for x in w)) for w in when]
    assert all(period) and all(max(b) > min(a) for a, b in zip(period, period[1:])), when
    assert when[0][0] == 0.0 and sorted(sum(when, [])) == sum(when, [])
    csvs = [(out / n).read_text().splitlines() for n in rolled["summary.csv"] + ["summary.csv"]]
    assert all(1 <= len(c) - 1 <= 2 for c in csvs)  # the header and one or two bins
    faces = [int(row.split(",")[2]) for c in csvs for row in c[1:]]
    t = json.loads((out / "summary.json").read_text())
    assert sum(faces) == t["faces"] == s["faces"] and len(faces) == t["bins"] and t["periods"] == s["periods"]
    videos = [int(cv2.VideoCapture(str(out / n)).get(cv2.CAP_PROP_FRAME_COUNT))
              for n in rolled["stream.mp4"] + ["stream.mp4"]]
    assert sum(videos) == len(frames) and all(videos)
    assert [len(f) for f in per_file] == videos


class RTSPServer:
    """A one-client RTSP camera on 127.0.0.1, written for this test because no RTSP server is installed here
    (no mediamtx, no gst-rtsp-server, OpenCV's FFmpeg reads RTSP but does not serve it): OPTIONS, DESCRIBE (an
    SDP of one JPEG video track, RTP payload 26), SETUP (RTP interleaved in the RTSP connection; a UDP request is
    refused with 461, as a TCP-only camera does, and FFmpeg falls back to TCP), PLAY, then each frame sent as RTP/JPEG (RFC 2435:
    the scan data of a baseline 4:2:0 JPEG with its quantisation tables in-band) and the connection closed after
    the last one (the camera goes away)."""

    MTU = 1400

    def __init__(self, jpegs: list[bytes], fps: float = 10.0) -> None:
        import socket

        self.jpegs, self.fps = jpegs, fps
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.url = f"rtsp://127.0.0.1:{self.sock.getsockname()[1]}/cam"
        self.sent = 0
        self.requests: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "RTSPServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()

    @staticmethod
    def _jpeg_parts(jpg: bytes) -> tuple[int, int, int, bytes, bytes]:
        """(RFC 2435 type, width, height, the two quantisation tables, the scan data) of a baseline JPEG."""
        i, tables, kind, w, h = 2, b"", None, 0, 0
        while True:
            marker, n = jpg[i + 1], int.from_bytes(jpg[i + 2:i + 4], "big")
            seg = jpg[i + 4:i + 2 + n]
            if marker == 0xDB:  # DQT: one or more 8-bit tables of 64 values, zig-zag order as RTP/JPEG wants
                for k in range(0, len(seg), 65):
                    tables += seg[k + 1:k + 65]
            elif marker == 0xC0:  # SOF0: the size and the luma sampling (2x2: 4:2:0, type 1; 2x1: 4:2:2, type 0)
                h, w = int.from_bytes(seg[1:3], "big"), int.from_bytes(seg[3:5], "big")
                kind = {0x22: 1, 0x21: 0}[seg[7]]
            elif marker == 0xDA:  # SOS: the scan runs from here to the EOI marker
                return kind, w, h, tables, jpg[i + 2 + n:jpg.rindex(b"\xff\xd9")]
            i += 2 + n

    def _packets(self, jpg: bytes, seq: int, ts: int) -> list[bytes]:
        kind, w, h, tables, scan = self._jpeg_parts(jpg)
        out, off = [], 0
        while off < len(scan):
            head = bytes([0]) + off.to_bytes(3, "big") + bytes([kind, 255, w // 8, h // 8])
            if off == 0:
                head += bytes([0, 0]) + len(tables).to_bytes(2, "big") + tables
            chunk = scan[off:off + self.MTU]
            off += len(chunk)
            rtp = bytes([0x80, (0x80 if off >= len(scan) else 0) | 26]) + ((seq + len(out)) & 0xFFFF).to_bytes(2, "big")
            rtp += (ts & 0xFFFFFFFF).to_bytes(4, "big") + b"\x12\x34\x56\x78"
            out.append(b"$\x00" + len(rtp + head + chunk).to_bytes(2, "big") + rtp + head + chunk)
        return out

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        lock = threading.Lock()
        playing = threading.Event()
        buf = b""

        def read_request() -> Optional[dict]:
            nonlocal buf
            while True:
                while buf.startswith(b"$"):  # RTCP from the client, interleaved: skipped
                    if len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[2:4], "big"):
                        break
                    buf = buf[4 + int.from_bytes(buf[2:4], "big"):]
                if not buf.startswith(b"$") and b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    lines = head.decode().split("\r\n")
                    fields = dict(ln.split(": ", 1) for ln in lines[1:] if ": " in ln)
                    buf = buf[int(fields.get("Content-Length", 0)):]
                    return {"method": lines[0].split()[0], **fields}
                data = conn.recv(65536)
                if not data:
                    return None
                buf += data

        def answer(req: dict, status: str = "200 OK", extra: str = "", body: str = "") -> None:
            text = (f"RTSP/1.0 {status}\r\nCSeq: {req.get('CSeq', '0')}\r\n{extra}"
                    + (f"Content-Length: {len(body)}\r\n" if body else "") + "\r\n" + body)
            with lock:
                conn.sendall(text.encode())

        def stream() -> None:
            playing.wait()
            try:
                for k, jpg in enumerate(self.jpegs):
                    for packet in self._packets(jpg, seq=k * 100, ts=int(k * 90000 / self.fps)):
                        with lock:
                            conn.sendall(packet)
                    self.sent += 1
                    time.sleep(1 / self.fps)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    conn.shutdown(2)  # the camera goes away
                conn.close()

        threading.Thread(target=stream, daemon=True).start()
        session = "Session: 4242;timeout=60\r\n"
        with contextlib.suppress(OSError):
            while (req := read_request()) is not None:
                self.requests.append(req["method"])
                if req["method"] == "OPTIONS":
                    answer(req, extra="Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n")
                elif req["method"] == "DESCRIBE":
                    sdp = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=visionlab test camera\r\nc=IN IP4 127.0.0.1\r\n"
                           f"t=0 0\r\nm=video 0 RTP/AVP 26\r\na=framerate:{self.fps:g}\r\n"
                           f"a=control:{self.url}/track0\r\n")
                    answer(req, extra=f"Content-Base: {self.url}/\r\nContent-Type: application/sdp\r\n", body=sdp)
                elif req["method"] == "SETUP":
                    if "TCP" not in req.get("Transport", ""):
                        answer(req, "461 Unsupported Transport")
                        continue
                    answer(req, extra=f"Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n{session}")
                elif req["method"] == "PLAY":
                    answer(req, extra=f"{session}Range: npt=0.000-\r\n")
                    playing.set()
                else:  # GET_PARAMETER (keep-alive), TEARDOWN
                    answer(req, extra=session)
        playing.set()


def test_an_rtsp_camera_is_read_and_counted_as_the_same_frames_from_a_file(tmp_path):
    """`detect rtsp://...` against the RTSP camera above: every frame arrives (RTP over the RTSP connection) and
    the faces and labels are those of the same JPEG frames read from a file (FFmpeg decodes them to the same
    pixels)."""
    frames = _frames(repeat=2)
    jpegs = _jpegs(frames)
    (tmp_path / "clip.mjpeg").write_bytes(b"".join(jpegs))
    ref = run_detection(tmp_path / "clip.mjpeg", None, tmp_path / "file", show_progress=False, quality="fast",
                        save_frames=False)
    with RTSPServer(jpegs) as server:
        s = run_detection(server.url, None, tmp_path / "live", show_progress=False, quality="fast",
                          drop_frames=False, reconnect_attempts=0, save_frames=False)
    assert server.requests[:2] == ["OPTIONS", "DESCRIBE"] and "PLAY" in server.requests
    assert s["kind"] == "stream" and s["input"] == server.url and server.sent == len(frames)
    assert s["processed"] == len(frames) and s["dropped"] == 0
    assert ref["faces"] > len(frames) and s["faces"] == ref["faces"] and s["labels"] == ref["labels"]
