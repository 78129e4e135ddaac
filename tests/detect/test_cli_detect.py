"""`visionlab detect` and `visionlab export` as a user runs them: a short video made with OpenCV's VideoWriter
from shared images, annotated video frame count and JSON lines; bad inputs give one clear line each."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from .conftest import shared_file

VL = [sys.executable, "-m", "visionlab"]


def vl(*args, ok=True):
    p = subprocess.run([*VL, *args], capture_output=True, text=True, timeout=600)
    if ok:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("detect-cli") / "run"
    vl("train", "--data", "synthetic", "--synthetic-per-class", "30", "--image-size", "48", "--model", "small_cnn",
       "--epochs", "1", "--quiet", "--threads", "1", "--out", str(d))
    return d


@pytest.fixture(scope="module")
def yunet_file():
    return shared_file("models", "face_detection_yunet_2026may.onnx")


def test_export_then_detect_on_a_video(tmp_path, run_dir, yunet_file):
    p = vl("export", str(run_dir))
    assert (run_dir / "model.onnx").is_file() and "exported" in p.stdout
    pic = cv2.imread(str(shared_file("data", "scenes", "pic1.jpeg")))
    frame = cv2.resize(pic, (640, 418))
    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 418))
    for i in range(8):  # the scene drifting sideways a few pixels per frame
        w.write(np.roll(frame, 3 * i, axis=1))
    w.release()
    out = tmp_path / "out"
    p = vl("detect", str(video), "--model", str(run_dir), "--out", str(out), "--face-model", str(yunet_file))
    assert "8 frames" in p.stdout
    cap = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    cap.release()
    lines = [json.loads(x) for x in (out / "detections.jsonl").read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(8))
    assert all(len(x["faces"]) == 2 for x in lines)
    assert all(f["label"] in ("WithMask", "WithoutMask", "unsure") for x in lines for f in x["faces"])


def test_detect_bad_inputs_one_line_each(tmp_path, run_dir, yunet_file):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    cv2.imwrite(str(folder / "scene.jpg"), cv2.imread(str(shared_file("data", "scenes", "pic1.jpeg"))))
    p = vl("detect", str(folder), "--model", str(run_dir), "--out", str(tmp_path / "o1"), "--face-model",
           str(yunet_file))
    assert "broken.jpg" in p.stdout + p.stderr and (tmp_path / "o1" / "scene.jpg").is_file()

    bad_video = tmp_path / "v.mp4"
    bad_video.write_bytes(b"not a video at all")
    empty_run = tmp_path / "norun"
    empty_run.mkdir()
    for args, needle in (
        ([str(bad_video)], "v.mp4"),
        (["--camera", "99"], "camera"),
        ([str(folder)], "norun"),
    ):
        model = str(empty_run) if needle == "norun" else str(run_dir)
        p = vl("detect", *args, "--model", model, "--out", str(tmp_path / "o2"), "--face-model", str(yunet_file),
               ok=False)
        assert p.returncode == 2, p.stdout + p.stderr
        err = p.stderr.strip().splitlines()
        assert needle in p.stderr and "Traceback" not in p.stderr and len(err) <= 3, p.stderr
