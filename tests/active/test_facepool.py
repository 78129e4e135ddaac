"""The face pool: video sampling, crops cut with the pipeline's geometry, tracks, hold-out by photo, and the
user's files only ever read."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from visionlab.active import loop
from visionlab.active.facepool import holdout_groups, list_sources, load_faces, load_scores, sample_video
from visionlab.active.session import Project
from visionlab.detect.build import build_pipeline
from visionlab.detect.pipeline import square_crop
from visionlab.errors import DataError

from .conftest import snapshot, write_video


def test_sample_video_keeps_per_second_and_skips_still_frames(tmp_path):
    v = write_video(tmp_path / "v.mp4", still_s=2.0, pan_s=3.0, fps=10)
    kept = [(i, t) for i, t, _ in sample_video(v, 2.0, 2.0)]
    # 2 s still (samples at frames 0, 5, 10, 15 and the pan's first frame 20 are one picture) + pan samples 25..45
    assert kept == [(0, 0.0), (25, 2.5), (30, 3.0), (35, 3.5), (40, 4.0), (45, 4.5)]
    every = [i for i, _, _ in sample_video(v, 2.0, 0.0)]  # no difference test: every sample
    assert every == list(range(0, 50, 5))
    assert [i for i, _, _ in sample_video(v, 1.0, 0.0)] == list(range(0, 50, 10))


def test_list_sources_and_errors(face_inputs, tmp_path):
    folder, video = face_inputs
    kinds = {p.name: k for p, k in list_sources([folder])}
    assert kinds == {"maksssksksss627.jpg": "photo", "maksssksksss702.jpg": "photo", "clip.mp4": "video"}
    with pytest.raises(DataError, match="does not exist"):
        list_sources([tmp_path / "nope"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="neither a photo"):
        list_sources([tmp_path / "notes.txt"])


def test_face_pool_records(face_project, face_inputs):
    proj = Project(face_project)
    faces = load_faces(face_project)
    assert proj.is_faces and proj.classes == ["MaskWornIncorrectly", "WithMask", "WithoutMask", "NotAFace"]
    assert proj.round == 0 and proj.model_version == "r0"
    kinds = {f["kind"] for f in faces}
    assert kinds == {"photo", "video"}
    video = [f for f in faces if f["kind"] == "video"]
    # pic1's two people in 6 kept frames: every kept frame has them, linked into two tracks by IoU (other boxes,
    # such as a loose box around the cap that a model may take for a face, make short tracks of their own)
    frames = sorted({f["frame"] for f in video})
    assert frames == [0, 25, 30, 35, 40, 45]
    tracks: dict = {}
    for f in video:
        tracks.setdefault(f["track"], []).append(f)
    people = sorted(tracks.values(), key=len, reverse=True)[:2]
    assert all(sorted(f["frame"] for f in t) == frames and min(f["face_prob"] for f in t) >= 0.9 for t in people)
    assert all(len(t) <= 2 for t in sorted(tracks.values(), key=len, reverse=True)[2:])
    assert all(f["time_s"] == round(f["frame"] / 10, 3) for f in video)
    for f in faces:
        crop = proj.path / f["crop"]
        from visionlab.active.store import sha256_file
        assert sha256_file(crop) == f["sha256"]
        assert 0.2 <= f["face_prob"] <= 1.0  # the pool's floor
        assert abs(sum(f["probs"].values()) - 1) < 1e-3
        assert (proj.path / f["frame_image"]).is_file()
    # held-back faces are whole groups: a photo, or a 10 s stretch of the video
    held = {f["group"] for f in faces if f["holdout"]}
    assert held and all(f["holdout"] == (f["group"] in held) for f in faces)
    probs, emb, classes = load_scores(face_project, "r0")
    assert probs.shape == (len(faces), 4) and emb.shape == (len(faces), 1280)


def test_crop_is_the_pipelines_crop(face_project, face_inputs):
    """A photo's saved crop is the square the pipeline classifies (same margin, same place), at full size."""
    faces = [f for f in load_faces(face_project) if f["kind"] == "photo"]
    f = max(faces, key=lambda f: f["box"][2])
    bgr = cv2.imread(f["source"])
    pipe = build_pipeline(None, kind="image").pipeline
    x0, y0, side = square_crop(bgr, f["box"], pipe.margin)
    assert f["crop_box"] == [x0, y0, side, side]
    saved = cv2.imread(str(face_project / f["crop"]))
    assert saved.shape[:2] == (min(side, 256), min(side, 256))
    if side <= 256:
        assert np.array_equal(saved, bgr[y0:y0 + side, x0:x0 + side])


def test_user_files_only_read(face_inputs, tmp_path):
    folder, _ = face_inputs
    before = snapshot(folder)
    loop.init(photos=[folder], out=tmp_path / "p", holdout=0)
    assert snapshot(folder) == before
    assert not any(load_faces(tmp_path / "p")[i]["holdout"] for i in range(3))


def test_holdout_groups_share_and_seed():
    groups = [f"g{i}" for i in range(10)] * 3
    a, b = holdout_groups(groups, 0.2, 0), holdout_groups(groups, 0.2, 0)
    assert a == b and len(a) == 2
    assert holdout_groups(groups, 0.2, 1) != a or len(a) == 2
    assert holdout_groups(["one"] * 5, 0.5, 0) == set()  # one group: nothing could be trained on
    assert holdout_groups(groups, 0.0, 0) == set()


def test_init_cli_errors_are_one_line(tmp_path, capsys):
    from visionlab.active.cli import main

    with pytest.raises(SystemExit) as e:
        main(["init", str(tmp_path / "p"), "--photos", str(tmp_path / "missing")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0] and "does not exist" in err[0]
    assert not (tmp_path / "p" / "state.json").exists()
    with pytest.raises(SystemExit) as e:
        main(["init", str(tmp_path / "p"), "--photos", str(tmp_path), "--pool", str(tmp_path)])
    assert e.value.code == 2


def test_status_of_a_face_project(face_project):
    s = loop.status(face_project)
    faces = load_faces(face_project)
    assert s["face_pool"]["faces"] == len(faces) == s["pool_images"]
    assert s["face_pool"]["held_out"] == sum(f["holdout"] for f in faces) and s["face_pool"]["model"] == "bundled"
    assert s["round"] == 0 and [r["round"] for r in s["rounds"]] == [0]
