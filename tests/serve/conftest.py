"""One real server for the service tests: ``visionlab serve`` in a subprocess on 127.0.0.1 and a free port,
with a small trained run, the YuNet face model from shared/ and an active-learning project with a queue."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

SHARED = Path(os.environ.get("VISIONLAB_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
FACE_MODEL = SHARED / "models" / "face_detection_yunet_2026may.onnx"
SCENE = SHARED / "data" / "scenes" / "pic1.jpeg"
CLASSES = ["WithMask", "WithoutMask"]
QUEUE_K = 10


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (set VISIONLAB_SHARED to the folder holding data/ and models/)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def face_model() -> Path:
    return need(FACE_MODEL)


@pytest.fixture(scope="session")
def scene() -> Path:
    return need(SCENE)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    from visionlab.api import train

    out = tmp_path_factory.mktemp("serve-run") / "run"
    train(data="synthetic", synthetic_per_class=40, image_size=64, model="small_cnn", epochs=1, quiet=True,
          out=str(out))
    return out


def _pool(root: Path) -> Path:
    """Real face crops where shared/ has them (they make a readable screenshot), else generated squares."""
    pool = root / "pool"
    pool.mkdir()
    for cls, prefix in (("WithMask", "wm"), ("WithoutMask", "nm")):
        found = sorted((SHARED / "data" / "facemask" / "Test" / cls).glob("*.jpg"))[:QUEUE_K // 2 + 1]
        for f in found:
            shutil.copy(f, pool / f.name)
        if not found:
            from PIL import Image
            for i in range(QUEUE_K // 2 + 1):
                Image.new("RGB", (96, 96), (40 * i, 120 if prefix == "wm" else 30, 200 - 30 * i)).save(
                    pool / f"{prefix}_{i:03d}.png")
    return pool


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    from visionlab.active import loop

    root = tmp_path_factory.mktemp("serve-active")
    loop.init(_pool(root), root / "project", classes=CLASSES, model="pixels", train=False)
    loop.query(root / "project", k=QUEUE_K, strategy="random")
    return root / "project"


class Server:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kw.pop("timeout", 60), **kw)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s; always reaped."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(args: list[str], log: Path, timeout: float = 180) -> Server:
    """Start ``visionlab serve`` and wait until /health answers; fail with its log if it does not."""
    for _ in range(3):  # the free port can be taken between probing and binding; try another
        port = free_port()
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "visionlab", "serve", *args, "--port", str(port)],
                                    stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    return Server(url, proc, log)
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            break
        if b"address already in use" not in log.read_bytes().lower():
            break
    pytest.fail(f"the server did not start; its output:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="session")
def server(tmp_path_factory, run_dir, project, face_model):
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    srv = start_server([str(run_dir), "--active", str(project), "--face-model", str(face_model)], log)
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with server.client() as c:
        yield c
