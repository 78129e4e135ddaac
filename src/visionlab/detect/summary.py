"""What a video or camera session says about mask wearing over time: counts per time bin, the mask rate with a
Wilson 95% interval, a simple IoU tracker so one person standing still is one person, and an optional zone.

``VideoSummary`` takes the faces of each frame as ``FaceResult.to_dict()`` dicts (what ``detections.jsonl``
holds) and writes ``summary.csv`` and ``summary.png``. Faces are counted once per frame they appear in; with
tracking on, each track (one person, as far as IoU association from frame to frame can tell) is also counted
once, with the majority of its per-frame labels.

A mask worn below the nose or on the chin is not a mask: the mask rate is
``with / (with + without + incorrect)``; unsure faces are left out of it.
"""
from __future__ import annotations

import io
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import ConfigError
from .pipeline import AMBER, GREEN, ORANGE, RED, UNSURE, mask_status

SUMMARY_CSV = "summary.csv"
SUMMARY_PNG = "summary.png"
COUNTING = ("faces are counted once per frame they appear in (a face seen in 10 frames counts 10); "
            "people are counted once per track (IoU association from frame to frame, ended by a scene cut) seen "
            "in at least min_track_frames frames, with the majority of their per-frame labels, unsure left out "
            "unless it is all a track has")
COUNTING_NO_TRACK = "faces are counted once per frame they appear in (a face seen in 10 frames counts 10); no tracking"
# the per-bin columns of summary.csv, in order
COLUMNS = ("t_start", "t_end", "faces", "with", "without", "incorrect", "unsure", "mask_rate", "ci_low",
           "ci_high", "people", "people_with", "people_without", "people_incorrect", "people_unsure")
_KEYS = ("with", "without", "incorrect", "unsure", "other")
_STATUS_KEY = {"mask": "with", "no_mask": "without", "incorrect": "incorrect", "other": "other"}


def count_key(label: str) -> str:
    """The summary column a face label counts in: with, without, incorrect, unsure or other."""
    return "unsure" if label == UNSURE else _STATUS_KEY[mask_status(label)]


def wilson(k: int, n: int) -> tuple[Optional[float], Optional[float], Optional[float]]:
    """(k / n, low, high) with the Wilson 95% interval (SciPy's ``binomtest``); (None, None, None) for n = 0."""
    if n <= 0:
        return None, None, None
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return k / n, float(ci.low), float(ci.high)


def _xyxy(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    a = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.column_stack([a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]])


# ---------------------------------------------------------------- tracking


@dataclass
class Track:
    id: int
    box: tuple[int, int, int, int]
    first: int  # frame of the first and the latest box
    last: int
    labels: Counter = field(default_factory=Counter)
    hits: int = 0  # frames the track was seen in

    @property
    def label(self) -> Optional[str]:
        return majority(self.labels)


def majority(labels: Counter) -> Optional[str]:
    """The most frequent label, ``unsure`` left out unless it is all there is; a tie goes to the label seen first."""
    sure = [(lab, n) for lab, n in labels.items() if lab != UNSURE and n > 0]
    if sure:
        return max(sure, key=lambda ln: ln[1])[0]  # max keeps the first of equal counts (insertion order)
    return UNSURE if labels.get(UNSURE) else None


