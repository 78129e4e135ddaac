"""Three face classes and a background class in the pipeline: colours, rejection, probabilities, profiles."""
from __future__ import annotations

import json

import numpy as np
import pytest

from visionlab.detect.pipeline import (AMBER, GREEN, ORANGE, RED, UNSURE, DetectionPipeline, label_color,
                                       mask_status)
from visionlab.errors import ConfigError, ModelError

CLASSES4 = ["Background", "MaskWornIncorrectly", "WithMask", "WithoutMask"]


class FixedClassifier:
    """A classifier that answers the same probabilities for every crop (the protocol, no model behind it)."""

    def __init__(self, probs, classes=CLASSES4, image_size=32):
        self.classes, self.image_size, self.probs = list(classes), image_size, np.asarray(probs, np.float32)
        self.profile, self.backend, self.source = None, "fixed", "test"

    def predict_proba(self, batch):
        return np.tile(self.probs, (len(batch), 1))


def test_a_mask_under_the_nose_is_not_a_mask():
    for name in ("MaskWornIncorrectly", "mask_weared_incorrect", "mask_worn_incorrectly", "MaskOnChin"):
        assert mask_status(name) == "incorrect" and label_color(name) == ORANGE
    assert mask_status("WithMask") == "mask" and label_color("with_mask") == GREEN
    assert mask_status("WithoutMask") == "no_mask" and label_color("no_mask") == RED
    assert mask_status("cat") == "other" and label_color(UNSURE) == AMBER


def test_the_background_class_rejects_boxes_and_the_rest_is_renormalised(yunet, pic1):
    keep = DetectionPipeline(yunet, FixedClassifier([0.2, 0.1, 0.6, 0.1]), min_face=0)(pic1)
    assert len(keep) == 2
    r = keep[0]
    assert r.guess == "WithMask" and r.label == "WithMask"
    assert r.confidence == pytest.approx(0.6 / 0.8) and r.face == pytest.approx(0.8)
    assert set(r.probs) == {"MaskWornIncorrectly", "WithMask", "WithoutMask"}  # no background in a face's probs
    d = r.to_dict()
    assert d["probs"]["WithMask"] == pytest.approx(0.6) and d["unsure"] is False and d["face"] == pytest.approx(0.8)
    gone = DetectionPipeline(yunet, FixedClassifier([0.7, 0.1, 0.1, 0.1]), min_face=0)(pic1)
    assert gone == []  # P(face) 0.3 < min_face_prob 0.5
    low = DetectionPipeline(yunet, FixedClassifier([0.7, 0.1, 0.1, 0.1]), min_face=0, min_face_prob=0.2)(pic1)
    assert len(low) == 2


def test_three_classes_are_unsure_by_confidence_not_by_a_positive_band(yunet, pic1):
    flat = DetectionPipeline(yunet, FixedClassifier([0.0, 0.3, 0.4, 0.3]), min_face=0)(pic1)
    assert {r.label for r in flat} == {UNSURE} and {r.guess for r in flat} == {"WithMask"}
    sure = DetectionPipeline(yunet, FixedClassifier([0.0, 0.8, 0.1, 0.1]), min_face=0)(pic1)
    assert {r.label for r in sure} == {"MaskWornIncorrectly"}
    with pytest.raises(ModelError):
        DetectionPipeline(yunet, FixedClassifier([1.0], classes=["Background"]))


