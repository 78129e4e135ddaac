"""``visionlab serve RUN``: the service under uvicorn, on loopback unless told otherwise."""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Optional

import typer

from ..cli_options import options_from
from ..detect.config import SERVE_FIELDS, DetectConfig, make_config

LOOPBACK = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def timed_h11(header_timeout_s: float):
    """uvicorn's h11 protocol with a deadline for request headers: uvicorn has none, so a client sending
    half a header line kept its connection (and a file descriptor) for ever, and 2,000 of them were still held
    after 65 s. Each connection, and each new request on a kept-alive one, gets ``header_timeout_s`` to send
    its headers; after that it is closed."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        _header_timer = None

        def _waiting_for_headers(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout_s, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self._waiting_for_headers() and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._waiting_for_headers():
                self._arm()
            super().data_received(data)
            if not self._waiting_for_headers():
                self._disarm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return TimedH11Protocol


def raise_fd_limit(want: int = 65536) -> int:
    """Lift the soft open-files limit towards the hard one: each waiting client holds a descriptor."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, ValueError, OSError):
        return -1


def serve(run: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000, active: Optional[str | Path] = None,
          max_upload_mb: float = 10, max_pixels: float = 40e6, max_concurrency: int = 2, max_queue: int = 16,
          allow_host: Optional[list[str]] = None, request_timeout: float = 30.0, header_timeout: float = 10.0,
          max_spool_mb: Optional[float] = None, log_level: str = "warning", config: Optional[DetectConfig] = None,
          **fields: Any) -> None:
    """``visionlab.serve``, the twin of `visionlab serve`: load ``run`` (a run folder, an .onnx file, or None: the
    bundled face-mask classifier) and ``active`` (a project folder), warm up, and serve until Ctrl-C. Detection
    options are ``DetectConfig`` fields (``config`` and/or ``fields``, e.g. ``face_model=...``), as for detect."""
    detect = make_config(config, **fields)
    face_model, allow_hosts = detect.face_model, allow_host
    request_timeout_s, header_timeout_s = request_timeout, header_timeout
    from ..errors import ConfigError

    if max_concurrency < 1:
        raise ConfigError(f"--max-concurrency must be at least 1, not {max_concurrency}")
    if max_queue < 0:
        raise ConfigError(f"--max-queue must be 0 or more, not {max_queue}")
    if max_upload_mb <= 0 or max_pixels <= 0:
        raise ConfigError("--max-upload-mb and --max-pixels must be positive")
    if request_timeout_s <= 0 or header_timeout_s <= 0:
        raise ConfigError("--request-timeout and the header timeout must be positive")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, not {port}")
    import uvicorn

    from .app import LOOPBACK_NAMES, create_app

    # each of the max_concurrency inference threads gets its share of the cores, not all of them
    threads = max(1, (os.cpu_count() or 1) // max_concurrency)
    try:
        import torch  # only a torch backend uses it; the light runtime has none
        torch.set_num_threads(threads)
    except ImportError:
        pass
    try:
        import cv2
        cv2.setNumThreads(threads)
    except ImportError:
        pass
    hosts = list(LOOPBACK_NAMES) + ([host] if host not in ("0.0.0.0", "::", "") else []) + list(allow_hosts or [])
    if not is_loopback(host):
        print(f"warning: serving on {host}, reachable from other machines; the service has no authentication"
              + ("" if allow_hosts else "; only requests naming 127.0.0.1, localhost or the bound address in their "
                                        "Host header are answered (--allow-host NAME adds a name)"))
    raise_fd_limit()
    app = create_app(run, active_project=active, face_model=face_model, max_upload_mb=max_upload_mb,
                     max_pixels=max_pixels, max_concurrency=max_concurrency, max_queue=max_queue,
                     allowed_hosts=hosts, max_spool_mb=max_spool_mb, request_timeout_s=request_timeout_s,
                     detect=detect)
    what = Path(run) if run is not None else "the bundled face-mask classifier"
    print(f"visionlab: serving {what} on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, server_header=False,
                timeout_graceful_shutdown=5, timeout_keep_alive=5, http=timed_h11(header_timeout_s))


@options_from(DetectConfig, SERVE_FIELDS)
def serve_command(run: Optional[Path] = typer.Argument(None, help="a run folder written by `visionlab train` or an "
                                                                   ".onnx file (default: the bundled classifier)"),
                  host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (loopback by default)"),
                  port: int = typer.Option(8000, "--port"),
                  active: Optional[Path] = typer.Option(None, "--active", help="an active-learning project folder "
                                                                               "whose queue the page labels"),
                  max_upload_mb: float = typer.Option(10, "--max-upload-mb", help="request body cap (413 above)"),
                  max_pixels: float = typer.Option(40e6, "--max-pixels", help="decoded image cap (413 above)"),
                  max_concurrency: int = typer.Option(2, "--max-concurrency", help="inferences at once"),
                  max_queue: int = typer.Option(16, "--max-queue", help="requests waiting before 503"),
                  allow_host: Optional[list[str]] = typer.Option(
                      None, "--allow-host", help="another host name the Host header may carry (repeatable; '*' any)"),
                  request_timeout: float = typer.Option(30, "--request-timeout",
                                                        help="seconds a request body may stall before 408"),
                  header_timeout: float = typer.Option(10, "--header-timeout",
                                                       help="seconds a client has to send its request headers"),
                  max_spool_mb: Optional[float] = typer.Option(
                      None, "--max-spool-mb", help="all uploads being received at once (default 4 x --max-upload-mb, "
                                                   "at least 64); 503 above"),
                  **fields: Any) -> None:
    """Serve detection, the model's details and the labelling queue over HTTP, with a page at /. The detection
    options are fields of visionlab.detect.DetectConfig, as in `visionlab detect`."""
    serve(run, host, port, active, max_upload_mb, max_pixels, max_concurrency, max_queue, allow_host=allow_host,
          request_timeout=request_timeout, header_timeout=header_timeout, max_spool_mb=max_spool_mb, **fields)