class FaceTracker:
    """IoU association from frame to frame: each frame's boxes are matched to the live tracks by
    maximum total IoU (SciPy's ``linear_sum_assignment`` on torchvision's ``box_iou``), pairs under ``min_iou``
    are not matches, an unmatched box starts a new track, and a track that has gone unseen for more than
    ``max_missed`` frames ends (a face that comes back later is a new person).

    Boxes are ``(x, y, w, h)`` as in ``FaceResult``. ``update`` returns a track id per box, in order.
    ``tracks`` holds the live tracks and the ended ones until ``pop_ended`` hands them out (``VideoSummary``
    does after each frame, so a stream that runs for days keeps only the people in view).
    """

    def __init__(self, min_iou: float = 0.3, max_missed: int = 10) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise ConfigError(f"min_iou must be in (0, 1], got {min_iou}")
        if max_missed < 0:
            raise ConfigError(f"max_missed must be >= 0, got {max_missed}")
        self.min_iou, self.max_missed = float(min_iou), int(max_missed)
        self.tracks: dict[int, Track] = {}  # the live tracks and the ended ones not yet popped
        self._live: list[int] = []
        self._frame = -1
        self._next = 0

    def cut(self) -> None:
        """A scene cut: every live track ends (the next frame's faces are new people)."""
        self._live = []

    def update(self, boxes: Sequence[Sequence[int]], labels: Optional[Sequence[str]] = None,
               frame_index: Optional[int] = None, cut: bool = False) -> list[int]:
        """Track ids for this frame's ``boxes``. ``labels`` (one per box) add to each track's label counts;
        ``frame_index`` (default: the previous one + 1) lets frames that were skipped count as unseen;
        ``cut``: this frame starts a new scene, so no box continues a track."""
        from scipy.optimize import linear_sum_assignment

        from ..boxes import iou_matrix

        frame = self._frame + 1 if frame_index is None else int(frame_index)
        self._frame = frame
        if cut:
            self.cut()
        self._live = [t for t in self._live if frame - self.tracks[t].last - 1 <= self.max_missed]
        boxes = [tuple(int(v) for v in b) for b in boxes]
        if labels is not None and len(labels) != len(boxes):
            raise ValueError(f"{len(labels)} labels for {len(boxes)} boxes")
        ids: list[Optional[int]] = [None] * len(boxes)
        if boxes and self._live:
            iou = iou_matrix(_xyxy(boxes), _xyxy([self.tracks[t].box for t in self._live]))
            rows, cols = linear_sum_assignment(-np.where(iou >= self.min_iou, iou, 0.0))
            for r, c in zip(rows, cols):
                if iou[r, c] >= self.min_iou:
                    ids[r] = self._live[c]
        for i, box in enumerate(boxes):
            if ids[i] is None:
                tid = self._next
                self._next += 1
                self.tracks[tid] = Track(tid, box, frame, frame)
                self._live.append(tid)
                ids[i] = tid
            t = self.tracks[ids[i]]
            t.box, t.last = box, frame
            t.hits += 1
            if labels is not None:
                t.labels[labels[i]] += 1
        return [int(i) for i in ids]  # type: ignore[arg-type]

    def label(self, track_id: int) -> Optional[str]:
        """The track's label: the majority of its per-frame labels (``unsure`` only if it has nothing else)."""
        return self.tracks[track_id].label

    def pop_ended(self) -> list[Track]:
        """The tracks that have ended (unseen for more than ``max_missed`` frames as of the last update, or cut),
        removed from ``tracks``: a track never comes back once it has ended."""
        live = set(self._live)
        ended = [t for tid, t in self.tracks.items() if tid not in live]
        for t in ended:
            del self.tracks[t.id]
        return ended

    def __len__(self) -> int:
        """Tracks started so far (ended and popped ones included)."""
        return self._next


