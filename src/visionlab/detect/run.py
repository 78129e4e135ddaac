"""The loop over inputs: images, folders, video files and cameras through one pipeline from ``build_pipeline``,
written as annotated output, JSON lines and (video, cameras) the time-binned summary. ``run_detection`` is
`visionlab detect`; ``detect_faces`` is ``visionlab.detect`` on one photo or array.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own log lines would bury our one-line errors
import cv2  # noqa: E402
import numpy as np
from PIL import Image

from ..errors import ConfigError, DataError
from ..images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, decode_array, pil_to_rgb_array
from ..inference.backends import Classifier
from ..io import WriteError, atomic_write_bytes, shown, write_failed, write_json
from .build import build_pipeline
from .config import DetectConfig, make_config
from .faces import FaceDetector, quiet_opencv
from .pipeline import JSONL_FILE, READABLE_SIDE, DetectionPipeline, FaceResult, draw_results, drawing_scale

if TYPE_CHECKING:
    from ..inference.profile import DetectProfile
    from .summary import VideoSummary

def read_image(path: Path) -> np.ndarray:
    """BGR uint8 for OpenCV, decoded by ``images.decode_array`` as the face crops a classifier trains on are (EXIF
    orientation, palette, alpha on white, 16-bit, CMYK; a FIFO or an oversized file is refused, never read);
    ``DataError`` with the path for anything it cannot decode."""
    try:
        rgb = decode_array(path)
    except DataError as e:
        raise DataError(f"cannot decode image {e}") from None
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _write_image(path: Path, image: np.ndarray) -> Path:
    """The annotated (colour) copy under the input's name; JFIF is written as the JPEG it is, and a suffix OpenCV
    cannot write in colour (.pgm is gray only) as a .png."""
    suffix = {".jfif": ".jpg"}.get(path.suffix.lower(), path.suffix.lower() or ".png")
    ok, buf = cv2.imencode(suffix, image) if suffix != ".pgm" else (False, None)
    if not ok:
        path = path.with_suffix(".png")
        ok, buf = cv2.imencode(".png", image)
    atomic_write_bytes(path, buf.tobytes())
    return path


def _open_capture(source: Path) -> cv2.VideoCapture:
    """A video file's capture (cameras and streams: stream.open_capture)."""
    with quiet_opencv():
        cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        cap.release()
        raise DataError(f"cannot open video {source}: not a video file OpenCV can read")
    return cap


def _list_images(folder: Path, exclude: Path, skipped: Optional[list] = None,
                 left_out: Optional[list] = None) -> list[Path]:
    """The regular image files under ``folder``, sorted. ``exclude`` (this run's output folder, resolved) and
    every visionlab output folder under ``folder`` (an earlier ``detect DIR --out DIR/out``) are left out, the
    latter named in ``left_out``; FIFOs, devices and sockets with an image's name are never opened and go to
    ``skipped`` with the reason."""
    from ..files import special_kind
    from ..outdir import is_output_folder

    files, outputs, skip = [], [], []
    for p in sorted(folder.rglob("*")):
        if any(o in p.parents for o in skip):
            continue
        if p.is_dir():
            if p.resolve() == exclude:  # (``p`` is relative where ``folder`` is: compare resolved paths)
                skip.append(p)
            elif not p.is_symlink() and is_output_folder(p):
                skip.append(p)
                outputs.append(p)
            continue
        if p.suffix.lower() not in IMAGE_SUFFIXES or p.name.startswith("."):
            continue
        if p.is_file():
            files.append(p)
        elif skipped is not None and (kind := special_kind(p)) is not None:
            skipped.append([shown(p), f"is {kind}, not a regular file; only regular image files are read"])
    if left_out is not None:
        left_out += outputs
    return files


def _input_kind(src: int | str | Path) -> str:
    """``camera``, ``stream`` (a URL), ``folder``, ``video`` or ``image``; ``DataError`` for any other file."""
    if isinstance(src, int):
        return "camera"
    if isinstance(src, str):
        return "stream"
    if src.is_dir():
        return "folder"
    if src.suffix.lower() in VIDEO_SUFFIXES:
        return "video"
    if src.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    raise DataError(f"{src} is neither an image ({', '.join(sorted(IMAGE_SUFFIXES))}) nor a video "
                    f"({', '.join(sorted(VIDEO_SUFFIXES))})")


