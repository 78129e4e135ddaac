"""The HTTP service: ``create_app(run_dir, ...)`` returns a FastAPI app that detects faces and labels each one
with a run folder's classifier, serves the page at ``/`` and, given an active-learning project, its
labelling queue.

No route takes a filesystem path from a request: uploads are bytes, queued images are named by content
hash and looked up in the project's own queue.json. Errors are JSON ``{"error": code, "detail": text}``
with the statuses listed in the OpenAPI schema (docs/service.md has the table).
"""
import base64
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal, Optional

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import Field, create_model
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..version import __version__
from ..detect.config import DetectConfig
from ..detect.privacy import anonymize
from .engine import Engine, annotate
from .events import ServiceAlerts, add_event_routes
from .labelling import Labelling
from .limits import BodyLimit, HostCheck, Limiter, SecurityHeaders
from .schemas import (ErrorBody, FaceOut, Health, ItemId, LabelIn, LabelOut, ModelInfo, PredictResponse, QueueNext,
                      Timings, UndoIn)
from .uploads import ApiError, MultipartEnd, decode_upload

STATIC = Path(__file__).with_name("static")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def _errors(*codes: int) -> dict:
    what = {400: "corrupt or truncated image, or a body that cannot be parsed", 404: "not found",
            409: "already labelled, or the image changed since the query",
            413: "body over the upload cap, or an image over max_pixels", 415: "empty or not an image",
            422: "invalid request", 503: "busy (Retry-After given), the project is unreadable, or a write failed"}
    return {c: {"model": ErrorBody, "description": what[c]} for c in codes}


