"""`visionlab serve` with no run folder: the bundled classifier and face detector, on a real server."""
from __future__ import annotations


from visionlab.assets import card, default_classifier
from visionlab.inference.backends import OnnxClassifier

from .conftest import start_server


def _bundled_face_model() -> str:
    return OnnxClassifier(default_classifier()).profile.face_model or "face_detection_yunet_2026may.onnx"


def test_serve_with_nothing_uses_the_bundled_model(tmp_path, scene):
    srv = start_server([], tmp_path / "server.log")
    try:
        with srv.client() as c:
            info = c.get("/v1/model").json()
            assert info["run"] == "facemask_classifier.onnx"
            assert info["classes"] == ["MaskWornIncorrectly", "WithMask", "WithoutMask"]  # no Background
            assert 0.5 < info["metrics"]["map50"] == card()["detection"]["Validation"]["map50"] <= 1
            assert info["detector"]["model_file"] == _bundled_face_model()  # the one its profile names
            assert info["backbone"] == card().get("model", "efficientnet_lite0")
            with open(scene, "rb") as f:
                r = c.post("/v1/predict", files={"file": ("pic1.jpeg", f, "image/jpeg")},
                           params={"annotated": "true", "blur": "blur"})
            assert r.status_code == 200
            faces = r.json()["faces"]
            assert [f["label"] for f in faces] == ["WithMask", "WithMask"]
            assert set(faces[0]["probs"]) == {"MaskWornIncorrectly", "WithMask", "WithoutMask"}
            assert r.json()["annotated_jpeg"]
        assert "serving the bundled face-mask classifier" in (tmp_path / "server.log").read_text()
    finally:
        srv.stop()