def _resolve_input(input: str | os.PathLike | int, out: Path, only: Optional[Sequence[str | os.PathLike]],
                   skipped: Optional[list] = None) -> tuple[int | str | Path, str, list[Path]]:
    """The source (a path, a camera index or a stream URL), its kind and, for an image or a folder, the images to
    read (a folder's restricted to ``only`` when given); checked before anything is loaded or written. FIFOs and
    devices named as images go to ``skipped``."""
    from .stream import is_stream_url

    if isinstance(input, bool) or not isinstance(input, (int, str, os.PathLike)):
        raise ConfigError(f"input must be a path, a stream URL or a camera index, got {input!r}")
    if is_stream_url(input):
        return str(input), "stream", []
    src: int | Path = input if isinstance(input, int) else Path(input)
    if isinstance(src, Path) and not src.exists():
        raise DataError(f"input {src} does not exist; pass an image, a folder of images, a video file, a stream URL "
                        f"(rtsp://, http://) or --camera N")
    kind = _input_kind(src)
    if kind in ("image", "folder") and out.resolve() == (src.resolve() if kind == "folder" else src.resolve().parent):
        raise ConfigError(f"--out {out} is the input's own folder: annotated images would replace the originals; "
                          f"pick another folder")
    files: list[Path] = []
    if kind in ("image", "folder"):
        left_out: list[Path] = []
        files = [src] if kind == "image" else _list_images(src, out.resolve(), skipped, left_out)
        if left_out:
            from ..progress import say

            say("note:", f"left out {len(left_out)} earlier visionlab output folder{'s' if len(left_out) > 1 else ''} "
                f"inside the input: {', '.join(shown(p) for p in left_out[:5])}{' ...' if len(left_out) > 5 else ''}")
        if only is not None and kind == "folder":  # a subset of the folder (e.g. the validation photos)
            keep = {Path(f).resolve() for f in only}
            files = [f for f in files if f.resolve() in keep]
        if not files:
            odd = f"; {len(skipped)} not regular files: {skipped[0][0]} {skipped[0][1]}" if skipped else ""
            raise DataError(f"no images in {shown(src)} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}){odd}")
    return src, kind, files


def _open_source(src: int | str | Path, kind: str, cfg: DetectConfig):
    """The checked zone (parsed from its string form) and the open capture of a video (a ``LiveReader`` for a
    camera or stream; ``None`` for images), after checking the privacy mode: before anything is written, so a bad
    video, camera or URL leaves no output."""
    from .privacy import check_mode
    from .summary import parse_zone

    if cfg.privacy is not None:
        check_mode(cfg.privacy)
    zone = parse_zone(cfg.zone) if isinstance(cfg.zone, str) else cfg.zone
    cap = None
    if kind == "video":
        cap = _open_capture(src)  # type: ignore[arg-type]
    elif kind in ("camera", "stream"):
        from ..progress import console
        from .stream import LiveReader, open_capture, redact

        name = f"camera {src}" if kind == "camera" else redact(str(src))
        cap = LiveReader(open_capture(src), lambda: open_capture(src), name,  # type: ignore[arg-type]
                         attempts=cfg.reconnect_attempts, delay=cfg.reconnect_delay, drop=cfg.drop_frames,
                         say=lambda line: console.print(f"note: {line}", highlight=False, markup=False,
                                                        soft_wrap=True))
    return zone, cap


def _new_summary(src: int | str | Path, kind: str, out: Path, pipe: DetectionPipeline, classifier: Classifier,
                 prof: "Optional[DetectProfile]", setting: str, stored: str) -> dict:
    """The summary dict ``run_detection`` returns, before anything is processed."""
    from .stream import redact

    name = {"camera": f"camera:{src}", "stream": redact(str(src))}.get(kind, str(src))
    return {"input": name, "kind": kind, "out_dir": str(out),
            "jsonl": str(out / JSONL_FILE), "video": None, "processed": 0, "faces": 0, "labels": {},
            "skipped": [], "interrupted": False, "detector": pipe.detector.name,
            "backend": classifier.backend,
            "setting": setting if prof is not None else "default",
            "profile": prof.source if prof is not None else None,
            "faces_stored": stored}