def test_a_profile_sets_upscale_threshold_and_box_correction(tmp_path, yunet_path, pic1_path):
    from visionlab.detect import run_detection
    from visionlab.inference.profile import read_profile

    coef = np.zeros((4, 13))
    intercept = [0.0, 0.1, 0.0, 0.0]  # move every box down by 10% of its height
    prof = {"upscale": 1.0, "score_threshold": 0.5, "margin": 0.3,
            "box_correction": {"features": "landmarks-rel-v1", "coef": coef.tolist(), "intercept": intercept}}
    (tmp_path / "detect.json").write_text(json.dumps(prof))
    clf = FixedClassifier([0.0, 0.0, 1.0, 0.0])
    plain = run_detection(pic1_path, None, tmp_path / "a", classifier=clf, face_model=yunet_path, show_progress=False, min_face=0)
    fixed = run_detection(pic1_path, None, tmp_path / "b", classifier=clf, face_model=yunet_path, show_progress=False, min_face=0,
                          profile=tmp_path / "detect.json")
    assert plain["setting"] == "default" and fixed["setting"] == "accurate"
    a = [json.loads(x)["faces"] for x in (tmp_path / "a" / "detections.jsonl").read_text().splitlines()][0]
    b = [json.loads(x)["faces"] for x in (tmp_path / "b" / "detections.jsonl").read_text().splitlines()][0]
    assert len(a) == len(b) == 2
    for fa, fb in zip(sorted(a, key=lambda f: f["box"][0]), sorted(b, key=lambda f: f["box"][0])):
        dy = fb["box"][1] - fa["box"][1]
        assert 0.05 * fa["box"][3] < dy < 0.15 * fa["box"][3]  # moved down by about 10% of the face
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelError, match="bad.json is unreadable"):
        read_profile(tmp_path / "bad.json")
    prof["box_correction"]["coef"] = [[1.0]]
    (tmp_path / "bad2.json").write_text(json.dumps(prof))
    with pytest.raises(ModelError, match="expected"):
        read_profile(tmp_path / "bad2.json")


def test_a_profile_sets_what_is_shown_and_weighs_the_labels(tmp_path, yunet_path, pic1_path):
    """The profile's min_face_prob and class_weights (chosen on unseen photos) are the defaults; --min-face-prob
    still wins; the probabilities written stay the classifier's own."""
    import cv2

    from visionlab.detect.build import build_pipeline
    from visionlab.inference.profile import DetectProfile, read_profile

    clf = FixedClassifier([0.6, 0.15, 0.2, 0.05])  # P(face) 0.4; WithMask ahead of worn-incorrectly
    prof = {"upscale": 1.0, "score_threshold": 0.5, "margin": 0.2, "min_face_prob": 0.3,
            "class_weights": {"MaskWornIncorrectly": 2.0, "WithMask": 1.0, "WithoutMask": 1.0}}
    (tmp_path / "detect.json").write_text(json.dumps(prof))
    assert read_profile(tmp_path / "detect.json").to_dict()["class_weights"]["MaskWornIncorrectly"] == 2.0
    assert "min_face_prob" not in DetectProfile().to_dict()  # an older profile reads and writes as before
    got = build_pipeline(None, classifier=clf, face_model=yunet_path, profile=tmp_path / "detect.json",
                         min_face=0).pipeline(cv2.imread(str(pic1_path)))
    assert len(got) == 2  # 0.4 >= the profile's 0.3 (the plain default 0.5 would drop both)
    assert {r.guess for r in got} == {"MaskWornIncorrectly"}  # 0.15 x 2 > 0.2
    assert got[0].confidence == pytest.approx(0.3 / (0.3 + 0.2 + 0.05))
    assert got[0].probs["WithMask"] == pytest.approx(0.2)
    strict = build_pipeline(None, classifier=clf, face_model=yunet_path, profile=tmp_path / "detect.json",
                            min_face=0, min_face_prob=0.5).pipeline(cv2.imread(str(pic1_path)))
    assert strict == []


def test_a_profile_sets_the_fast_settings_threshold():
    """fast_score_threshold (chosen on the folds' video-setting scores) is the fast setting's detector threshold;
    without it the fast setting keeps its rule (the profile's threshold, at least 0.5); accurate is unchanged."""
    from visionlab.inference.profile import FAST_MIN_THRESHOLD, DetectProfile

    old = DetectProfile(score_threshold=0.15, upscale=2.0)
    assert old.detector_options("fast")["score_threshold"] == FAST_MIN_THRESHOLD == 0.5
    assert "fast_score_threshold" not in old.to_dict()
    new = DetectProfile.from_dict({**old.to_dict(), "fast_score_threshold": 0.3})
    assert new.detector_options("fast")["score_threshold"] == 0.3 and new.detector_options("fast")["upscale"] == 1.0
    assert new.detector_options("accurate")["score_threshold"] == 0.15
    assert new.detector_options("auto", kind="video")["score_threshold"] == 0.3
    assert DetectProfile.from_dict(new.to_dict()) == new
    with pytest.raises(ModelError, match="unreadable"):
        DetectProfile.from_dict({**old.to_dict(), "fast_score_threshold": "high"})


