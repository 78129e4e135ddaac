"""``visionlab demo``: the flagship job, offline and with nothing to train first. (Not demo.py: importing a
submodule named demo would replace the function ``visionlab.demo`` on the package.)

1. Face-mask detection on the real photos visionlab ships (assets/photos: crowd photos from the CC0 face-mask box
   set, none of them in the bundled model's training split, and chandrikadeb7's pic1, MIT), with the bundled
   classifier and face detector: annotated photos, detections.jsonl, and a page (``index.html``) that shows them.
2. A small CNN trained and evaluated on the deterministic synthetic face-mask set (or on ``data``), with its own
   report, so the whole train -> evaluate -> report path runs too.
"""
from __future__ import annotations

import html
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .api import RunResult, train

LEGEND = [("WithMask", "#28aa28", "mask worn over nose and mouth"),
          ("WithoutMask", "#dc2828", "no mask"),
          ("MaskWornIncorrectly", "#f06e00", "mask below the nose or on the chin: not a mask"),
          ("unsure", "#ffb400", "too small or too close to call: best guess shown with '?'")]


@dataclass
class DemoResult(RunResult):
    root: Path = Path(".")
    report: Optional[Path] = None
    detection: dict = field(default_factory=dict)


def _page(root: Path, det: dict, records: list[dict], run: RunResult) -> Path:
    from .assets import card
    from .io import atomic_write_text

    c = card()
    parts = []  # mAP@0.5 of each split the card measured, with its interval where it has one
    for name, split in (("held-out Test", "Test"), ("Validation", "Validation")):
        d = c.get("detection", {}).get(split)
        if d:
            ci = d.get("intervals", {}).get("map50")
            parts.append(f"{d['map50']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
                         + f" on the {d['photos']} {name} photos")
    scores = " and ".join(parts)
    counts = Counter(f["label"] for r in records for f in r["faces"])
    legend = "".join(f"<li><span class='chip' style='background:{col}'></span><b>{html.escape(n)}</b>: "
                     f"{html.escape(t)} &mdash; {counts.get(n, 0)}</li>" for n, col, t in LEGEND)
    figs = []
    for r in records:
        name = Path(r["source"]).name
        per = Counter(f["label"] for f in r["faces"])
        cap = ", ".join(f"{k} {v}" for k, v in sorted(per.items())) or "no face found"
        figs.append(f"<figure><img src='detections/{html.escape(name)}' alt='{html.escape(name)}'>"
                    f"<figcaption>{html.escape(name)}: {len(r['faces'])} faces ({html.escape(cap)})</figcaption></figure>")
    acc = run.metrics.get("test_acc")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>visionlab demo</title><style>
body{{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5em auto;color:#222;padding:0 1em}}
figure{{display:inline-block;margin:8px;vertical-align:top;max-width:560px}}img{{max-width:560px;border:1px solid #ccc}}
figcaption{{font-size:.9em;color:#444}}.chip{{display:inline-block;width:.9em;height:.9em;margin-right:.4em;
vertical-align:middle;border-radius:2px}}ul{{list-style:none;padding:0}}code{{background:#f3f3f3;padding:1px 4px}}
</style></head><body>
<h1>visionlab demo: face masks in real photos</h1>
<p>{det['processed']} photos, {det['faces']} faces found and labelled in {det['seconds']:.1f} s by the bundled
classifier ({html.escape(c.get('architecture', ''))}, {c.get('image_size', '?')} px) and the bundled YuNet face detector,
offline. On annotated crowd photos it never trained on, mAP@0.5 is {html.escape(scores or 'not measured')} (95%
intervals; the two parts differ as much as cross-validation folds do: MODEL_CARD.md beside the model has every
figure).</p>
<ul>{legend}</ul>
{''.join(figs)}
<h2>Training a classifier yourself</h2>
<p>The second half of the demo trained a small CNN on {html.escape(str(run.path))}: test accuracy
{(acc or 0) * 100:.1f}%. Its report: <a href="{html.escape(str(Path(run.path).relative_to(root)))}/report.html">report.html</a>.</p>
<p>Your own photos: <code>visionlab detect photo.jpg</code>, a folder or a video the same way; a webcam page:
<code>visionlab serve</code>.</p>
</body></html>"""
    out = root / "index.html"
    atomic_write_text(out, page)
    return out


def demo(data: Optional[str] = None, out: Optional[str] = None, epochs: int = 6, quiet: bool = False) -> DemoResult:
    """Detect masks in the bundled photos, then train and evaluate a small classifier; returns where it all is."""
    from .assets import PHOTOS, demo_photos
    from .detect.run import run_detection

    root = Path(out) if out else Path(time.strftime("demo-%Y%m%d-%H%M%S"))
    from .outdir import make_folder

    make_folder(root, "--out")  # a file in the way or a read-only disk: one line
    photos = demo_photos()
    det: dict[str, Any] = {}
    records: list[dict] = []
    if photos:
        det = run_detection(PHOTOS, None, root / "detections", quality="accurate", show_progress=not quiet)
        lines = Path(det["jsonl"]).read_text(encoding="utf-8").splitlines()  # (a sub-folder if detections/ held files)
        records = [json.loads(x) for x in lines if x.strip()]
    fields: dict[str, Any] = dict(model="small_cnn", optimizer="adam", lr=0.002, batch_size=32, epochs=epochs,
                                  image_size=64, seed=0, out=str(root / "classifier"), quiet=quiet)
    if data:
        fields.update(data=data)
    else:
        fields.update(data="synthetic", synthetic_per_class=300)
    run = train(**fields)
    report = _page(root, det, records, run) if photos else None
    return DemoResult(run.path, run.status, run.history, run.metrics, root=root, report=report, detection=det)
