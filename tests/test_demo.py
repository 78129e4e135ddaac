"""`visionlab demo`, the README's first command: offline, bundled photos and model, then a small training run."""
from __future__ import annotations

import json
import subprocess
import sys


def test_demo_detects_in_bundled_photos_then_trains(tmp_path):
    p = subprocess.run([sys.executable, "-m", "visionlab", "demo", "--out", str(tmp_path / "demo"), "--epochs", "1",
                        "--quiet"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    root = tmp_path / "demo"
    assert p.stdout.startswith("model: bundled face-mask classifier")
    assert f"open {root / 'index.html'}" in p.stdout.replace("\n", "")
    lines = [json.loads(x) for x in (root / "detections" / "detections.jsonl").read_text().splitlines()]
    assert len(lines) == 4  # the bundled photos
    by_name = {ln["source"].rsplit("/", 1)[-1]: ln["faces"] for ln in lines}
    assert [f["label"] for f in by_name["pic1.jpeg"]] == ["WithMask", "WithMask"]
    assert sum(len(f) for f in by_name.values()) >= 25  # crowd photos: many faces found
    assert all((root / "detections" / n).is_file() for n in by_name)
    page = (root / "index.html").read_text()
    assert page.count("<img") == 4 and "mAP@0.5" in page and "classifier/report.html" in page
    from visionlab.assets import card

    test = card()["detection"]["Test"]  # the held-out figure and its interval, as the model card has them
    lo, hi = test["intervals"]["map50"]
    assert f"{test['map50']:.3f} [{lo:.3f}, {hi:.3f}] on the {test['photos']} held-out Test photos" in page
    m = json.loads((root / "classifier" / "metrics.json").read_text())
    assert m["test_acc"] > 0.5 and (root / "classifier" / "report.html").is_file()
