"""Response and request bodies: the OpenAPI schema is generated from these, so it says what the routes do."""
from __future__ import annotations

from typing import Annotated, Optional, Union

from pydantic import BaseModel, Field

Box = Annotated[list[int], Field(min_length=4, max_length=4, description="x, y, width, height in pixels")]
ItemId = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="a queued image's id (its sha256)")]


class ErrorBody(BaseModel):
    error: str = Field(description="a short machine-readable code, e.g. payload_too_large")
    detail: str = Field(description="what went wrong and what to do")


class FaceOut(BaseModel):
    id: int = Field(ge=1, description="the face's number, 1..N in reading order (rows top to bottom, left to right)")
    box: Box
    label: str = Field(description="a class, or 'unsure' (a small face, or a probability between the thresholds)")
    guess: str = Field(description="the classifier's top class, also when the label is 'unsure'")
    confidence: float = Field(ge=0, le=1, description="the classifier's probability of its top class")
    detector_score: float = Field(description="the face detector's score")
    probs: dict[str, float] = Field(description="probability per class")


class Timings(BaseModel):
    queue_ms: float = Field(description="waiting for an inference slot")
    decode_ms: float
    detect_ms: float
    classify_ms: float
    total_ms: float = Field(description="from the upload read to the response")


class PredictResponse(BaseModel):
    faces: list[FaceOut]
    width: int = Field(description="image width after EXIF rotation; boxes are in these pixels")
    height: int
    model_version: str
    timings: Timings
    annotated_jpeg: Optional[str] = Field(None, description="base64 JPEG with the boxes drawn (annotated=true)")


class DetectorInfo(BaseModel):
    name: str = Field(description="yunet or haar")
    model_file: Optional[str]
    score_threshold: Optional[float] = Field(description="faces scoring below are dropped (YuNet)")


class ModelInfo(BaseModel):
    run: str = Field(description="run folder name")
    model: str = Field(description="model name from `visionlab models`")
    family: Optional[str]
    backbone: Optional[str] = Field(description="the pretrained backbone, for backbone models")
    classes: list[str]
    image_size: int
    version: str = Field(description="first 12 hex digits of the model file's sha256")
    backend: str = Field(description="onnx (ONNX Runtime) or torch")
    metrics: dict[str, Union[float, int, str, bool, None]] = Field(description="scalar entries of metrics.json")
    detector: DetectorInfo


class Health(BaseModel):
    status: str
    model_version: str
    uptime_s: float
    running: int
    waiting: int
    rejected: int = Field(description="requests refused with 503 since start")
    active_project: bool


class QueueContext(BaseModel):
    image_url: str = Field(description="the photo or video frame the face is in, with the face outlined")
    caption: str = Field(description="source file, time in the video and face probability, for display")
    face_prob: Optional[float] = Field(None, description="1 - P(Background) under the queue's model")


class QueueItem(BaseModel):
    id: str
    name: str = Field(description="file name, for display")
    image_url: str
    prediction: Optional[str] = None
    confidence: Optional[float] = None
    context: Optional[QueueContext] = Field(None, description="face pools (`active init --photos`): where the "
                                                              "face was found")


class QueueNext(BaseModel):
    item: Optional[QueueItem] = Field(description="null when every queued image has a label (or was skipped)")
    classes: list[str]
    keys: dict[str, str] = Field(description="keyboard key -> class")
    total: int
    remaining: int = Field(description="queued images without a label")
    labelled: int
    unavailable: int = Field(0, description="queued images passed over because they were deleted or changed "
                                            "since the query")
    warnings: list[str] = Field([], description="problems found in the project's labels.jsonl, by line number")
    strategy: Optional[str] = None
    model_version: Optional[str] = None


class LabelIn(BaseModel):
    id: ItemId
    label: str


class UndoIn(BaseModel):
    entry_id: int = Field(ge=1)


class LabelOut(BaseModel):
    entry_id: int = Field(description="the store entry; pass it to /v1/labels/undo to cancel")
    id: str
    label: str
    source: str
    time: str


class AlertEvent(BaseModel):
    id: int = Field(ge=1, description="1, 2, ... in the order the events fired since the service started")
    rule: str = Field(description="the --alert rule that held, e.g. without>=1")
    value: float = Field(description="the rule's metric on that image (or window)")
    t: float = Field(description="seconds since the service started")
    frame: Optional[int] = Field(None, description="always null for the service (a frame number in `detect`)")
    time: str = Field(description="the server's local time, ISO 8601")
    source: str = Field(description="'serve'")
    counts: dict[str, float] = Field(description="the counts the rule was evaluated on (faces, with, without, ...)")


class EventsOut(BaseModel):
    rules: list[str] = Field(description="the service's --alert rules (empty: no alerts configured)")
    cooldown: float = Field(description="seconds of wall time before a rule can fire again")
    total: int = Field(description="events fired since the service started")
    by_rule: dict[str, int] = Field(description="events fired per rule")
    sent: int = Field(description="events delivered to --alert-to targets")
    failed: int = Field(description="deliveries that failed")
    events: list[AlertEvent] = Field(description="the latest events (at most 100) with id above `after`, oldest first")
