"""``DetectConfig``: every setting of a detection job, typed, in one object that flows from the CLI (`visionlab
detect`, `visionlab serve`: their flags are generated from it) or the Python API (`visionlab.detect`,
``run_detection``) to ``build_pipeline``. What the classifier's detection profile says (inference/profile.py) is
merged in once, by ``build_pipeline``: a field left at ``None`` takes the profile's value.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..boxes import BoxMerge
from ..errors import ConfigError

Quality = Literal["auto", "accurate", "fast"]
Privacy = Literal["blur", "pixelate"]
Labels = Literal["full", "short", "id", "none"]


class DetectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    # --- the classifier -------------------------------------------------------------------------
    model: Optional[str] = Field(None, description="a run folder or an .onnx file (default: the bundled three-class "
                                                   "face-mask classifier)")
    backend: str = Field("onnx", description="classifier backend: onnx (ONNX Runtime) or torch")
    threads: int = Field(1, ge=0, description="classifier threads (ONNX Runtime; 0: its default)")
    # --- the face detector ----------------------------------------------------------------------
    detector: Optional[str] = Field(None, description="face detector: yunet (OpenCV), yunet_ort (ONNX Runtime) or "
                                                       "haar (default: the one the model's profile names, else yunet)")
    face_model: Optional[str] = Field(None, description="YuNet ONNX file (default: the bundled one)")
    quality: Quality = Field("auto", description="accurate (upscaled photo, low threshold + background rejection), "
                                                 "fast, or auto: accurate for photos, fast for video")
    score_threshold: Optional[float] = Field(None, gt=0, le=1, description="detector score threshold (default: the "
                                                                          "model's detection profile, else 0.7)")
    detect_side: Optional[int] = Field(None, ge=32, description="run the detector at this longer side (e.g. 320: "
                                                                "faster)")
    box_merge: Optional[BoxMerge] = Field(None, description="how the boxes of the detector's "
                                                       "searches (scales, mirror) become one per face: nms keeps the "
                                                       "best, wbf averages them (default: the profile's, else nms)")
    mirror_search: Optional[bool] = Field(None, description="also search the mirrored photo (twice the detector's "
                                                            "time; default: the profile's accurate setting)")
    margin: Optional[float] = Field(None, ge=0, description="crop margin around a face box (default: the profile's)")
    profile: Optional[str] = Field(None, description="a detect.json that replaces the classifier's own profile")
    # --- labels ---------------------------------------------------------------------------------
    min_face: int = Field(10, ge=0, description="faces smaller than this (px) are 'unsure'")
    min_face_prob: Optional[float] = Field(None, ge=0, le=1, description="drop boxes whose face probability "
                                           "(1 - P(Background)) is below this (default: the model's profile, chosen on photos "
                                           "it never trained on, else 0.5; 0.05 with --truth)")
    unsure_low: float = Field(0.35, ge=0, le=1, description="two classes: the positive probability between this ...")
    unsure_high: float = Field(0.65, ge=0, le=1, description="... and this is 'unsure'")
    min_confidence: float = Field(0.5, ge=0, le=1, description="a top probability below this is 'unsure'")
    positive_class: Optional[str] = Field(None, description="the positive class of a two-class model")
    # --- outputs --------------------------------------------------------------------------------
    quiet: bool = Field(False, description="no progress output (bars in a terminal, periodic lines in a log); the "
                                           "result lines and warnings still print")
    save_frames: bool = Field(True, description="--no-save-frames writes only JSON lines and the summary")
    blur: bool = Field(False, description="blur every face in the saved images and video")
    pixelate: bool = Field(False, description="pixelate every face instead of blurring")
    labels: Labels = Field("full", description="what the saved images and video write by each face: full (number, "
                                               "class, confidence), short (number, mask/no mask/wrong/?), id (the "
                                               "face's number, as in the JSON lines) or none (boxes only)")
    zone: Optional[str] = Field(None, description="count only faces whose centre is inside x1,y1,x2,y2 or a polygon "
                                                  "x1,y1;x2,y2;...")
    track: bool = Field(True, description="also count people by IoU tracks (one person standing still once)")
    min_track_frames: int = Field(3, ge=1, description="a track counts as a person once seen in this many frames "
                                                        "(a face found in one or two frames is most likely not one)")
    scene_cut: float = Field(0.3, ge=0, le=1, description="a colour-histogram jump (Bhattacharyya distance) above "
                                                         "this between frames is a scene cut: every track ends "
                                                         "(0: off)")
    bin_seconds: Optional[float] = Field(None, gt=0, description="video summary time bins (default 10 s; 1 s for "
                                                                 "clips under a minute)")
    max_frames: Optional[int] = Field(None, ge=1, description="stop a video or camera after this many frames")
    # --- cameras and streams (rtsp://, http(s)://) ----------------------------------------------
    drop_frames: bool = Field(True, description="a camera or stream faster than the pipeline drops the frames it "
                                                "has no time for (the newest is processed: no lag; counted in the "
                                                "summary); --no-drop-frames processes every frame, late")
    reconnect_attempts: int = Field(5, ge=0, description="a stream or camera that stops is opened again up to this "
                                                         "many times before the run ends")
    reconnect_delay: float = Field(2.0, ge=0, le=3600, description="seconds between reconnect tries")
    rollover_seconds: float = Field(3600.0, ge=0, description="a camera or stream starts a new detections.jsonl "
                                    "and summary.csv every this many seconds (rounded to whole bins), the finished "
                                    "ones kept as detections-<start>.jsonl and summary-<start>.csv, so a run of "
                                    "days writes files of bounded size (0: one file each, as for a video)")
    # --- alerts ---------------------------------------------------------------------------------
    alert: list[str] = Field(default_factory=list, description="a rule that fires an event: 'without>=1' (a frame "
                             "with a face without a mask), 'mask_rate<0.8/60s' (the mask rate of the last 60 s); "
                             "metrics faces, with, without, incorrect, unsure, mask_rate; repeatable")
    alert_to: list[str] = Field(default_factory=list, description="where events go: an http(s):// URL gets the "
                                "event JSON POSTed, anything else is a command run with it on stdin; repeatable")
    alert_cooldown: float = Field(60.0, ge=0, description="seconds (video time for a file, wall time for the "
                                                          "service) before a rule can fire again")

    @field_validator("detector", "backend")
    @classmethod
    def _lower(cls, v: Optional[str]) -> Optional[str]:
        return v.lower() if v is not None else None

    @model_validator(mode="after")
    def _check(self) -> "DetectConfig":
        if self.unsure_low > self.unsure_high:
            raise ValueError(f"need unsure_low <= unsure_high, got {self.unsure_low} and {self.unsure_high}")
        return self

    @property
    def privacy(self) -> Optional[Privacy]:
        """How saved images hide faces: ``pixelate``, ``blur`` or None."""
        return "pixelate" if self.pixelate else ("blur" if self.blur else None)

    def with_(self, **fields: Any) -> "DetectConfig":
        """A copy with ``fields`` changed (each checked); ``None`` values leave a field as it is."""
        return make_config(self, **fields)


# the fields that describe one image's detection (what `visionlab serve` takes); the rest are about inputs/outputs
IMAGE_FIELDS = ("backend", "detector", "face_model", "score_threshold", "detect_side", "box_merge", "mirror_search",
                "margin", "min_face",
                "min_face_prob", "unsure_low", "unsure_high", "min_confidence", "positive_class")
# the alert fields, which `visionlab serve` also takes (its events are shown on the page and at /v1/events)
ALERT_FIELDS = ("alert", "alert_to", "alert_cooldown")
SERVE_FIELDS = IMAGE_FIELDS + ALERT_FIELDS  # the DetectConfig fields `visionlab serve` takes


def make_config(config: "DetectConfig | dict | None" = None, **fields: Any) -> DetectConfig:
    """``config`` (or the defaults) with ``fields`` set; a bad value is one ``ConfigError`` naming the field."""
    base = config.model_dump() if isinstance(config, DetectConfig) else dict(config or {})
    base.update({k: v for k, v in fields.items() if v is not None})
    for k in ("model", "face_model", "profile"):
        if base.get(k) is not None:
            base[k] = str(base[k])
    try:
        return DetectConfig(**base)
    except ValidationError as e:
        from ..config import validation_message

        raise ConfigError(validation_message(e)) from None
