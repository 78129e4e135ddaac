"""``visionlab detect IMAGES --truth boxes.csv|VOC_DIR``: detect on annotated photos and score the boxes.

Runs the same ``run_detection`` a user runs (annotated images and JSON lines included), then hands its JSON lines and
the annotations to ``evaluation.detection``: metrics.json, plots, galleries and report.html in the output folder.
``subset`` restricts the photos, e.g. ``crops/faces.json:Validation`` (the photo split ``visionlab data faces``
recorded) or a text file with one file name per line. ``slices`` is a tag file (evaluation/slices.py): recall and
precision per class on each kind of tagged face, in metrics.json and the report.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from ..errors import ConfigError, DataError


def read_subset(spec: str) -> set[str]:
    """File names from ``MANIFEST.json:SPLIT`` or a text file of names (one per line, ``#`` comments)."""
    head, sep, tail = spec.rpartition(":")
    path, split = (head, tail) if sep and head.lower().endswith(".json") else (spec, "")
    p = Path(path)
    if not p.is_file():
        raise DataError(f"--subset {spec}: {p} does not exist")
    if p.suffix.lower() == ".json":
        try:
            photos = json.loads(p.read_text(encoding="utf-8"))["photos"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise DataError(f"--subset {spec}: {p} is not a faces.json written by `visionlab data faces`") from None
        if not split:
            raise ConfigError(f"--subset {spec}: name the split, e.g. {p}:Validation")
        key = next((k for k in photos if k.lower() == split.lower()), None)
        if key is None:
            raise ConfigError(f"--subset {spec}: {p} has splits {', '.join(photos)}")
        return set(photos[key])
    names = {ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()}
    return {Path(n).name for n in names if n and not n.startswith("#")}


# `detect --truth` scores every box down to this face probability (ranked by probability x score), so a model whose
# face probabilities run low loses rank, not faces; what a user is shown is scored beside it ("shown")
SCORED_FACE_PROB = 0.05


def scoring_config(cfg):
    """``cfg`` as `detect --truth` runs it: the given min_face_prob, else SCORED_FACE_PROB."""
    return cfg.with_(min_face_prob=SCORED_FACE_PROB) if cfg.min_face_prob is None else cfg


def detect_and_evaluate(input: str | os.PathLike, config, out_dir: str | os.PathLike, truth: str | os.PathLike,
                        *, images: str | os.PathLike | None = None, subset: Optional[str] = None,
                        label_map: Optional[dict] = None, slices: str | os.PathLike | None = None,
                        classifier=None, **fields) -> dict:
    """Detect on the annotated photos in ``input`` (a folder or one image) as ``config`` (a ``DetectConfig``;
    ``fields`` change its fields) says, and evaluate against ``truth``. ``classifier``: a loaded one to use
    instead of ``config.model``. ``slices``: a tag file (evaluation/slices.py) for per-slice recall and precision.

    Returns the metrics (also in ``OUT/metrics.json``) with ``summary`` (the detection summary) and ``report``.
    """
    from ..data.boxes import read_annotations
    from ..evaluation.detection import add_slices, evaluate_detections, write_detection_report
    from ..inference.load import load_classifier
    from .config import make_config
    from .pipeline import JSONL_FILE, is_background
    from .run import run_detection

    cfg = make_config(config, **fields)

    src = Path(input)
    truths = read_annotations(truth, images if images is not None else (src if src.is_dir() else src.parent),
                              label_map)
    names = {t.path.name for t in truths}
    tags, tag_file = None, None
    if slices is not None:  # checked against every annotated face before anything is detected
        from ..evaluation.slices import box_tags, read_tag_file

        tag_file = read_tag_file(slices)
        tags = box_tags(tag_file, truths, truth)
    if subset is not None:
        keep = read_subset(subset)
        truths = [t for t in truths if t.path.name in keep]
        names &= keep
        if not truths:
            raise DataError(f"--subset {subset} names none of the annotated photos")
    if tags is not None and not any(image in names for image, _ in tags):
        raise DataError(f"--slices {slices} tags no face of the photos scored here"
                        f"{f' (--subset {subset})' if subset is not None else ''}")
    if src.is_dir():
        files = [t.path for t in truths if t.path.is_file()]
        if not files:
            raise DataError(f"no annotated photo of {truth} is in {src}")
    else:
        if src.name not in names:
            raise DataError(f"{src.name} has no boxes in {truth}")
        files = None
    run_dir = Path(cfg.model) if classifier is None and cfg.model is not None and Path(cfg.model).is_dir() else None
    if classifier is None:  # cfg.model None: the bundled model
        classifier = load_classifier(cfg.model, cfg.backend, cfg.threads)
    summary = run_detection(src, cfg, out_dir, classifier=classifier, files=files)
    out = Path(summary["out_dir"])  # a new sub-folder when out_dir already held files
    records = [json.loads(ln) for ln in (out / JSONL_FILE).read_text(encoding="utf-8").splitlines() if ln.strip()]
    classes = [c for c in classifier.classes if not is_background(c)]
    from ..inference.profile import read_profile
    from .build import shown_threshold
    from .config import DetectConfig

    prof = read_profile(cfg.profile) if cfg.profile is not None else classifier.profile
    # scored with every box; "shown" is what `visionlab detect` shows by default for this model
    m = evaluate_detections(records, truths, classes, shown_face_prob=shown_threshold(DetectConfig(), prof))
    if tags is not None:
        add_slices(m, tags, tag_file.names)
    m["summary"] = {k: summary[k] for k in ("processed", "faces", "labels", "seconds", "setting", "profile",
                                            "detector", "backend") if k in summary}
    report = write_detection_report(m, out)
    m["report"] = str(report)
    m["out_dir"] = str(out)
    if run_dir is not None:  # `visionlab compare` shows it beside the run's crop accuracy
        from ..io import write_json

        write_json(run_dir / "detection.json", {"map50": m["map50"], "map": m["map"],
                                                "ap50_per_class": m["ap50_per_class"], "face_recall": m["face_recall"],
                                                "truth": str(truth), "subset": subset or "", "photos": m["photos"],
                                                "report": str(report)})
    return m