class _DetectionRun:
    """The state one ``run_detection`` call shares between its loops: the pipeline and output options, the open
    JSON lines file, the running totals and FPS, the video summary and the video being written."""

    def __init__(self, pipe: DetectionPipeline, src: int | str | Path, kind: str, out: Path, summary: dict, *,
                 save_frames: bool, blur: Optional[str], zone, on_frame: Optional[Callable[[dict, np.ndarray], None]],
                 anonymize: Callable) -> None:
        self.pipe, self.src, self.kind, self.out, self.summary = pipe, src, kind, out, summary
        self.save_frames, self.blur, self.zone, self.on_frame, self.anonymize = (save_frames, blur, zone, on_frame,
                                                                                 anonymize)
        self.vs: Optional[VideoSummary] = None
        self.track_options: dict = {}  # min_track_frames, scene_cut: VideoSummary's keywords
        self.label_mode = "full"  # draw_results' labels
        self.labels: Counter = Counter()
        self.t0 = time.perf_counter()
        self.writer: Optional[cv2.VideoWriter] = None
        self.tmp_video: Optional[Path] = None
        self.final: Optional[Path] = None
        self.live = None  # the LiveReader of a camera or stream, for its dropped frames and reconnects
        self.alerts = None  # the AlertMonitor when --alert rules are given
        self.source_fps = 0.0  # a video file's own frame rate: its frames' times (for alert cool-downs)
        self._bin = 0  # the time bin a live session's summary files were last refreshed in
        self.rollover_seconds = 0.0  # a camera or stream: its files roll over per period of this length (0: never)
        self.periods = None  # rollover.Periods, set on the first live frame
        self._period = 0  # the period the plain-named files hold
        self.period_count = 1  # periods begun (the files of all but the last are kept under stamped names)
        self._t = 0.0  # the time of the frame being processed: seconds since the first frame (a live source's clock)
        self.clock0: Optional[float] = None  # when the first frame came (opening a stream takes a while)
        self.written: list[Path] = []  # the images this run wrote, for the message if the disk fills
        self.lines = 0
        self.jsonl_path = out / JSONL_FILE
        self.jsonl = self._open_jsonl()

    def _open_jsonl(self) -> int:
        try:  # O_EXCL: the folder is this run's own (outdir.claim_out), an existing file is never replaced
            return os.open(self.jsonl_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise write_failed(self.jsonl_path, e) from None

    def process(self, frame: np.ndarray, source: str, index: Optional[int],
                overlay_fps: bool) -> tuple[np.ndarray, dict]:
        results = self.pipe(frame)
        now = time.perf_counter()
        self.clock0 = now if self.clock0 is None else self.clock0
        self._t = now - self.clock0
        live = self.kind in ("camera", "stream")
        record: dict = {"source": source, "frame": index}
        # when the frame was seen: a video's own time; a camera or stream's run clock, and its local wall time
        if live:
            record["time_s"] = round(self._t, 3)
            record["at"] = datetime.now().astimezone().isoformat(timespec="milliseconds")
        elif self.kind == "video" and index is not None and self.source_fps:
            record["time_s"] = round(index / self.source_fps, 3)
        record["faces"] = [r.to_dict() for r in results]
        if self.vs is not None:
            ids = self.vs.update(index or 0, record["faces"], t=self._t if live else None, frame=frame)
            for f, i in zip(record["faces"], ids):
                f["track"] = i
        if not self.save_frames:
            return frame, record
        shown = self.anonymize(frame, results, self.blur) if self.blur else frame
        # photos are drawn enlarged when small (a video keeps its frame size for its writer)
        k = drawing_scale(frame.shape, READABLE_SIDE) if self.kind in ("image", "folder") else 1
        annotated = draw_results(shown, results, self.fps(self.summary["processed"] + 1) if overlay_fps else None,
                                 labels=self.label_mode, scale=k)
        if self.zone is not None:
            self.zone.draw(annotated, scale=k)
        return annotated, record

    def fps(self, frames: Optional[int] = None) -> float:
        """The run's one FPS figure: frames processed (``frames``, default all so far) per wall second since the
        run started; the overlay, the progress bar, the last line and summary.json all show it."""
        n = self.summary["processed"] if frames is None else frames
        return n / max(time.perf_counter() - self.t0, 1e-9)

    def emit(self, record: dict, annotated: np.ndarray) -> None:
        # after the image or video frame is written, so the JSON lines never run ahead of the output
        self._append(json.dumps(record) + "\n")
        self.lines += 1
        self.summary["processed"] += 1
        self.summary["faces"] += len(record["faces"])
        self.labels.update(f["label"] for f in record["faces"])
        if self.alerts is not None:  # a video file's clock is its own time; live sources and photos: the wall's
            t = (record["frame"] / self.source_fps if self.kind == "video" and self.source_fps
                 else time.perf_counter() - self.t0)
            self.alerts.observe(record["faces"], t, record["frame"])
        if self.on_frame is not None:
            self.on_frame(record, annotated)

    def _append(self, line: str) -> None:
        """One whole line or none: a short write is continued, a failed one (a full disk) cut back."""
        size = os.lseek(self.jsonl, 0, os.SEEK_END)
        view = memoryview(line.encode())
        try:
            while view:
                n = os.write(self.jsonl, view)
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(self.jsonl, size)
            raise write_failed(self.jsonl_path, e) from None

    def stopped(self, e: WriteError) -> WriteError:
        """``e`` (a write that failed: a full disk) reworded to say what this run had written by then, instead
        of the plain "nothing was changed" that holds only for the file that failed."""
        images = f"{len(self.written)} annotated image{'' if len(self.written) == 1 else 's'} and " \
            if self.save_frames and self.kind in ("image", "folder") else ""
        what = f"{images}{self.lines} line{'' if self.lines == 1 else 's'} of {JSONL_FILE}"
        err = WriteError(f"cannot write {shown(getattr(e, 'path', '?'))}: {getattr(e, 'reason', e)}; this run had "
                         f"written {what} into {shown(self.out)} (each complete) when it stopped; free some space "
                         f"and run the command again")
        err.errno = getattr(e, "errno", None)
        return err

    def read_images(self, bar, files: Sequence[Path], first: Optional[np.ndarray] = None) -> None:
        """Every image in turn (``first``: the first one, already decoded); one of a folder's that cannot be
        decoded is skipped with a warning line."""
        from ..progress import say

        src, kind, summary = self.src, self.kind, self.summary
        task = bar.add_task(src.name, total=len(files), info="")
        for n, f in enumerate(files):
            try:
                img = first if n == 0 and first is not None else read_image(f)
            except DataError as e:
                if kind == "image":
                    raise
                say("warning:", str(e))
                summary["skipped"].append([shown(f), str(e)])
                bar.advance(task)
                continue
            annotated, record = self.process(img, str(f), None, overlay_fps=False)
            if self.save_frames:
                self.written.append(_write_image(self.out / (f.name if kind == "image" else f.relative_to(src)),
                                                 annotated))
            self.emit(record, annotated)
            bar.update(task, advance=1, info=f"{self.fps():.1f} img/s")

    def read_video(self, bar, cap: cv2.VideoCapture, max_frames: Optional[int], video_summary: bool,
                   bin_seconds: Optional[float], track: bool) -> None:
        """Frame by frame into ``<stem>.part.mp4`` (``close`` gives it its final name), up to ``max_frames``."""
        from .summary import VideoSummary

        src, kind, out = self.src, self.kind, self.out
        live = kind in ("camera", "stream")
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if fps and np.isfinite(fps) and 0 < fps <= 240 else 25.0
        self.source_fps = fps
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if kind == "video" else 0
        total = min(count, max_frames) if count > 0 and max_frames else (count or max_frames or None)
        stem = {"camera": f"camera{src}", "stream": "stream"}.get(kind) or Path(src).stem
        self.final = final = out / f"{stem}.mp4"
        self.tmp_video = out / f".{stem}.part.mp4"  # renamed on finish: a half-written file never has the final name
        task = bar.add_task({"camera": f"camera {src}", "stream": self.summary["input"]}.get(kind, str(src)),
                            total=total, info="")
        if video_summary:
            self.vs = VideoSummary(fps, bin_seconds, duration_s=count / fps if kind == "video" and count > 0
                                   else None, zone=self.zone, track=track, **self.track_options)
        index = 0
        while max_frames is None or index < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            annotated, record = self.process(frame, self.summary["input"], index, overlay_fps=True)
            if live and self.rollover_seconds > 0:
                self._roll_over_when_due(bin_seconds)
            if self.writer is None and self.save_frames:
                self._open_writer(frame, fps, final)
            if self.writer is not None:
                self.writer.write(annotated)
            self.emit(record, annotated)
            if live and self.vs is not None:
                self._refresh_summary()
            index += 1
            bar.update(task, advance=1, info=f"{self.fps():.1f} FPS")
        if live and index == 0:
            raise DataError(f"camera {src} opened but gave no frame; is another program using it?" if kind == "camera"
                            else f"stream {self.summary['input']} opened but gave no frame; is it sending video?")

    def _open_writer(self, frame: np.ndarray, fps: float, final: Path) -> None:
        h, w = frame.shape[:2]
        self.writer = cv2.VideoWriter(str(self.tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not self.writer.isOpened():
            self.writer = None
            raise DataError(f"cannot write {final}: this OpenCV build has no mp4v encoder")

    def _roll_over_when_due(self, bin_seconds: Optional[float]) -> None:
        """When the frame just processed starts a new period, the finished period's detections.jsonl,
        summary.csv and video are kept as detections-<start>.jsonl, summary-<start>.csv and <stem>-<start>.mp4
        (its start in local time), and the plain names start afresh with this frame: each file holds one
        period, whatever the length of the session. Nothing is deleted."""
        from .rollover import Periods, keep_as
        from .summary import SUMMARY_CSV, default_bin_seconds, write_rows

        if self.periods is None:
            bw = self.vs.bin_seconds if self.vs is not None else (bin_seconds or default_bin_seconds(None))
            self.periods = Periods(self.rollover_seconds, bw, time.time() - self._t)
            self._period = self.periods.index(self._t)  # the first frame's (a slow start is no empty period)
        k = self.periods.index(self._t)
        if k == self._period:
            return
        stamp = self.periods.stamp(self._period)
        os.close(self.jsonl)
        self.jsonl = -1
        keep_as(self.jsonl_path, self.jsonl_path, stamp)
        self.jsonl = self._open_jsonl()
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            keep_as(self.tmp_video, self.final, stamp)  # type: ignore[arg-type]
        if self.vs is not None:
            write_rows(self.out / SUMMARY_CSV, self.vs.pop_rows((self._period + 1) * self.periods.bins))
            self.vs.skip_to(k * self.periods.bins)  # periods without a frame (a stream down for a while): no file
            keep_as(self.out / SUMMARY_CSV, self.out / SUMMARY_CSV, stamp)
            self._bin = -1  # summary.csv is written again, for the new period, after this frame
        self._period = k
        self.period_count += 1

    def _refresh_summary(self) -> None:
        """A camera or stream's summary.csv and summary.json rewritten each time a time bin ends, so a session
        that runs for hours can be read while it runs (summary.png is drawn at the end)."""
        from .summary import SUMMARY_CSV, write_rows

        b = int(self._t // self.vs.bin_seconds)  # type: ignore[union-attr]
        if b == self._bin:
            return
        self._bin = b
        write_rows(self.out / SUMMARY_CSV, self.vs.rows())  # type: ignore[union-attr]
        totals = self.vs.totals()  # type: ignore[union-attr]
        totals["source_fps"] = totals.pop("fps")
        totals.update(fps=round(self.fps(), 2), dropped=self.live.dropped if self.live is not None else 0,
                      reconnects=self.live.reconnects if self.live is not None else 0, running=True,
                      periods=self.period_count if self.rollover_seconds > 0 else None)
        write_json(self.out / "summary.json", totals)

    def close(self, cap: Optional[cv2.VideoCapture]) -> None:
        """Finalise the outputs, also after an error or Ctrl-C: the JSON lines closed, the video renamed into
        place (or its part file removed when no frame was written)."""
        if self.jsonl >= 0:
            os.close(self.jsonl)
        if self.alerts is not None:
            self.alerts.close()  # the queued events are sent (a few seconds at most), then the worker stops
        if cap is not None:
            cap.release()
        if self.writer is not None:
            self.writer.release()
            os.replace(self.tmp_video, self.final)  # type: ignore[arg-type]
            self.summary["video"] = str(self.final)
        elif self.tmp_video is not None:
            self.tmp_video.unlink(missing_ok=True)

    def finish(self) -> dict:
        """The summary with the video summary written (a Ctrl-C'd video still gets one), labels and timing."""
        summary = self.summary
        summary["seconds"] = round(time.perf_counter() - self.t0, 3)
        # one photo has its time, not a rate
        summary["fps"] = None if self.kind == "image" else round(self.fps(), 2)
        if self.rollover_seconds > 0:
            summary["periods"] = self.period_count
        if self.live is not None:
            summary["dropped"] = self.live.dropped  # read, but a newer frame came before the pipeline was free
            summary["reconnects"] = self.live.reconnects
            summary["gave_up"] = self.live.gave_up
        if self.vs is not None:
            totals = self.vs.write(self.out)
            totals["source_fps"] = totals.pop("fps")  # the video's own frame rate, not ours
            totals["fps"] = summary["fps"]
            if self.live is not None:
                totals.update(dropped=summary["dropped"], reconnects=summary["reconnects"],
                              periods=self.period_count if self.rollover_seconds > 0 else None)
            summary["summary"] = totals
            write_json(self.out / "summary.json", totals)  # the totals, for scripts
        if self.alerts is not None:
            summary["alerts"] = self.alerts.summary()
        summary["labels"] = dict(self.labels)
        return summary


def _alert_monitor(cfg: DetectConfig, source: str):
    """The ``AlertMonitor`` of ``cfg.alert`` rules (``None`` without rules); a failed send is one warning line."""
    if not cfg.alert:
        return None
    from ..progress import console
    from .alerts import AlertMonitor

    return AlertMonitor(cfg.alert, cfg.alert_to, cfg.alert_cooldown, source=source,
                        say=lambda line: console.print(f"warning: {line}", markup=False, highlight=False,
                                                       soft_wrap=True))


def run_detection(input: str | os.PathLike | int, config: Optional[DetectConfig] = None,
                  out_dir: str | os.PathLike | None = None, *, classifier: Optional[Classifier] = None,
                  detector: Optional[FaceDetector] = None, files: Optional[Sequence[str | os.PathLike]] = None,
                  on_frame: Optional[Callable[[dict, np.ndarray], None]] = None, show_progress: bool = True,
                  video_summary: bool = True, **fields: Any) -> dict:
    """Detect and label every face of ``input`` as ``config`` (a ``DetectConfig``, whose fields document every
    option; ``fields`` change any of them) says, and write the results under ``out_dir`` (a folder that already
    holds files gets a new sub-folder: outdir.claim_out). ``classifier``/``detector``: loaded objects to use instead
    of ``config.model``/``config.detector``; ``files`` restricts a folder to those images.

    ``input``: an image file, a folder (every image in it, recursively), a video file, a stream URL (``rtsp://``,
    ``http(s)://``, read as a camera is: detect/stream.py), or an ``int`` camera index. Writes annotated images
    (same relative names) or ``<stem>.mp4``, and ``detections.jsonl`` with one line per image or frame; video,
    streams and cameras also get the time-binned summary (detect/summary.py, docs/video.md) and ``alert`` events
    (detect/alerts.py). An unreadable image is skipped with one warning line; Ctrl-C stops cleanly with the video
    and JSON lines finalised. ``on_frame(record, annotated_bgr)`` is called after each image or frame. Returns a
    summary dict.
    """
    from ..progress import progress, say

    if out_dir is None:
        raise ConfigError("run_detection needs out_dir: where the annotated output and JSON lines go")
    from ..outdir import claim_out

    cfg = make_config(config, **fields)
    out = Path(out_dir)
    odd: list = []  # FIFOs and devices named as images: listed with the unreadable files
    src, kind, files = _resolve_input(input, out, files, odd)
    built = build_pipeline(cfg, classifier=classifier, detector=detector, kind=kind)
    pipe, prof, setting = built.pipeline, built.profile, built.setting

    from .privacy import anonymize, faces_stored

    from .alerts import check_alerts

    check_alerts(cfg.alert, cfg.alert_to)  # a bad rule or target: one line, before anything is opened or written
    zone, cap = _open_source(src, kind, cfg)
    # one image is decoded before its output folder is made: one that cannot be leaves no empty folder behind
    first = read_image(files[0]) if kind == "image" else None
    try:
        out = claim_out(out, "detect")  # an existing folder's files are never replaced: a new sub-folder
    except BaseException:
        if cap is not None:
            cap.release()
        raise
    summary = _new_summary(src, kind, out, pipe, built.classifier, prof, setting,
                           faces_stored(cfg.privacy, cfg.save_frames))
    summary["skipped"] += odd
    for p, why in odd:
        say("warning:", f"{p}: {why}")
    run = _DetectionRun(pipe, src, kind, out, summary, save_frames=cfg.save_frames, blur=cfg.privacy, zone=zone,
                        on_frame=on_frame, anonymize=anonymize)
    run.live = cap if kind in ("camera", "stream") else None
    run.alerts = _alert_monitor(cfg, summary["input"])
    run.track_options = {"min_track_frames": cfg.min_track_frames, "scene_cut": cfg.scene_cut}
    run.label_mode = cfg.labels
    if kind in ("camera", "stream"):
        run.rollover_seconds = cfg.rollover_seconds
    try:
        with progress(disable=not show_progress or cfg.quiet) as bar:
            if kind in ("image", "folder"):
                run.read_images(bar, files, first)
            else:
                run.read_video(bar, cap, cfg.max_frames, video_summary, cfg.bin_seconds, cfg.track)
    except KeyboardInterrupt:
        summary["interrupted"] = True
    except WriteError as e:
        raise run.stopped(e) from None
    finally:
        run.close(cap)
    try:
        return run.finish()
    except WriteError as e:
        raise run.stopped(e) from None


def detect_faces(image: "str | os.PathLike | np.ndarray | Image.Image", config: Optional[DetectConfig] = None, *,
                 classifier: Optional[Classifier] = None, color: str = "rgb", **fields: Any) -> list[FaceResult]:
    """Faces of one photo (a path; a Pillow image of any mode, converted as its file would be decoded; or an
    H x W (x 3 or 4) array in ``color`` order: uint8, or uint16, float 0..1 or bool scaled as the decoder scales
    them), each with box, label, best guess, probabilities and detector score; nothing is written. The classifier
    defaults to the bundled one, the face detector to the bundled YuNet; both follow the classifier's detection
    profile (the photo setting)."""
    cfg = make_config(config, **fields)
    pipe = build_pipeline(cfg, classifier=classifier, kind="image").pipeline
    if isinstance(image, (str, os.PathLike)):
        return pipe(read_image(Path(image)), color="bgr")
    if isinstance(image, Image.Image):  # every mode converted as the file decoder converts it (P is not grey)
        return pipe(pil_to_rgb_array(image), color="rgb")
    return pipe(image, color=color)  # type: ignore[arg-type]


def default_out_dir() -> Path:
    """``detect``'s default output folder: detections-<time> here, with .2, .3, ... if that exists."""
    out_dir = Path(f"detections-{time.strftime('%Y%m%d-%H%M%S')}")
    k = 1
    while out_dir.exists():
        k += 1
        out_dir = Path(f"{out_dir.name.split('.')[0]}.{k}")
    return out_dir