def test_a_profile_sets_the_accurate_settings_box_merge_and_mirror_search():
    """box_merge and mirror_search are the accurate setting's (the fast one keeps one NMS search: its frame rate);
    written only when set, so older profiles read back the same; a merge this visionlab does not know is one
    ModelError; a DetectConfig value wins over the profile's."""
    from visionlab.detect.build import detector_options
    from visionlab.detect.config import make_config
    from visionlab.inference.profile import DetectProfile

    old = DetectProfile(score_threshold=0.15, upscale=2.0)
    assert "box_merge" not in old.to_dict() and "mirror_search" not in old.to_dict()
    assert old.detector_options("accurate")["box_merge"] == "nms"
    new = DetectProfile.from_dict({**old.to_dict(), "box_merge": "wbf", "mirror_search": True})
    acc, fast = new.detector_options("accurate"), new.detector_options("fast")
    assert (acc["box_merge"], acc["mirror_search"]) == ("wbf", True)
    assert "box_merge" not in fast and "mirror_search" not in fast
    assert DetectProfile.from_dict(new.to_dict()) == new
    with pytest.raises(ModelError, match="box merge 'soft'"):
        DetectProfile.from_dict({**old.to_dict(), "box_merge": "soft"})
    cfg = make_config(None, box_merge="nms", mirror_search=False, detector="yunet_ort")
    opts = detector_options(cfg, new, "accurate", "image")
    assert (opts["box_merge"], opts["mirror_search"]) == ("nms", False)
    with pytest.raises(ConfigError, match="box-merge"):
        detector_options(make_config(None, detector="haar", box_merge="wbf"), None, "accurate", "image")


def _held(a, b) -> float:
    """Share of the smaller of two (x, y, w, h) boxes' area that they have in common."""
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / min(a[2] * a[3], b[2] * b[3])


def test_a_loose_box_around_a_face_found_at_another_scale_is_dropped(pic1):
    """pic1 through YuNet_n at 1x + 2x, threshold 0.15: the enlarged photo adds a loose low-score box around the
    capped head (it holds most of her face box, IoU ~0.27, so NMS keeps it). ``detect`` gives that face once and
    keeps every other box; ``detect_raw`` (what `data faces` matches to annotations) still has it."""
    from visionlab.assets import YUNET_N
    from visionlab.detect import build_detector

    det = build_detector("yunet_ort", model_path=YUNET_N, score_threshold=0.15, upscale=2.0)
    raw = [((r[0], r[1], r[2], r[3]), r[14]) for r in det.detect_raw(pic1)]
    loose = [s for b, s in raw if any(t > s and _held(b, c) >= 0.7 for c, t in raw)]
    assert len(loose) == 1 and loose[0] < 0.3
    faces = det.detect(pic1)
    assert len(faces) == len(raw) - 1 and loose[0] not in {f.score for f in faces}
    assert all(_held(a.box, b.box) < 0.7 for a in faces for b in faces if a is not b)
    got = DetectionPipeline(det, FixedClassifier([0.0, 0.0, 1.0, 0.0]), min_face=0)(pic1)
    assert sorted(r.score for r in got) == sorted(f.score for f in faces)
    every = build_detector("yunet_ort", model_path=YUNET_N, score_threshold=0.15, upscale=2.0, contained=None)
    assert len(every.detect(pic1)) == len(raw)  # as `data faces` cuts one-face photos: every box kept
