"""Keras 3 (torch backend) twins of the presets: trained by model.fit, evaluated through visionlab."""
import json
import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before the first keras import: its default backend is TensorFlow
pytest.importorskip("keras")

from visionlab.api import train  # noqa: E402
from visionlab.runs import load_run  # noqa: E402


def test_keras_cnn_trains_and_reloads(tmp_path):
    r = train(data="synthetic", synthetic_per_class=40, image_size=32, model="small_cnn", framework="keras",
              optimizer="adam", lr=0.003, epochs=2, batch_size=16, quiet=True, out=str(tmp_path / "k"))
    assert r.status == "ok" and len(r.history) == 2
    m = json.loads((r.path / "metrics.json").read_text())
    assert 0 <= m["test_acc"] <= 1 and (r.path / "model.keras").is_file() and (r.path / "report.html").is_file()
    loaded = load_run(r.path)
    import torch
    p = loaded.predict_proba(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    assert p.shape == (2, 2)

    # export is torch-only: alone or as an averaged model's member, one line and no file written
    from visionlab import export
    from visionlab.errors import ModelError

    before = sorted(p.name for p in r.path.rglob("*"))
    for average in ([], [r.path]):
        with pytest.raises(ModelError, match="is a Keras run: visionlab exports torch models only; use keras"):
            export(str(r.path), average=average)
    assert sorted(p.name for p in r.path.rglob("*")) == before
