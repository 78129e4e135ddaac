"""run_detection on a video: the summary, a zone, blurred frames and --no-save-frames, wired end to end."""
from __future__ import annotations

import csv
import json

import cv2
import numpy as np

from visionlab.detect import run_detection

from .conftest import shared_file


def _clip(path, n_faces=20, n_empty=10, size=(640, 418)):
    pic = cv2.resize(cv2.imread(str(shared_file("data", "scenes", "pic1.jpeg"))), size)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
    for i in range(n_faces + n_empty):
        w.write(pic if i < n_faces else np.full_like(pic, 128))
    w.release()


def test_video_summary_zone_blur_and_no_frames(tmp_path, yunet_path, tiny_classifier):
    clip = tmp_path / "door.mp4"
    _clip(clip)
    s = run_detection(clip, None, tmp_path / "a", classifier=tiny_classifier, face_model=yunet_path, show_progress=False, min_face=0)
    t = s["summary"]
    assert t["frames"] == 30 and t["faces"] == 40 and t["bin_seconds"] == 1.0  # 2 faces x 20 frames, 3 s clip
    assert t["people"]["count"] == 2  # two people standing still: two tracks
    rows = list(csv.DictReader(open(tmp_path / "a" / "summary.csv")))
    assert [int(r["faces"]) for r in rows] == [20, 20, 0]
    assert (tmp_path / "a" / "summary.png").stat().st_size > 5000 and s["faces_stored"] == "unblurred"
    lines = [json.loads(x) for x in (tmp_path / "a" / "detections.jsonl").read_text().splitlines()]
    assert {f["track"] for ln in lines for f in ln["faces"]} == {0, 1}

    # only the left half counts: the man on the left
    z = run_detection(clip, None, tmp_path / "b", classifier=tiny_classifier, face_model=yunet_path, show_progress=False, min_face=0,
                      zone="0,0,320,418", blur=True)
    assert z["summary"]["faces"] == 20 and z["summary"]["people"]["count"] == 1
    assert z["faces_stored"] == "blurred"
    cap = cv2.VideoCapture(str(tmp_path / "b" / "door.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    face = lines[0]["faces"][0]["box"]
    x, y, w, h = face
    orig = cv2.resize(cv2.imread(str(shared_file("data", "scenes", "pic1.jpeg"))), (640, 418))
    inner = (slice(y + h // 4, y + 3 * h // 4), slice(x + w // 4, x + 3 * w // 4))
    lap = lambda im: cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()  # noqa: E731
    assert lap(frame[inner]) < 0.2 * lap(orig[inner])  # the face's detail is gone in the saved video

    n = run_detection(clip, None, tmp_path / "c", classifier=tiny_classifier, face_model=yunet_path, show_progress=False,
                      save_frames=False)
    assert n["video"] is None and n["faces_stored"] == "none"
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["detections.jsonl", "summary.csv", "summary.json",
                                                                  "summary.png"]
    totals = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert totals["faces"] == 40 and totals["people"]["count"] == 2 and "mask_rate_ci" in totals
