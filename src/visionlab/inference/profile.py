"""How the face detector runs for a given face classifier: upscale, threshold, box correction, crop margin.

``visionlab data faces`` writes ``detect.json`` beside the crops it cuts; a run trained on that folder keeps a copy
(``RUN/detect.json``) and its ONNX export carries it in the metadata (``visionlab.detect_profile``), so the
pipeline crops faces at inference exactly as they were cut for training. Two settings:

- ``accurate`` (default for photos and folders): the profile as written, e.g. the photo upscaled 3x for YuNet and
  a low threshold whose extra boxes the classifier's ``Background`` class rejects.
- ``fast`` (default for video and cameras): the photo as it is and a threshold of at least 0.5; the box correction
  still applies (it costs a matrix product).

A classifier without a profile keeps the earlier behaviour: YuNet at 0.7 on the frame as it is.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from ..errors import ConfigError, ModelError

PROFILE_FILE = "detect.json"
META_KEY = "visionlab.detect_profile"
Quality = Literal["auto", "accurate", "fast"]
FAST_MIN_THRESHOLD = 0.5


@dataclass
class DetectProfile:
    upscale: float = 1.0
    score_threshold: float = 0.7
    margin: float = 0.2
    box_correction: Optional[dict] = None
    source: str = ""
    tta: bool = False  # accurate setting: average each face crop with its mirror image
    detector: str = "yunet"  # the face detector the crops were cut with (a FACE_DETECTORS name)
    face_model: Optional[str] = None  # a face model visionlab bundles, by file name (None: the default YuNet)
    tile: int = 0  # accurate setting: search the enlarged photo in tiles of this many px (0: whole)
    # what a user sees, chosen on photos never trained on (evaluation/calibration.py); None: 0.5 and plain argmax
    min_face_prob: Optional[float] = None
    class_weights: Optional[dict] = None
    # fast setting's detector threshold, chosen on the folds' video-setting scores; None: FAST_MIN_THRESHOLD rule
    fast_score_threshold: Optional[float] = None
    # accurate setting: how the searches' boxes are merged (nms, wbf) and whether the mirrored photo is searched too
    box_merge: str = "nms"
    mirror_search: bool = False

    @classmethod
    def from_dict(cls, d: dict, source: str = "") -> "DetectProfile":
        try:
            p = cls(float(d.get("upscale", 1.0)), float(d.get("score_threshold", 0.7)), float(d.get("margin", 0.2)),
                    d.get("box_correction"), source, bool(d.get("tta", False)), str(d.get("detector", "yunet")),
                    d.get("face_model"), int(d.get("tile", 0)),
                    None if d.get("min_face_prob") is None else float(d["min_face_prob"]),
                    None if d.get("class_weights") is None else {str(k): float(v)
                                                                 for k, v in d["class_weights"].items()},
                    None if d.get("fast_score_threshold") is None else float(d["fast_score_threshold"]),
                    str(d.get("box_merge", "nms")), bool(d.get("mirror_search", False)))
        except (TypeError, ValueError, AttributeError) as e:
            raise ModelError(f"unreadable detection profile {source} ({e}); rebuild it with `visionlab data faces`") \
                from None
        from ..boxes import MERGES

        if p.box_merge not in MERGES:
            raise ModelError(f"detection profile {source} names box merge {p.box_merge!r}; this visionlab knows "
                             f"{', '.join(MERGES)}")
        if p.box_correction is not None:
            from ..boxes import BoxCorrection

            BoxCorrection.from_dict(p.box_correction)  # fail now, with the file's name, not at the first face
        if p.face_model is not None:
            from ..assets import is_bundled

            if not is_bundled(str(p.face_model)):
                raise ModelError(f"detection profile {source} names face model {p.face_model!r}, which visionlab does "
                                 f"not bundle; pass --face-model PATH or rebuild it with `visionlab data faces`")
        return p

    def to_dict(self) -> dict:
        d = {"detector": self.detector, "upscale": self.upscale, "score_threshold": self.score_threshold,
             "margin": self.margin, "box_correction": self.box_correction, "tta": self.tta}
        if self.face_model:  # written only when set: profiles made before these fields read back the same
            d["face_model"] = self.face_model
        if self.tile:
            d["tile"] = self.tile
        for k in ("min_face_prob", "class_weights", "fast_score_threshold"):  # written only when chosen, likewise
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        if self.box_merge != "nms" or self.mirror_search:
            d |= {"box_merge": self.box_merge, "mirror_search": self.mirror_search}
        return d

    def detector_options(self, quality: Quality, kind: str = "image") -> dict:
        """Options for ``YuNetDetector`` in the given setting (``auto``: accurate for photos, fast for video)."""
        q = resolve_quality(quality, kind)
        opts: dict = {"box_correction": self.box_correction}
        if self.face_model:
            from ..assets import asset

            opts["model_path"] = asset(self.face_model)
        if q == "accurate":
            opts.update(upscale=self.upscale, score_threshold=self.score_threshold, box_merge=self.box_merge,
                        mirror_search=self.mirror_search)
            if self.tile:
                opts["tile"] = self.tile
        else:
            opts.update(upscale=1.0, score_threshold=self.fast_score_threshold if self.fast_score_threshold is not None
                        else max(self.score_threshold, FAST_MIN_THRESHOLD))
        return opts


def resolve_quality(quality: Quality, kind: str) -> str:
    if quality not in ("auto", "accurate", "fast"):
        raise ConfigError(f"unknown detection setting {quality!r}; choose one of: auto, accurate, fast")
    if quality == "auto":
        return "fast" if kind in ("video", "camera") else "accurate"
    return quality


def read_profile(path: str | os.PathLike) -> DetectProfile:
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"detection profile {p} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"detection profile {p} is unreadable ({type(e).__name__}); rebuild it with "
                         f"`visionlab data faces` or delete it to detect without one") from None
    if not isinstance(d, dict):
        raise ModelError(f"detection profile {p} is not a JSON object")
    return DetectProfile.from_dict(d, str(p))


def profile_for(source: str | os.PathLike | None, metadata: Optional[dict] = None) -> Optional[DetectProfile]:
    """The profile of a run folder (``RUN/detect.json``) or of an ONNX file's metadata; None when it has none."""
    if metadata and META_KEY in metadata:
        try:
            d = json.loads(metadata[META_KEY])
        except json.JSONDecodeError:
            raise ModelError(f"{source}: its {META_KEY} metadata is not JSON; re-export the model") from None
        return DetectProfile.from_dict(d, f"{source} ({META_KEY})")
    if source is not None and Path(source).is_dir() and (Path(source) / PROFILE_FILE).is_file():
        return read_profile(Path(source) / PROFILE_FILE)
    return None
