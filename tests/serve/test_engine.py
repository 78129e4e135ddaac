"""The service's engine: its warm-up frame holds no face, so a start classifies nothing but one small batch."""
from __future__ import annotations

import pytest

from visionlab.detect.config import DetectConfig
from visionlab.serve.engine import WARM_UP_FRAME, Engine

from .conftest import FACE_MODEL


def _predict_warm_up_frame(engine: Engine) -> tuple[list, int]:
    """The engine's faces on the warm-up frame, and how many crops its pipeline sent to the classifier (``predict``
    clears the classifier's last probabilities first, so None means none)."""
    faces, _ = engine.predict(WARM_UP_FRAME)
    probs = engine._pipeline().classifier.probs
    return faces, 0 if probs is None else len(probs)


@pytest.mark.parametrize("quality", ["accurate", "fast"])
def test_warm_up_frame_holds_no_face_for_the_bundled_model(quality):
    engine = Engine(None, None, config=DetectConfig(quality=quality))
    assert _predict_warm_up_frame(engine) == ([], 0)


def test_warm_up_frame_holds_no_face_for_opencv_yunet():
    if not FACE_MODEL.exists():
        pytest.skip(f"{FACE_MODEL} is absent")
    engine = Engine(None, FACE_MODEL)
    assert _predict_warm_up_frame(engine) == ([], 0)
    engine.warm_up()  # and the warm-up itself runs through
