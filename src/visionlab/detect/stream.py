"""Live sources read as they come: a network stream (``rtsp://``, ``http(s)://`` MJPEG or a file served over
HTTP, ``rtmp://``) or a camera, through OpenCV's ``VideoCapture``, in a small reader thread.

The reader keeps only the newest frame (``drop=True``): when the pipeline is slower than the source, the frames
it had no time for are dropped and counted, so the output never lags behind the scene. ``drop=False`` hands
over every frame in order (the reader waits for the pipeline). A stream that stops (a network cut, a camera
unplugged) is opened again up to ``attempts`` times, ``delay`` seconds apart, each try said in one line; a
frame read after a reconnect starts the count afresh. When the tries are used up the source ends, as a video
file ends.
"""
from __future__ import annotations

import os
import socket
import threading
from typing import Callable, Optional
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own log lines would bury our one-line errors
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from ..errors import DataError  # noqa: E402
from .faces import quiet_opencv  # noqa: E402

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
TIMEOUT_MS = 10_000  # opening and each read: a dead camera is noticed in seconds, not FFmpeg's default minutes
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "http": 80, "https": 443}
PROBE_S = 2.0


def is_stream_url(text: object) -> bool:
    """Whether ``text`` is a URL of a scheme OpenCV streams from (``rtsp``, ``rtsps``, ``rtmp``, ``http``,
    ``https``)."""
    if not isinstance(text, str) or "://" not in text:
        return False
    return text.split("://", 1)[0].lower() in STREAM_SCHEMES


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (camera URLs often carry ``user:password@``), for what is
    printed and written."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def why_no_stream(url: str) -> str:
    """Why a stream URL gave no video, in words, from one TCP connection to its host and port (FFmpeg's own
    error is not exposed by OpenCV): nothing listens there, no answer, the host is unknown, or the server
    answered but sent no video OpenCV can read (a wrong path or password)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    except ValueError:
        return "its port is not a number"
    where = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=PROBE_S):
            pass
    except ConnectionRefusedError:
        return f"nothing listens on {where} (connection refused)"
    except socket.gaierror:
        return f"no host named {host!r} is known"
    except TimeoutError:
        return f"{where} does not answer (no reply in {PROBE_S:g} s)"
    except OSError as e:
        return f"{where} cannot be reached ({e.strerror or e})"
    return f"{where} answered but sent no video OpenCV can read (a wrong path, or a password needed)"


def open_capture(source: "int | str") -> cv2.VideoCapture:
    """An opened ``VideoCapture`` of a camera index or a stream URL; ``DataError`` naming it when it cannot be
    opened. URLs go through FFmpeg with open and read time-outs of ``TIMEOUT_MS``."""
    with quiet_opencv():
        if isinstance(source, int):
            cap = cv2.VideoCapture(source)
        else:
            cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, TIMEOUT_MS,
                                                            cv2.CAP_PROP_READ_TIMEOUT_MSEC, TIMEOUT_MS])
    if not cap.isOpened():
        cap.release()
        if isinstance(source, int):
            raise DataError(f"cannot open camera {source}: no such camera, or it is busy; "
                            f"list cameras with `v4l2-ctl --list-devices` (Linux) and pass --camera N")
        raise DataError(f"cannot open stream {redact(source)}: {why_no_stream(source)}; check the URL in a player "
                        f"(e.g. ffplay) and that the camera is on")
    return cap


class LiveReader:
    """Frames of a live source read in a background thread. ``read()`` gives ``(True, frame)`` for the next
    frame to process, or ``(False, None)`` once the source has ended (reconnect tries used up, or ``stop()``).

    ``cap``: the already opened capture (so a bad URL fails before anything is written); ``reopen()`` opens it
    again after a drop (``DataError`` when it cannot). ``say(line)`` prints a reconnect line. ``dropped``: frames
    read but never handed over because a newer one came first; ``reconnects``: successful reopens.
    """

    def __init__(self, cap: cv2.VideoCapture, reopen: Callable[[], cv2.VideoCapture], name: str, *,
                 attempts: int = 5, delay: float = 2.0, drop: bool = True,
                 say: Callable[[str], None] = print) -> None:
        self.cap, self.reopen, self.name = cap, reopen, name
        self.attempts, self.delay, self.drop, self.say = int(attempts), float(delay), bool(drop), say
        self.dropped = 0
        self.received = 0
        self.reconnects = 0
        self.gave_up = False
        self._frame: Optional[np.ndarray] = None
        self._ended = False
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"visionlab-reader-{name}", daemon=True)
        self._thread.start()

    # -- the reader thread

    def _put(self, frame: np.ndarray) -> None:
        with self._cond:
            if self._frame is not None:
                if self.drop:
                    self.dropped += 1  # the pipeline had no time for it: the newer frame replaces it
                else:
                    while self._frame is not None and not self._stop.is_set():
                        self._cond.wait(0.1)
            self._frame = frame
            self.received += 1
            self._cond.notify_all()

    def _reconnect(self) -> bool:
        """Open the source again, up to ``attempts`` tries; whether it is open."""
        if self.cap is not None:
            self.cap.release()
            self.cap = None
        for k in range(1, self.attempts + 1):
            self.say(f"{self.name}: stream dropped; reconnecting in {self.delay:g} s (try {k} of {self.attempts})")
            if self._stop.wait(self.delay):
                return False
            try:
                self.cap = self.reopen()
            except DataError:
                continue
            self.reconnects += 1
            self.say(f"{self.name}: reconnected")
            return True
        self.gave_up = True
        self.say(f"{self.name}: gave up after {self.attempts} reconnect tr{'y' if self.attempts == 1 else 'ies'}; "
                 f"the run ends here")
        return False

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                ok, frame = self.cap.read() if self.cap is not None else (False, None)
                if ok:
                    self._put(frame)
                    continue
                if self._stop.is_set() or not self._reconnect():
                    break
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    # -- the pipeline's side

    def read(self) -> tuple[bool, Optional[np.ndarray]]:
        with self._cond:
            while self._frame is None and not self._ended:
                self._cond.wait(0.1)
            if self._frame is None:
                return False, None
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return True, frame

    def get(self, prop: int) -> float:
        return self.cap.get(prop) if self.cap is not None else 0.0

    def release(self) -> None:
        """Stop the reader thread and release the capture (also when the run stops early)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=TIMEOUT_MS / 1000 + 1)
        if self.cap is not None:
            self.cap.release()
            self.cap = None
