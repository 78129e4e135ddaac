"""The light runtime: `pip install visionlab` with no extras detects, predicts and serves without PyTorch.

One module-scoped fixture builds a clean virtual environment from a copy of this checkout (pip fetches the
runtime's dependencies from the package index or its cache), then each test runs the real commands in it. The
full install (the environment running these tests) is the reference the runtime's output must equal.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO / "src" / "visionlab" / "assets" / "photos"
HEAVY = ("torch", "torchvision", "sklearn", "matplotlib")
INSTALL_TIMEOUT = 900


def _run(cmd: list, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``cmd``; the runtime venv's programs get no PYTHONPATH, so they import only what pip installed."""
    full = str(cmd[0]) == sys.executable
    env = {k: v for k, v in os.environ.items() if full or k != "PYTHONPATH"}
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Path:
    """bin/ of a fresh venv holding `pip install visionlab` (a copy of this checkout, no extras)."""
    root = tmp_path_factory.mktemp("runtime")
    src = root / "visionlab-src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = root / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    made = _run([base, "-m", "venv", venv], timeout=120)
    assert made.returncode == 0, made.stderr
    pip = _run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", src],
               timeout=INSTALL_TIMEOUT)
    assert pip.returncode == 0, "pip install of the runtime failed:\n" + pip.stderr[-3000:]
    return venv / "bin"


def _photo() -> Path:
    return PHOTOS / "maksssksksss559.jpg"


def _faces(jsonl: Path) -> list:
    """Every record's faces without timing: boxes, labels, probabilities."""
    recs = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    return [(Path(r["source"]).name, r.get("frame"), r["faces"]) for r in recs]


def test_runtime_has_no_torch(runtime):
    r = _run([runtime / "python", "-c", "import torch"])
    assert r.returncode != 0 and "No module named 'torch'" in r.stderr
    r = _run([runtime / "python", "-c", "import sklearn"])
    assert r.returncode != 0


def test_detect_photo_matches_full_install(runtime, tmp_path):
    light, full = tmp_path / "light", tmp_path / "full"
    r1 = _run([runtime / "visionlab", "detect", _photo(), "--out", light])
    assert r1.returncode == 0, r1.stdout + r1.stderr
    r2 = _run([sys.executable, "-m", "visionlab", "detect", _photo(), "--out", full])
    assert r2.returncode == 0, r2.stdout + r2.stderr
    a, b = _faces(light / "detections.jsonl"), _faces(full / "detections.jsonl")
    assert len(a[0][2]) >= 10  # the bundled crowd photo has 19 faces
    assert a == b  # boxes, labels, probabilities: identical
    assert (light / _photo().name).stat().st_size > 10_000  # the annotated copy


def test_detect_folder_and_video(runtime, tmp_path):
    import cv2

    photos = sorted(PHOTOS.glob("*.jpg"))
    clip = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 5, (640, 480))
    for p in photos:
        frame = cv2.resize(cv2.imread(str(p)), (640, 480))
        for _ in range(3):
            w.write(frame)
    w.release()
    folder = _run([runtime / "visionlab", "detect", PHOTOS, "--out", tmp_path / "folder"])
    assert folder.returncode == 0, folder.stdout + folder.stderr
    assert len(_faces(tmp_path / "folder" / "detections.jsonl")) == len(list(PHOTOS.glob("*.jp*g")))
    video = _run([runtime / "visionlab", "detect", clip, "--out", tmp_path / "video"])
    assert video.returncode == 0, video.stdout + video.stderr
    frames = _faces(tmp_path / "video" / "detections.jsonl")
    assert len(frames) == 3 * len(photos) and sum(len(f[2]) for f in frames) > 0
    assert (tmp_path / "video" / "summary.csv").is_file()
    # no matplotlib in the runtime: no summary.png, and the summary line says why and what to install
    assert not (tmp_path / "video" / "summary.png").exists()
    assert "summary.png not drawn" in video.stdout and "visionlab[plot]" in video.stdout
    full = _run([sys.executable, "-m", "visionlab", "detect", clip, "--out", tmp_path / "video-full"])
    assert full.returncode == 0
    assert _faces(tmp_path / "video-full" / "detections.jsonl") == frames


def test_predict_with_bundled_model(runtime, tmp_path):
    r = _run([runtime / "visionlab", "predict", _photo(), "--out", tmp_path / "p"])
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads((tmp_path / "p" / "predictions.json").read_text())["predictions"]
    assert len(rows) == 1 and abs(sum(v for k, v in rows[0].items() if k.startswith("p_")) - 1) < 1e-3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_predict(runtime):
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen([str(runtime / "visionlab"), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the runtime's service did not start in 120 s"
            time.sleep(0.5)
        with open(_photo(), "rb") as f:
            r = httpx.post(f"{url}/v1/predict", files={"file": ("a.jpg", f, "image/jpeg")}, timeout=60)
        assert r.status_code == 200, r.text
        faces = r.json()["faces"]
        assert len(faces) >= 10 and all(face["label"] for face in faces)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_training_command_names_the_extra(runtime, tmp_path):
    r = _run([runtime / "visionlab", "train", "--data", "synthetic", "--out", tmp_path / "run"])
    assert r.returncode == 2
    lines = [x for x in (r.stdout + r.stderr).splitlines() if x.strip()]
    assert len(lines) == 1 and "visionlab[train]" in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_runtime_modules_import_no_heavy_library():
    """In the full install too: detection, predict and the service run without importing torch, sklearn or
    matplotlib (a regression here would break the light runtime before its venv test runs)."""
    code = f"""
import sys, json
import numpy as np
import visionlab, visionlab.cli, visionlab.serve.app, visionlab.predict
faces = visionlab.detect({str(_photo())!r})
from visionlab.detect.summary import VideoSummary
print(json.dumps([len(faces), sorted(m for m in {HEAVY!r} if m in sys.modules)]))
"""
    r = _run([sys.executable, "-c", code])
    assert r.returncode == 0, r.stderr
    n, heavy = json.loads(r.stdout.strip().splitlines()[-1])
    assert n >= 10 and heavy == []
