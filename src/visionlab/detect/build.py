"""``build_pipeline(config)``: the one place a detection pipeline is assembled. Every user of one (``run_detection``,
``visionlab.detect``, the service, ``visionlab data faces``, the benchmarks) calls it.

It loads the classifier through the backend registry, merges the classifier's detection profile into the config
for this kind of input (photo or video: the ``accurate`` or ``fast`` setting), builds the face detector from the
detector registry with those options, and returns the pipeline with what was used. An averaged classifier
(inference/average.py) runs whole in the accurate setting and as its first member alone in the fast one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ..errors import ConfigError
from ..inference.average import networks
from ..inference.backends import Classifier
from ..inference.load import load_classifier
from .config import DetectConfig, make_config
from .faces import FACE_DETECTORS, FaceDetector
from .pipeline import DEFAULT_MARGIN, DetectionPipeline

if TYPE_CHECKING:
    from ..inference.profile import DetectProfile

DEFAULT_MIN_FACE_PROB = 0.5
YUNET_FAMILY = ("yunet", "yunet_ort")  # detectors that take YuNet's options (model file, upscale, threshold, ...)


@dataclass
class Built:
    """What ``build_pipeline`` made and from what: the pipeline, its classifier, the profile merged in (or None)
    and the setting used (``accurate``/``fast``)."""

    pipeline: DetectionPipeline
    classifier: Classifier
    profile: Optional["DetectProfile"]
    setting: str
    config: DetectConfig


def detector_name(config: DetectConfig, profile: Optional["DetectProfile"]) -> str:
    """The config's detector, else the one the profile was made with, else yunet."""
    return config.detector or (profile.detector if profile is not None else "yunet")


def detector_options(config: DetectConfig, profile: Optional["DetectProfile"], setting: str, kind: str) -> dict:
    """The face detector's keyword options: the profile's for this setting, then the config's explicit values."""
    name = detector_name(config, profile)
    family = name in YUNET_FAMILY
    opts: dict = profile.detector_options(setting, kind) if profile is not None and family else {}
    explicit = {"model_path": config.face_model, "score_threshold": config.score_threshold,
                "max_side": config.detect_side, "box_merge": config.box_merge, "mirror_search": config.mirror_search}
    given = {k: v for k, v in explicit.items() if v is not None}
    if given and not family:
        raise ConfigError(f"--face-model, --score-threshold, --detect-side, --box-merge and --mirror-search apply "
                          f"to the yunet detectors, not {name!r}")
    opts.update(given)
    return opts


def shown_threshold(config: DetectConfig, profile: Optional["DetectProfile"]) -> float:
    """The face probability below which a box is dropped: the config's, else the profile's (chosen on photos the
    model never trained on), else 0.5."""
    if config.min_face_prob is not None:
        return config.min_face_prob
    if profile is not None and profile.min_face_prob is not None:
        return profile.min_face_prob
    return DEFAULT_MIN_FACE_PROB


def build_pipeline(config: "DetectConfig | None" = None, *, classifier: Optional[Classifier] = None,
                   detector: Optional[FaceDetector] = None, kind: str = "image", **fields) -> Built:
    """The pipeline ``config`` (plus ``fields``) describes for inputs of ``kind`` (image, folder, video, camera).

    ``classifier``/``detector``: already-loaded objects to use instead of ``config.model``/``config.detector``
    (a service keeps one classifier for many threads; tests pass small ones)."""
    from ..inference.profile import read_profile, resolve_quality

    cfg = make_config(config, **fields)
    if classifier is None:
        classifier = load_classifier(cfg.model, cfg.backend, cfg.threads)
    prof = read_profile(cfg.profile) if cfg.profile is not None else classifier.profile
    setting = resolve_quality(cfg.quality, kind)
    if setting == "fast":
        classifier = networks(classifier)[0]  # one classifier pass per face: averaging would cost the video frame rate
    if detector is None:
        detector = FACE_DETECTORS.get(detector_name(cfg, prof))(**detector_options(cfg, prof, setting, kind))
    margin = cfg.margin if cfg.margin is not None else (prof.margin if prof is not None else DEFAULT_MARGIN)
    pipe = DetectionPipeline(detector, classifier, margin=margin, min_face=cfg.min_face,
                             unsure_low=cfg.unsure_low, unsure_high=cfg.unsure_high,
                             min_confidence=cfg.min_confidence, positive_class=cfg.positive_class,
                             min_face_prob=shown_threshold(cfg, prof),
                             class_weights=prof.class_weights if prof is not None else None,
                             tta=prof is not None and prof.tta and setting == "accurate")
    return Built(pipe, classifier, prof, setting, cfg)
