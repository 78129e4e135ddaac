"""Averaged classifiers (inference/average.py) as a user makes them: two small runs trained for real, `visionlab
export RUN --average RUN2`, then loaded from the first file: the probabilities are the mean of the members' (and of
the torch models'), photos use all members and video the first alone; what cannot be averaged is one line."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from visionlab.errors import ModelError
from visionlab.inference.average import AveragedClassifier, networks
from visionlab.inference.backends import OnnxClassifier
from visionlab.inference.load import load_classifier

VL = [sys.executable, "-m", "visionlab"]


def vl(*args):
    return subprocess.run([*VL, *args], capture_output=True, text=True, timeout=600)


def train(out, seed: int, size: int = 32):
    p = vl("train", "--data", "synthetic", "--synthetic-per-class", "20", "--image-size", str(size), "--model",
           "small_cnn", "--epochs", "1", "--quiet", "--threads", "1", "--seed", str(seed), "--out", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("average")
    return [train(d / f"run{s}", s) for s in (0, 1, 2)]


def crops(n: int = 6, size: int = 32) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 3, size, size), dtype=np.uint8)


def test_export_average_then_load_gives_the_mean_of_the_members(runs, tmp_path):
    p = vl("export", str(runs[0]), "--average", str(runs[1]), "--average", str(runs[2]), "--out",
           str(tmp_path / "avg" / "masks.onnx"))
    assert p.returncode == 0 and "averaged with 2 more" in p.stdout, p.stdout + p.stderr
    files = sorted(f.name for f in (tmp_path / "avg").iterdir())
    assert files == ["masks-2.onnx", "masks-3.onnx", "masks.onnx"]
    clf = load_classifier(tmp_path / "avg" / "masks.onnx")
    assert isinstance(clf, AveragedClassifier) and len(clf.members) == 3
    members = [OnnxClassifier(tmp_path / "avg" / f) for f in ("masks.onnx", "masks-2.onnx", "masks-3.onnx")]
    x = crops()
    got = clf.predict_proba(x)
    each = [m.predict_proba(x) for m in members]
    np.testing.assert_allclose(got, np.mean(each, axis=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got.sum(1), 1, rtol=1e-5)
    assert not np.allclose(each[0], each[1], atol=1e-3)  # other seeds: other models, so the mean is neither
    from visionlab.runs import load_run

    with torch.no_grad():  # and the mean of the runs' own torch models
        ref = np.mean([torch.softmax(load_run(r).model.eval()(torch.from_numpy(x).float()), 1).numpy()
                       for r in runs], axis=0)
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert clf.classes == members[0].classes and clf.image_size == 32
    from visionlab.active.facemodel import FaceModel  # the active-learning face pool labels faces as photos are

    fm = FaceModel(tmp_path / "avg" / "masks.onnx")
    np.testing.assert_allclose(fm(x)[0], got, atol=1e-6)
    assert fm.path == tmp_path / "avg" / "masks.onnx"  # the first network: its embedding, a retrain's start


def test_photos_use_every_member_and_video_the_first(runs, tmp_path):
    from visionlab.detect.build import build_pipeline
    from visionlab.detect.faces import HaarDetector

    path = tmp_path / "m.onnx"
    assert vl("export", str(runs[0]), "--average", str(runs[1]), "--out", str(path)).returncode == 0
    clf = load_classifier(path)
    photo = build_pipeline(classifier=clf, detector=HaarDetector(), kind="image")
    video = build_pipeline(classifier=clf, detector=HaarDetector(), kind="video")
    assert photo.setting == "accurate" and photo.pipeline.classifier is clf
    assert video.setting == "fast" and video.pipeline.classifier is clf.first
    assert video.pipeline.classifier.source == str(path)


def test_what_cannot_be_averaged_is_one_line_and_nothing_is_written(runs, tmp_path):
    other = train(tmp_path / "r48", 0, size=48)
    p = vl("export", str(runs[0]), "--average", str(other), "--out", str(tmp_path / "a" / "m.onnx"))
    assert p.returncode != 0 and "only models of the same classes and input size" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "a").exists()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "m-2.onnx").write_text("mine\n")  # a user's file where the second member would go
    p = vl("export", str(runs[0]), "--average", str(runs[1]), "--out", str(tmp_path / "b" / "m.onnx"))
    assert p.returncode != 0 and "already exists" in p.stderr and "Traceback" not in p.stderr
    assert sorted(f.name for f in (tmp_path / "b").iterdir()) == ["m-2.onnx"]
    assert (tmp_path / "b" / "m-2.onnx").read_text() == "mine\n"


def test_a_missing_member_or_a_bad_name_is_one_line(runs, tmp_path):
    from visionlab.inference.export import export_onnx
    from visionlab.runs import load_run

    path = tmp_path / "m.onnx"
    assert vl("export", str(runs[0]), "--average", str(runs[1]), "--out", str(path)).returncode == 0
    (tmp_path / "m-2.onnx").unlink()
    with pytest.raises(ModelError, match="averaged with m-2.onnx, which is not beside it"):
        load_classifier(path)
    r = load_run(runs[0])
    for bad in (["../elsewhere.onnx"], ["notes.txt"]):
        export_onnx(r.model, r.image_size, r.classes, tmp_path / "bad.onnx", average_with=bad)
        with pytest.raises(ModelError, match="not a list of .onnx file names beside it"):
            load_classifier(tmp_path / "bad.onnx")
        (tmp_path / "bad.onnx").unlink()


def test_the_bundled_model_and_its_mirrored_twin_average_to_their_mean():
    """Two real classifiers (the bundled ONNX model, and the same seeing each crop mirrored): the mean of theirs,
    still summing to 1, with the first's classes, size and profile; members of other classes are one line."""
    one = networks(load_classifier(None, "onnx", 1))[0]

    class Mirrored:
        classes, image_size, profile, backend, source = one.classes, one.image_size, None, "onnx", "mirrored"

        def predict_proba(self, batch):
            return one.predict_proba(np.ascontiguousarray(batch[..., ::-1]))

    x = crops(5, one.image_size)
    ens = AveragedClassifier([one, Mirrored()])
    p = ens.predict_proba(x)
    np.testing.assert_allclose(p, (one.predict_proba(x) + Mirrored().predict_proba(x)) / 2, rtol=1e-6)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
    assert not np.allclose(p, one.predict_proba(x))
    assert (ens.classes, ens.image_size, ens.profile, ens.first) == (one.classes, one.image_size, one.profile, one)
    assert networks(ens) == [one, ens.members[1]] and networks(one) == [one]

    class Other(Mirrored):
        classes, source = ["a", "b"], "other.onnx"

    with pytest.raises(ModelError, match="other.onnx has classes"):
        AveragedClassifier([one, Other()])
    with pytest.raises(ModelError, match="at least two members"):
        AveragedClassifier([one])
