"""``visionlab serve RUN``: the service under uvicorn, on loopback unless told otherwise."""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Optional

import typer

LOOPBACK = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(run: str | Path, host: str = "127.0.0.1", port: int = 8000, active: Optional[str | Path] = None,
          face_model: Optional[str | Path] = None, max_upload_mb: float = 10, max_pixels: float = 40e6,
          max_concurrency: int = 2, max_queue: int = 16, log_level: str = "warning") -> None:
    """Load ``run`` (and ``active``, a project folder), warm up, and serve until Ctrl-C."""
    import torch
    import uvicorn

    from .app import create_app

    # each of the max_concurrency inference threads gets its share of the cores, not all of them
    threads = max(1, (os.cpu_count() or 1) // max_concurrency)
    torch.set_num_threads(threads)
    try:
        import cv2
        cv2.setNumThreads(threads)
    except ImportError:
        pass
    if not is_loopback(host):
        print(f"warning: serving on {host}, reachable from other machines; the service has no authentication")
    app = create_app(run, active_project=active, face_model=face_model, max_upload_mb=max_upload_mb,
                     max_pixels=max_pixels, max_concurrency=max_concurrency, max_queue=max_queue)
    print(f"visionlab: serving {Path(run)} on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, server_header=False,
                timeout_graceful_shutdown=5)


def serve_command(run: Path = typer.Argument(..., help="a run folder written by `visionlab train`"),
                  host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (loopback by default)"),
                  port: int = typer.Option(8000, "--port"),
                  active: Optional[Path] = typer.Option(None, "--active", help="an active-learning project folder "
                                                                               "whose queue the page labels"),
                  face_model: Optional[Path] = typer.Option(None, "--face-model", help="YuNet .onnx face detector"),
                  max_upload_mb: float = typer.Option(10, "--max-upload-mb", help="request body cap (413 above)"),
                  max_pixels: float = typer.Option(40e6, "--max-pixels", help="decoded image cap (413 above)"),
                  max_concurrency: int = typer.Option(2, "--max-concurrency", help="inferences at once"),
                  max_queue: int = typer.Option(16, "--max-queue", help="requests waiting before 503")) -> None:
    """Serve detection, the model's details and the labelling queue over HTTP, with a page at /."""
    serve(run, host, port, active, face_model, max_upload_mb, max_pixels, max_concurrency, max_queue)