class SceneCuts:
    """Says when a frame starts a new scene: both its colour histogram and its pixels jump from the previous
    frame's. The histogram jump is the Bhattacharyya distance (OpenCV's ``compareHist``) between 8 x 8
    hue-saturation histograms of the two frames shrunk to 64 px wide, above ``threshold``; the pixel jump is a
    mean absolute difference of the frames shrunk to 32 x 24 grey above ``MIN_PIXEL_CHANGE``. Camera motion and
    people walking move pixels but hardly the histogram; compression noise in a grey picture moves its hue
    histogram but hardly the pixels; a cut to an unrelated shot moves both. ``threshold`` 0 turns it off."""

    MIN_PIXEL_CHANGE = 0.05  # of the 0-255 range; 30 unrelated photos: 0.14 and more, a still shot: under 0.001

    def __init__(self, threshold: float = 0.3) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"--scene-cut must be between 0 (off) and 1, got {threshold}")
        self.threshold = float(threshold)
        self._prev: Optional[tuple[np.ndarray, np.ndarray]] = None
        self.cuts = 0
        self.last_distance: Optional[tuple[float, float]] = None

    @staticmethod
    def signature(frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the hue-saturation histogram, the small grey frame) a frame is compared by."""
        import cv2

        h, w = frame_bgr.shape[:2]
        small = cv2.resize(frame_bgr, (64, max(1, round(64 * h / max(w, 1)))), interpolation=cv2.INTER_AREA)
        hist = cv2.calcHist([cv2.cvtColor(small, cv2.COLOR_BGR2HSV)], [0, 1], None, [8, 8], [0, 180, 0, 256])
        grey = cv2.resize(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (32, 24), interpolation=cv2.INTER_AREA)
        return cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1), grey.astype(np.float32) / 255.0

    def __call__(self, frame_bgr: np.ndarray) -> bool:
        """Whether ``frame_bgr`` starts a new scene (never the first frame: nothing is live yet)."""
        import cv2

        if self.threshold <= 0.0:
            return False
        sig = self.signature(frame_bgr)
        prev, self._prev = self._prev, sig
        if prev is None:
            return False
        dist = float(cv2.compareHist(prev[0], sig[0], cv2.HISTCMP_BHATTACHARYYA))
        change = float(np.abs(prev[1] - sig[1]).mean())
        self.last_distance = (dist, change)
        cut = dist > self.threshold and change > self.MIN_PIXEL_CHANGE
        self.cuts += cut
        return cut


# ---------------------------------------------------------------- zones


@dataclass(frozen=True)
class Zone:
    """A rectangle or polygon in pixels of the full video frame; a face is inside when its box's centre is
    (on the edge counts as inside)."""

    points: tuple[tuple[float, float], ...]
    kind: str  # "rectangle" or "polygon"
    spec: str

    def contains(self, box: Sequence[float]) -> bool:
        import cv2

        x, y, w, h = (float(v) for v in box[:4])
        contour = np.asarray(self.points, np.float32).reshape(-1, 1, 2)
        return cv2.pointPolygonTest(contour, (x + w / 2.0, y + h / 2.0), False) >= 0

    def draw(self, image_bgr: np.ndarray, color: tuple[int, int, int] = (255, 255, 255),
             thickness: int = 2, scale: float = 1.0) -> np.ndarray:
        """The zone's outline drawn on ``image_bgr`` (in place; also returned); ``scale``: the image is the frame
        enlarged that many times."""
        import cv2

        pts = np.round(np.asarray(self.points) * scale).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image_bgr, [pts], True, color, thickness, cv2.LINE_AA)
        return image_bgr


_ZONE_HELP = ("give x1,y1,x2,y2 (a rectangle) or x1,y1;x2,y2;x3,y3;... (a polygon of 3 or more points), "
              "in pixels of the video frame")


def parse_zone(spec: str) -> Zone:
    """``"x1,y1,x2,y2"`` (a rectangle, corners in any order) or ``"x1,y1;x2,y2;x3,y3;..."`` (a polygon of at
    least 3 points). Anything else is a one-line ``ConfigError``."""
    if isinstance(spec, Zone):
        return spec
    text = str(spec).strip()

    def num(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise ConfigError(f"--zone {spec!r}: {s.strip()!r} is not a number; {_ZONE_HELP}") from None
        if not math.isfinite(v):
            raise ConfigError(f"--zone {spec!r}: {s.strip()!r} is not a finite number; {_ZONE_HELP}")
        return v

    if not text:
        raise ConfigError(f"--zone is empty; {_ZONE_HELP}")
    if ";" not in text:
        parts = text.split(",")
        if len(parts) != 4:
            raise ConfigError(f"--zone {spec!r} has {len(parts)} number(s), a rectangle needs 4; {_ZONE_HELP}")
        x1, y1, x2, y2 = (num(p) for p in parts)
        if x1 == x2 or y1 == y2:
            raise ConfigError(f"--zone {spec!r} is a rectangle of zero area; {_ZONE_HELP}")
        x1, x2, y1, y2 = min(x1, x2), max(x1, x2), min(y1, y2), max(y1, y2)
        return Zone(((x1, y1), (x2, y1), (x2, y2), (x1, y2)), "rectangle", text)
    points = []
    for p in (q for q in text.split(";") if q.strip()):
        xy = p.split(",")
        if len(xy) != 2:
            raise ConfigError(f"--zone {spec!r}: point {p.strip()!r} is not x,y; {_ZONE_HELP}")
        points.append((num(xy[0]), num(xy[1])))
    if len(points) < 3:
        raise ConfigError(f"--zone {spec!r} has {len(points)} point(s), a polygon needs 3 or more; {_ZONE_HELP}")
    a = np.asarray(points)
    area = 0.5 * abs(np.dot(a[:, 0], np.roll(a[:, 1], 1)) - np.dot(a[:, 1], np.roll(a[:, 0], 1)))
    if area == 0:
        raise ConfigError(f"--zone {spec!r} is a polygon of zero area (its points are on one line); {_ZONE_HELP}")
    return Zone(tuple(points), "polygon", text)


# ---------------------------------------------------------------- the summary


def default_bin_seconds(duration_s: Optional[float]) -> float:
    """1 s for a clip known to be under a minute, else 10 s (cameras: length unknown)."""
    return 1.0 if duration_s is not None and 0 < duration_s < 60 else 10.0


class VideoSummary:
    """Per-time-bin counts of the faces of a video or camera session.

    ``fps``: the video's frame rate (a frame's time is ``frame_index / fps`` unless ``update`` is given ``t``).
    ``bin_seconds``: the bin width; ``None`` is 1 s for clips under a minute (``duration_s`` known), else 10 s.
    ``zone``: a ``Zone`` or its text; faces whose box centre lies outside are not counted (they are still
    tracked, so a person walking into the zone keeps one identity). ``track``: also count people by track.

    Memory stays bounded for a session of days: a track is folded into per-bin and total counts when it ends
    (``on_track_end(track)`` is called with it, e.g. to log people) and dropped; ``pop_rows`` hands out the rows
    of finished bins (a rolled-over period, written to its own file) and keeps only their totals.
    """

    def __init__(self, fps: float, bin_seconds: Optional[float] = None, duration_s: Optional[float] = None,
                 zone: "Zone | str | None" = None, track: bool = True, *, min_iou: float = 0.3,
                 max_missed: Optional[int] = None, min_track_frames: int = 3, scene_cut: float = 0.3,
                 on_track_end: Optional[Callable[[Track], None]] = None) -> None:
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise ConfigError(f"fps must be a positive number, got {fps!r}")
        if bin_seconds is not None and not (math.isfinite(bin_seconds) and bin_seconds > 0):
            raise ConfigError(f"--bin-seconds must be a positive number of seconds, got {bin_seconds}")
        self.fps = float(fps)
        self.duration_s = float(duration_s) if duration_s is not None else None
        self.bin_seconds = float(bin_seconds) if bin_seconds is not None else default_bin_seconds(self.duration_s)
        self.zone = parse_zone(zone) if zone is not None else None
        # a face may be missed for half a second (a turned head, a passer-by in front) and keep its track
        self.tracker = (FaceTracker(min_iou, max(2, round(self.fps / 2)) if max_missed is None else max_missed)
                        if track else None)
        if min_track_frames < 1:
            raise ConfigError(f"--min-track-frames must be 1 or more, got {min_track_frames}")
        self.min_track_frames = int(min_track_frames)
        self.scene_cuts = SceneCuts(scene_cut)
        self.on_track_end = on_track_end
        self._bins: dict[int, Counter] = defaultdict(Counter)  # the bins held (from _first on)
        self._people: dict[int, set[int]] = defaultdict(set)  # bin -> live tracks with a counted face in it
        self._track_labels: dict[int, Counter] = defaultdict(Counter)  # live tracks: in-zone labels only
        self._track_bins: dict[int, set[int]] = defaultdict(set)  # live track -> bins it has a counted face in
        self._bin_people: dict[int, Counter] = defaultdict(Counter)  # bin -> ended people, by count key
        self._people_done: Counter = Counter()  # ended tracks that are people, by count key
        self._short_done = 0  # ended tracks with a counted face, too short to be a person
        self._first = 0  # the first bin held; those before were handed out by pop_rows
        self._done: Counter = Counter()  # the face counts of the bins handed out
        self._done_bins = 0
        self.frames = 0
        self.outside_zone = 0
        self._t_last = -1.0

    def _bin(self, t: float) -> int:
        return int(math.floor(t / self.bin_seconds + 1e-9))

    def update(self, frame_index: int, faces: Sequence[dict], t: Optional[float] = None,
               frame: Optional[np.ndarray] = None) -> list[Optional[int]]:
        """Count one frame's faces (``FaceResult.to_dict()`` dicts: ``box`` and ``label`` are used). ``t``: the
        frame's time in seconds (a camera's clock); default ``frame_index / fps``. ``frame``: the BGR image, to
        find scene cuts (a cut ends every track); without it no cut is seen. Returns each face's track id
        (``None`` without tracking), e.g. to add to the JSON lines."""
        t = frame_index / self.fps if t is None else float(t)
        self.frames += 1
        self._t_last = max(self._t_last, t)
        b = self._bin(t)
        counts = self._bins[b]  # the bin exists from now on, with zeros if no face is counted
        ids: list[Optional[int]] = [None] * len(faces)
        if self.tracker is not None:
            cut = self.scene_cuts(frame) if frame is not None else False
            ids = list(self.tracker.update([f["box"] for f in faces], frame_index=frame_index, cut=cut))
        for f, tid in zip(faces, ids):
            if self.zone is not None and not self.zone.contains(f["box"]):
                self.outside_zone += 1
                continue
            counts["faces"] += 1
            counts[count_key(f["label"])] += 1
            if tid is not None:
                self._people[b].add(tid)
                self._track_labels[tid][f["label"]] += 1
                self._track_bins[tid].add(b)
        if self.tracker is not None:
            for track in self.tracker.pop_ended():
                self._end_track(track)
        return ids

    def _end_track(self, track: Track) -> None:
        """Fold an ended track into the per-bin and total people counts (its label can no longer change)."""
        labels = self._track_labels.pop(track.id, None)
        bins = self._track_bins.pop(track.id, set())
        for b in bins:
            if b in self._people:
                self._people[b].discard(track.id)
        if self.on_track_end is not None:
            self.on_track_end(track)
        if labels is None:  # no face of it was counted (outside the zone)
            return
        if track.hits < self.min_track_frames:
            self._short_done += 1
            return
        key = count_key(majority(labels) or UNSURE)
        self._people_done[key] += 1
        for b in bins:
            if b >= self._first:
                self._bin_people[b][key] += 1

    # -- results

    def _person(self, tid: int) -> bool:
        """A track counts as a person once it was seen in ``min_track_frames`` frames (a face the detector
        finds in one or two frames only is most likely not one)."""
        return self.tracker is not None and self.tracker.tracks[tid].hits >= self.min_track_frames

    def _track_key(self, tid: int) -> str:
        return count_key(majority(self._track_labels[tid]) or UNSURE)

    def _end(self) -> float:
        """The end of the last frame seen, in seconds."""
        return self._t_last + 1.0 / self.fps if self.frames else 0.0

    def rows(self) -> list[dict]:
        """One dict per bin, from the first to the last frame seen (bins without faces included), with the
        ``COLUMNS`` keys; ``mask_rate``/``ci_*`` are ``None`` where no face had a mask verdict, ``people*`` are
        ``None`` without tracking."""
        if not self._bins:
            return []
        return self._rows(self._first, max(self._bins) + 1)

    def _rows(self, first: int, stop: int) -> list[dict]:
        end = self._end()
        out = []
        for b in range(first, stop):
            c = self._bins.get(b, Counter())
            rate, lo, hi = wilson(c["with"], c["with"] + c["without"] + c["incorrect"])
            row = {"t_start": round(b * self.bin_seconds, 6),
                   "t_end": round(min((b + 1) * self.bin_seconds, max(end, b * self.bin_seconds)), 6),
                   "faces": c["faces"], **{k: c[k] for k in ("with", "without", "incorrect", "unsure")},
                   "mask_rate": rate, "ci_low": lo, "ci_high": hi}
            if self.tracker is not None:
                people = [t for t in self._people.get(b, ()) if self._person(t)]
                pk = Counter(self._track_key(t) for t in people) + self._bin_people.get(b, Counter())
                row.update(people=sum(pk.values()), people_with=pk["with"],
                           people_without=pk["without"], people_incorrect=pk["incorrect"],
                           people_unsure=pk["unsure"])
            else:
                row.update(people=None, people_with=None, people_without=None, people_incorrect=None,
                           people_unsure=None)
            out.append(row)
        return out

    def pop_rows(self, before: int) -> list[dict]:
        """The rows of the held bins before bin ``before`` (a finished period), which are then dropped; their
        counts stay in ``totals``. People in a track still live are counted with its label so far."""
        last = max(self._bins) if self._bins else self._first - 1
        rows = self._rows(self._first, min(before, last + 1)) if before > self._first else []
        for b in [b for b in self._bins if b < before]:
            self._done.update(self._bins.pop(b))
            self._people.pop(b, None)
            self._bin_people.pop(b, None)
        self._done_bins += len(rows)
        self._first = max(self._first, before)
        return rows

    def skip_to(self, first: int) -> None:
        """Hold no rows before bin ``first``: bins without a frame (after ``pop_rows``) are not rows of anything."""
        if any(b < first for b in self._bins):
            raise ValueError(f"bins before {first} still hold counts: pop_rows them first")
        self._first = max(self._first, int(first))

    def totals(self) -> dict:
        """Totals over the whole session: per-frame counts and mask rate at the top level, per-track counts
        under ``people`` (``None`` without tracking), with the bin width and the counting method in words."""
        c: Counter = Counter(self._done)
        for v in self._bins.values():
            c.update(v)
        rate, lo, hi = wilson(c["with"], c["with"] + c["without"] + c["incorrect"])
        out = {"counting": COUNTING if self.tracker is not None else COUNTING_NO_TRACK,
               "bin_seconds": self.bin_seconds, "bins": self._done_bins + len(self.rows()), "frames": self.frames,
               "fps": self.fps,
               "seconds": round(self._end(), 6), "zone": self.zone.spec if self.zone is not None else None,
               "outside_zone": self.outside_zone, "faces": c["faces"], **{k: c[k] for k in _KEYS},
               "mask_rate": rate, "mask_rate_ci": [lo, hi] if rate is not None else None, "people": None}
        if self.tracker is not None:
            counted = sorted(self._track_labels)  # live tracks with at least one counted face
            tracks = [t for t in counted if self._person(t)]
            pk = Counter(self._track_key(t) for t in tracks) + self._people_done
            prate, plo, phi = wilson(pk["with"], pk["with"] + pk["without"] + pk["incorrect"])
            out["people"] = {"count": sum(pk.values()), **{k: pk[k] for k in _KEYS}, "mask_rate": prate,
                             "mask_rate_ci": [plo, phi] if prate is not None else None,
                             "short_tracks": len(counted) - len(tracks) + self._short_done, "min_track_frames": self.min_track_frames,
                             "scene_cuts": self.scene_cuts.cuts}
        return out

    def write(self, out_dir: "str | Path") -> dict:
        """``summary.csv`` and ``summary.png`` in ``out_dir``, each written atomically; returns ``totals()`` with
        their paths as ``csv`` and ``png``."""
        from ..io import atomic_write_bytes

        out = Path(out_dir)
        rows = self.rows()
        write_rows(out / SUMMARY_CSV, rows)
        totals = self.totals()
        totals["csv"] = str(out / SUMMARY_CSV)
        try:
            png = plot_summary(rows, totals)
        except ModuleNotFoundError as e:  # the light runtime has no matplotlib: the CSV and totals still stand
            totals["png"] = None
            totals["png_missing"] = f"{SUMMARY_PNG} not drawn: it needs {e.name} (pip install 'visionlab[plot]')"
            return totals
        atomic_write_bytes(out / SUMMARY_PNG, png)
        totals["png"] = str(out / SUMMARY_PNG)
        return totals


def write_rows(path: Path, rows: list[dict]) -> None:
    """``rows`` (``VideoSummary.rows()``) as a CSV written atomically, floats to 6 places; only the header when
    there is no row, so a reader still sees the columns."""
    from ..io import atomic_write_text, write_csv

    if rows:
        write_csv(path, [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()} for r in rows])
    else:
        atomic_write_text(path, ",".join(COLUMNS) + "\n")


def _rgb(bgr: tuple[int, int, int]) -> tuple[float, float, float]:
    return (bgr[2] / 255.0, bgr[1] / 255.0, bgr[0] / 255.0)


def plot_summary(rows: list[dict], totals: dict) -> bytes:
    """PNG bytes: the mask rate per bin with its Wilson band (top) and the faces per bin stacked by class
    (bottom), in the colours of the annotated video."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    fig = Figure(figsize=(9, 5.6), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.15], "hspace": 0.12})
    bw = totals["bin_seconds"]
    t0 = np.array([r["t_start"] for r in rows], float)
    t1 = np.array([r["t_end"] for r in rows], float)
    mid = (t0 + t1) / 2
    nan = float("nan")
    rate = np.array([r["mask_rate"] if r["mask_rate"] is not None else nan for r in rows], float) * 100
    lo = np.array([r["ci_low"] if r["ci_low"] is not None else nan for r in rows], float) * 100
    hi = np.array([r["ci_high"] if r["ci_high"] is not None else nan for r in rows], float) * 100

    green, red, orange, amber = _rgb(GREEN), _rgb(RED), _rgb(ORANGE), _rgb(AMBER)
    if len(rows):
        top.fill_between(mid, lo, hi, color=green, alpha=0.18, linewidth=0, label="Wilson 95% interval")
        top.plot(mid, rate, color=green, marker="o", markersize=3.5 if len(rows) <= 60 else 0, linewidth=1.8,
                 label="mask rate (per frame)")
    top.set_ylim(-3, 103)
    top.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    top.set_ylabel("mask rate")
    top.grid(alpha=0.3)
    overall = totals.get("mask_rate")
    head = f"{totals['faces']:,} faces counted per frame"
    if totals.get("people"):
        head += f" · {totals['people']['count']:,} people by track"
    if overall is not None:
        ci = totals["mask_rate_ci"]
        head += f" · mask rate {overall:.0%} ({ci[0]:.0%}-{ci[1]:.0%})"
        top.axhline(overall * 100, color="0.35", linewidth=0.9, linestyle="--", label=f"overall {overall:.0%}")
    if totals.get("zone"):
        head += f" · zone {totals['zone']}"
    if len(rows):
        top.legend(loc="best", fontsize=8, frameon=False)
    top.set_title(head, fontsize=10, loc="left")
    top.text(1.0, 1.02, "worn incorrectly counts as no mask", transform=top.transAxes, ha="right", va="bottom",
             fontsize=8, color="0.4")

    width = np.maximum(t1 - t0, 1e-9) * 0.9
    base = np.zeros(len(rows))
    for key, name, col in (("with", "with mask", green), ("without", "without mask", red),
                           ("incorrect", "worn incorrectly", orange), ("unsure", "unsure", amber)):
        v = np.array([r[key] for r in rows], float)
        if len(rows):
            bottom.bar(t0, v, width=width, bottom=base, align="edge", color=col, label=name, linewidth=0)
        base += v
    if 0 < len(rows) <= 60:
        for a, b, n in zip(t0, t1, base):
            if n == 0:
                bottom.text((a + b) / 2, 0, "no face", ha="center", va="bottom", fontsize=7, color="0.5")
    bottom.set_ylabel("faces per bin (per frame)")
    bottom.set_xlabel(f"time (s) · bins of {bw:g} s")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.grid(axis="y", alpha=0.3)
    if len(rows):
        bottom.legend(loc="upper right", fontsize=8, ncol=4, frameon=False)
        bottom.set_xlim(t0[0], t1[-1])
        bottom.set_ylim(0, max(1.0, float(base.max())) * 1.18)  # room for the legend above the bars
    fig.subplots_adjust(left=0.09, right=0.98, top=0.93, bottom=0.1)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