def _error(status: int, error: str, detail: str, headers: Optional[dict] = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def warm_up(engine: Engine, limiter: Limiter) -> None:
    """Run the model and a detector once in every inference thread (each has its own detector), so no
    request pays for lazy set-up. The barrier makes each warm-up task take a different thread."""
    n = limiter.max_concurrency
    barrier = threading.Barrier(n)

    def one() -> None:
        barrier.wait(timeout=60)
        engine.warm_up()

    for f in [limiter.pool.submit(one) for _ in range(n)]:
        f.result()


def create_app(run_dir: str | Path | None = None, active_project: Optional[str | Path] = None,
               face_model: Optional[str | Path] = None, max_upload_mb: float = 10, max_pixels: float = 40e6,
               max_concurrency: int = 2, max_queue: int = 16, allowed_hosts: Optional[list[str]] = None,
               max_spool_mb: Optional[float] = None, request_timeout_s: float = 30.0,
               detect: Optional["DetectConfig"] = None) -> FastAPI:
    """Load the run's model and the face detector, run each once (warm-up), and build the app.

    ``max_upload_mb`` caps a request body (413); ``max_pixels`` caps an image's decoded size (413);
    ``max_concurrency`` inferences run at once in a thread pool and up to ``max_queue`` more wait, beyond
    that a request gets 503 with Retry-After. ``allowed_hosts``: the Host header names answered (default the
    loopback names; ``*`` any); a POST from another origin's page is refused. ``max_spool_mb``: all request
    bodies being received at once (default 4 x ``max_upload_mb``, at least 64); beyond it 503.
    ``request_timeout_s``: a body that stops arriving for that long ends with 408.
    Raises ``VisionlabError`` for a bad run, project or face model.
    """
    from ..errors import ConfigError

    if max_concurrency < 1 or max_queue < 0:
        raise ConfigError(f"--max-concurrency must be at least 1 (got {max_concurrency}) and --max-queue at least 0 "
                          f"(got {max_queue})")
    if max_upload_mb <= 0 or max_pixels <= 0 or request_timeout_s <= 0:
        raise ConfigError("--max-upload-mb, --max-pixels and the request timeout must be positive")
    hosts = list(allowed_hosts) if allowed_hosts else list(LOOPBACK_NAMES)
    spool = max_spool_mb if max_spool_mb is not None else max(64.0, 4 * max_upload_mb)
    alerts = ServiceAlerts(detect or DetectConfig())  # a bad --alert rule or target fails here, at start
    engine = Engine(run_dir, face_model, backend=detect.backend if detect is not None else "onnx", config=detect)
    labelling = Labelling(active_project) if active_project is not None else None
    limiter = Limiter(max_concurrency, max_queue)
    warm_up(engine, limiter)
    info = engine.info()
    started = time.time()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        limiter.close()
        alerts.close()

    # FastAPI's own /docs and /redoc load their scripts from a CDN, which the page's Content-Security-Policy
    # (and an offline host) refuses: _add_docs serves Swagger UI from files installed with fastapi-offline
    app = FastAPI(title="visionlab", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Face detection with a mask (or any) label per face, and an active-learning "
                              "labelling queue. Errors are JSON {error, detail}.")
    app.state.engine, app.state.limiter, app.state.labelling = engine, limiter, labelling
    # registration order is the schema's path order: errors, page, service, detection, active learning
    _add_error_handlers(app)
    _add_page(app)
    _add_docs(app)
    _add_service_routes(app, info, limiter, labelling, started)
    _add_prediction_routes(app, engine, limiter, info, max_pixels, alerts)
    add_event_routes(app, alerts)
    _add_label_routes(app, labelling)

    # plain ASGI in front of routing: the host check and the size checks act before any body is parsed
    app.add_middleware(MultipartEnd)  # innermost: a multipart body cut before its end is 400, not a 422
    app.add_middleware(BodyLimit, max_bytes=int(max_upload_mb * 2 ** 20), max_spool_bytes=int(spool * 2 ** 20),
                       body_timeout_s=request_timeout_s)
    app.add_middleware(HostCheck, allowed_hosts=hosts)
    app.add_middleware(SecurityHeaders)  # outermost: every answer, refusals included, carries the headers
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """One JSON shape, ``{"error": code, "detail": text}``, for every error."""
    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        return _error(e.status, e.error, e.detail, e.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        errs = e.errors()
        parts = [f"{'.'.join(str(x) for x in err.get('loc', ()))}: {err.get('msg', '')}" for err in errs]
        if any(err.get("type") == "json_invalid" for err in errs):  # a body that cannot be parsed at all
            return _error(400, "bad_request", "the body is not valid JSON: " + "; ".join(parts))
        code = "unknown_class" if any(tuple(err.get("loc", ())) == ("body", "label") and
                                      err.get("type") == "literal_error" for err in errs) else "invalid_request"
        return _error(422, code, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
                413: "payload_too_large", 503: "busy"}.get(e.status_code, "http_error")
        return _error(e.status_code, code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def crashed(_: Request, e: Exception) -> JSONResponse:  # a bug: say so without a traceback
        return _error(500, "internal_error", f"{type(e).__name__}: the server failed on this request")


def _add_page(app: FastAPI) -> None:
    """The page at ``/`` and its files under ``/static`` (neither in the schema)."""
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")


DOCS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>visionlab API</title>
<link rel="icon" href="/docs/assets/favicon.png"><link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head><body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/static/docs.js"></script></body></html>"""


def _add_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI over ``/openapi.json``, its script and CSS from the fastapi-offline package (no CDN)
    and its start-up call in static/docs.js (the Content-Security-Policy allows no inline script). Without
    fastapi-offline, ``/docs`` says where the schema is."""
    from fastapi.responses import HTMLResponse

    try:
        from importlib.resources import files

        assets = Path(str(files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        assets = None

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        if assets is None:
            return _error(404, "not_found", "the interactive API page needs fastapi-offline (pip install "
                                            "'visionlab[serve]'); the schema is at /openapi.json and docs/service.md "
                                            "describes every route")
        return HTMLResponse(DOCS_PAGE, headers={"Cache-Control": "no-cache"})

    if assets is not None:
        app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")


def _add_service_routes(app: FastAPI, info: dict, limiter: Limiter, labelling: Optional[Labelling],
                        started: float) -> None:
    """``/health`` and ``/v1/model``."""
    @app.get("/health", response_model=Health, tags=["service"])
    async def health() -> Health:
        return Health(status="ok", model_version=info["version"], uptime_s=round(time.time() - started, 3),
                      running=limiter.running, waiting=limiter.waiting, rejected=limiter.rejected,
                      active_project=labelling is not None)

    @app.get("/v1/model", response_model=ModelInfo, tags=["service"])
    async def model() -> ModelInfo:
        return ModelInfo(**info)


def _add_prediction_routes(app: FastAPI, engine: Engine, limiter: Limiter, info: dict, max_pixels: float,
                           alerts: ServiceAlerts) -> None:
    """``POST /v1/predict``: decode, detect and classify in the limiter's thread pool; the --alert rules are
    evaluated on each image's faces."""
    @app.post("/v1/predict", response_model=PredictResponse, tags=["detection"],
              responses=_errors(400, 413, 415, 422, 503))
    async def predict(file: UploadFile = File(..., description="a photo: JPEG, PNG, WebP, BMP, GIF or TIFF"),
                      annotated: bool = Query(False, description="also return the annotated image as base64 JPEG"),
                      blur: Optional[Literal["blur", "pixelate"]] = Query(
                          None, description="anonymise every face in the annotated image (as `detect --blur`)"),
                      labels: Literal["full", "short", "id", "none"] = Query(
                          "full", description="what the annotated image writes by each face (as `detect --labels`)")
                      ) -> PredictResponse:
        """Every face in the photo with its box, label and confidence."""
        data = await file.read()
        t0 = time.perf_counter()

        def work() -> PredictResponse:
            t1 = time.perf_counter()
            rgb = decode_upload(data, max_pixels)
            t2 = time.perf_counter()
            faces, times = engine.predict(rgb)
            alerts.observe([r.to_dict() for r, _ in faces])
            shown = anonymize(rgb, [r for r, _ in faces], blur) if blur else rgb
            jpeg = base64.b64encode(annotate(shown, [r for r, _ in faces], labels)).decode() if annotated else None
            t3 = time.perf_counter()
            timings = Timings(queue_ms=round((t1 - t0) * 1e3, 3), decode_ms=round((t2 - t1) * 1e3, 3),
                              detect_ms=round(times["detect_ms"], 3), classify_ms=round(times["classify_ms"], 3),
                              total_ms=round((t3 - t0) * 1e3, 3))
            return PredictResponse(faces=[FaceOut(id=r.id or i, box=[int(v) for v in r.box], label=r.label, guess=r.guess,
                                                  confidence=round(float(r.confidence), 4),
                                                  detector_score=round(float(r.score), 4), probs=probs)
                                          for i, (r, probs) in enumerate(faces, 1)],
                                   width=rgb.shape[1], height=rgb.shape[0], model_version=info["version"],
                                   timings=timings, annotated_jpeg=jpeg)

        return await limiter.run(work)


def _add_label_routes(app: FastAPI, labelling: Optional[Labelling]) -> None:
    """The active-learning queue and labels; without a project every one of them answers 404."""
    def need_project() -> Labelling:
        if labelling is None:
            raise ApiError(404, "no_active_project", "the server runs without an active-learning project; "
                                                     "start it with `visionlab serve RUN --active PROJECT`")
        return labelling

    @app.get("/v1/queue/next", response_model=QueueNext, tags=["active learning"], responses=_errors(404, 422, 503))
    async def queue_next(skip: list[ItemId] = Query([], max_length=100,
                                                    description="ids to pass over (skipped in this session)")
                         ) -> QueueNext:
        """The next queued image without a label."""
        lab = need_project()
        return QueueNext(**await run_in_threadpool(lab.next, set(skip)))

    @app.get("/v1/queue/image/{item_id}", tags=["active learning"], responses={
        200: {"content": {"image/jpeg": {}}, "description": "the queued image as JPEG (at most 768 px a side)"},
        **_errors(404, 409, 422, 503)})
    async def queue_image(item_id: ItemId) -> Response:
        lab = need_project()
        jpeg = await run_in_threadpool(lab.image_jpeg, item_id)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/v1/queue/context/{item_id}", tags=["active learning"], responses={
        200: {"content": {"image/jpeg": {}}, "description": "a queued face's photo or video frame with the face "
                                                            "outlined, as JPEG (at most 768 px a side)"},
        **_errors(404, 409, 422, 503)})
    async def queue_context(item_id: ItemId) -> Response:
        lab = need_project()
        jpeg = await run_in_threadpool(lab.context_jpeg, item_id)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    # the schema lists the project's classes, so a client (or schemathesis) knows which labels are valid
    label_in = LabelIn if labelling is None else create_model(
        "LabelIn", id=(ItemId, ...),
        label=(Literal[tuple(labelling.classes)], Field(description="one of the project's classes")))

    @app.post("/v1/labels", response_model=LabelOut, status_code=201, tags=["active learning"],
              responses=_errors(400, 404, 409, 422, 503))
    async def add_label(body: label_in) -> LabelOut:
        """Label a queued image: appended (fsync'd) to the project's labels.jsonl, source human."""
        lab = need_project()
        return LabelOut(**await run_in_threadpool(lab.label, body.id, body.label))

    @app.post("/v1/labels/undo", response_model=LabelOut, tags=["active learning"],
              responses=_errors(400, 404, 422, 503))
    async def undo_label(body: UndoIn) -> LabelOut:
        """Cancel a human label by its entry id (an undo record is appended; nothing is rewritten)."""
        lab = need_project()
        return LabelOut(**await run_in_threadpool(lab.undo, body.entry_id))
