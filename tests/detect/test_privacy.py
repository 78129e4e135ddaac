"""Blurred and pixelated faces on a real photo: the detail is gone, YuNet no longer finds them, the rest of the
photo is untouched, and the label frame drawn afterwards stays visible."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from visionlab.detect import build_detector
from visionlab.detect.pipeline import GREEN, FaceResult, draw_results
from visionlab.detect.privacy import BLUR_MODES, anonymize, grown_box
from visionlab.errors import ConfigError


def lap_var(bgr: np.ndarray) -> float:
    """Variance of the Laplacian: the high-frequency energy (edges of eyes, mouth, hair) of a crop."""
    return float(cv2.Laplacian(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


@pytest.fixture(scope="module")
def faces(yunet, pic1):
    found = yunet.detect(pic1)
    assert len(found) == 2
    return found


@pytest.mark.parametrize("mode", BLUR_MODES)
def test_an_anonymized_face_is_no_longer_a_face(mode, pic1, faces, yunet_path):
    before = pic1.copy()
    out = anonymize(pic1, faces, mode)
    assert np.array_equal(pic1, before) and out is not pic1  # a copy; the input is untouched
    low = build_detector("yunet", model_path=yunet_path, score_threshold=0.3)  # far below the 0.7 default
    assert low.detect(out) == []
    for f in faces:
        x, y, w, h = f.box
        orig, anon = pic1[y:y + h, x:x + w], out[y:y + h, x:x + w]
        if mode == "blur":
            assert lap_var(anon) < 0.2 * lap_var(orig)  # more than 80% of the detail gone (in fact > 99%)
        else:
            # a few large blocks, each one flat colour: the edges left are the blocks', not the face's
            assert len(np.unique(anon.reshape(-1, 3), axis=0)) <= 49
            lo, la = cv2.Laplacian(orig, cv2.CV_64F), cv2.Laplacian(anon, cv2.CV_64F)
            assert abs(np.corrcoef(lo.ravel(), la.ravel())[0, 1]) < 0.1
        # the face does not match its original any more
        assert np.abs(anon.astype(int) - orig.astype(int)).mean() > 10


@pytest.mark.parametrize("mode", BLUR_MODES)
def test_pixels_outside_the_grown_boxes_are_unchanged(mode, pic1, faces):
    out = anonymize(pic1, faces, mode)
    inside = np.zeros(pic1.shape[:2], bool)
    for f in faces:
        x0, y0, x1, y1 = grown_box(f.box, pic1.shape)
        inside[y0:y1, x0:x1] = True
        x, y, w, h = f.box  # about 10% of the box on each side
        assert x0 == int(np.floor(x - 0.1 * w)) and y1 == int(np.ceil(y + 1.1 * h))
    assert np.array_equal(out[~inside], pic1[~inside])
    assert (out[inside] != pic1[inside]).any(axis=1).mean() > 0.5


def test_the_label_frame_drawn_afterwards_stays_visible(pic1, faces):
    results = [FaceResult(f.box, "WithMask", 0.99, f.score, "WithMask") for f in faces]
    out = draw_results(anonymize(pic1, results, "blur"), results)
    for r in results:
        x, y, w, h = r.box
        assert tuple(out[y + h // 2, x]) == GREEN and tuple(out[y + h, x + w // 2]) == GREEN  # the box's edges
        assert tuple(out[y - 8, x + 4]) == GREEN  # the label's background above the box


def test_boxes_as_dicts_or_tuples_and_bad_input(pic1, faces):
    dicts = anonymize(pic1, [{"box": list(f.box)} for f in faces], "pixelate")
    tuples = anonymize(pic1, [f.box for f in faces], "pixelate")
    assert np.array_equal(dicts, tuples)
    assert np.array_equal(anonymize(pic1, [], "blur"), pic1)
    assert np.array_equal(anonymize(pic1, [(5000, 5000, 10, 10)]), pic1)  # a box off the image: nothing to do
    small = anonymize(pic1, [(0, 0, 3, 3)])  # a tiny box at the corner is handled, not an error
    assert small.shape == pic1.shape
    with pytest.raises(ConfigError, match="choose one of: blur, pixelate"):
        anonymize(pic1, faces, "mosaic")


def test_the_first_output_line_says_whether_faces_are_stored():
    from visionlab.detect.privacy import faces_stored, storage_notice

    assert [faces_stored(b, s) for b, s in ((None, True), ("blur", True), ("pixelate", True), ("blur", False))] == \
        ["unblurred", "blurred", "pixelated", "none"]
    assert storage_notice(None).startswith("faces stored: yes, unblurred")
    assert storage_notice("pixelate").startswith("faces stored: pixelated (--pixelate)")
    assert storage_notice("blur").startswith("faces stored: blurred (--blur)")
    assert storage_notice(None, save_frames=False).startswith("faces stored: none (--no-save-frames)")
    for line in (storage_notice(None), storage_notice("blur"), storage_notice("blur", False)):
        assert "\n" not in line
    with pytest.raises(ConfigError):
        storage_notice("mosaic")
