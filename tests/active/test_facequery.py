"""Queries over a face pool: face_doubt, diversity by track and embedding, hold-out never queried."""
from __future__ import annotations

import json

import numpy as np
import pytest

from visionlab.active import loop
from visionlab.active.facepool import load_faces
from visionlab.active.facequery import diversify, to_pool_probs
from visionlab.active.strategies import face_doubt_scores, select
from visionlab.errors import ConfigError


def test_face_doubt_ranks_by_distance_to_the_threshold():
    # last column: not a face; face probability = 1 - it
    p = np.array([[0.9, 0.1], [0.45, 0.55], [0.02, 0.98], [0.6, 0.4]])
    assert np.allclose(face_doubt_scores(p), [-0.4, -0.05, -0.48, -0.1])
    assert select("face_doubt", p, None, 2, np.random.default_rng(0)).tolist() == [1, 3]


def test_diversify_one_per_track_then_fills():
    emb = np.eye(6)  # all far apart
    tracks = ["a", "a", "a", "b", "c", "b"]
    assert diversify(np.arange(6), tracks, emb, 3).tolist() == [0, 3, 4]
    # a batch that would be short takes second faces of a track, in rank order
    assert diversify(np.arange(6), tracks, emb, 5).tolist() == [0, 3, 4, 1, 2]


def test_diversify_skips_near_copies():
    e = np.array([[1, 0, 0], [1, 0.01, 0], [0, 1, 0], [0, 0, 1]], float)
    assert diversify(np.arange(4), ["a", "b", "c", "d"], e, 3).tolist() == [0, 2, 3]
    assert diversify(np.arange(4), ["a", "b", "c", "d"], e, 4).tolist() == [0, 2, 3, 1]


def test_to_pool_probs_puts_background_last():
    p = np.array([[0.1, 0.2, 0.3, 0.4]])
    out = to_pool_probs(p, ["Background", "A", "B", "C"], ["A", "B", "C", "NotAFace"])
    assert out.tolist() == [[0.2, 0.3, 0.4, 0.1]]


@pytest.mark.parametrize("strategy", ["hybrid", "face_doubt", "margin", "kcenter", "random"])
def test_query_over_faces(face_project, strategy):
    q = loop.query(face_project, k=6, strategy=strategy)
    faces = {f["id"]: f for f in load_faces(face_project)}
    items = q["items"]
    assert len(items) == 6 and q["strategy"] == strategy
    assert not any(faces[it["face_id"]]["holdout"] for it in items)
    # diversity: one face per video track in a batch this pool can fill without repeats
    tracks = [it["context"]["track"] for it in items]
    assert len(set(tracks)) == len(tracks)
    for it in items:
        f = faces[it["face_id"]]
        assert it["path"] == f["path"] and it["sha256"] == f["sha256"]
        assert (face_project / it["context"]["frame"]).is_file()
        assert set(it["probs"]) == {"MaskWornIncorrectly", "WithMask", "WithoutMask", "NotAFace"}
    if strategy == "face_doubt":
        fp = [it["face_prob"] for it in items]
        others = [1 - f["probs"]["Background"] for f in faces.values() if not f["holdout"]]
        # the batch is the faces nearest 0.5 (up to diversity): its worst is nearer than the pool's median
        assert max(abs(v - 0.5) for v in fp) <= np.median([abs(v - 0.5) for v in others])
    assert json.loads((face_project / "queue.json").read_text())["items"] == items


def test_held_out_queue_is_only_held_out(face_project):
    q = loop.query(face_project, k=50, held_out=True)
    faces = {f["id"]: f for f in load_faces(face_project)}
    held = [f for f in faces.values() if f["holdout"]]
    assert q["strategy"] == "held_out" and len(q["items"]) == len(held)
    assert all(faces[it["face_id"]]["holdout"] for it in q["items"])


def test_bald_and_image_only_options_refused(face_project):
    with pytest.raises(ConfigError, match="MC-dropout"):
        loop.query(face_project, k=3, strategy="bald")


def test_identical_crops_are_queried_once(face_inputs, tmp_path):
    """The same photo given twice: its faces are two records with one content; a batch asks each once."""
    import shutil

    folder, _ = face_inputs
    twice = tmp_path / "twice"
    twice.mkdir()
    shutil.copy(folder / "maksssksksss627.jpg", twice / "a.jpg")
    shutil.copy(folder / "maksssksksss627.jpg", twice / "b.jpg")
    loop.init(photos=[twice], project=tmp_path / "p", holdout=0)
    faces = load_faces(tmp_path / "p")
    assert len({f["sha256"] for f in faces}) == len(faces) // 2
    q = loop.query(tmp_path / "p", k=len(faces), strategy="random")
    assert len(q["items"]) == len(faces) // 2 == len({it["sha256"] for it in q["items"]})
