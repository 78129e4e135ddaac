"""The service's engine: its warm-up frame holds no face, so a start classifies nothing but one small batch."""
from __future__ import annotations

import pytest

from visionlab.detect.config import DetectConfig
from visionlab.serve.engine import WARM_UP_FRAME, Engine

from .conftest import FACE_MODEL


def _crops_classified(engine: Engine) -> int:
    """Faces the engine's pipeline sent to the classifier on the warm-up frame (the classifier's own count)."""
    pipe = engine._pipeline()
    pipe.classifier.probs = None
    engine.predict(WARM_UP_FRAME)
    return 0 if pipe.classifier.probs is None else len(pipe.classifier.probs)


@pytest.mark.parametrize("quality", ["accurate", "fast"])
def test_warm_up_frame_holds_no_face_for_the_bundled_model(quality):
    engine = Engine(None, None, config=DetectConfig(quality=quality))
    faces, _ = engine.predict(WARM_UP_FRAME)
    assert faces == [] and _crops_classified(engine) == 0


def test_warm_up_frame_holds_no_face_for_opencv_yunet():
    if not FACE_MODEL.exists():
        pytest.skip(f"{FACE_MODEL} is absent")
    engine = Engine(None, FACE_MODEL)
    assert engine.predict(WARM_UP_FRAME)[0] == [] and _crops_classified(engine) == 0
    engine.warm_up()  # and the warm-up itself runs through
