"""The summary of a video: a clip made from real photos (pic1's two masked faces, then one unmasked face from
facemask Test, then an empty wall), read back with OpenCV, faces found by YuNet and labelled by a classifier
whose answer is set per frame, so every count, rate and interval is known in advance."""
from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.stats import binomtest

from visionlab.detect.pipeline import UNSURE, DetectionPipeline
from visionlab.detect.summary import (COLUMNS, SUMMARY_CSV, SUMMARY_PNG, FaceTracker, VideoSummary,
                                      default_bin_seconds, majority, parse_zone, wilson)
from visionlab.errors import ConfigError

from .conftest import SHARED, shared_file

CLASSES4 = ["Background", "MaskWornIncorrectly", "WithMask", "WithoutMask"]
ANSWER = {"WithMask": [0, 0, 1, 0], "MaskWornIncorrectly": [0, 1, 0, 0], "WithoutMask": [0, 0, 0, 1],
          UNSURE: [0, 0.34, 0.33, 0.33]}  # top probability 0.34 < min_confidence 0.5: unsure
FPS = 10
H, W = 552, 840


def script(frame: int) -> str:
    """The label the classifier gives every face of a frame."""
    if frame < 10:
        return "WithMask"
    if frame < 20:
        return "WithMask" if frame < 15 else "MaskWornIncorrectly"
    if frame < 30:
        return "WithMask"
    return "WithoutMask" if frame < 37 else UNSURE


class ScriptedClassifier:
    """The classifier protocol with one fixed answer for every crop, set before each frame."""

    classes, image_size, profile, backend, source = CLASSES4, 32, None, "scripted", "test"

    def __init__(self):
        self.label = "WithMask"

    def predict_proba(self, batch):
        return np.tile(np.asarray(ANSWER[self.label], np.float32), (len(batch), 1))


def make_clip(path, pic1):
    """45 frames at 10 FPS: 0-29 pic1 (2 faces), 30-39 one unmasked face on a wall, 40-44 the empty wall."""
    wall = np.full((H, W, 3), (200, 170, 120), np.uint8)
    scene = wall.copy()
    scene[:pic1.shape[0], :pic1.shape[1]] = pic1
    face = cv2.imread(str(shared_file("data", "facemask", "Test", "WithoutMask", "nm_00035.jpg")))
    face = cv2.resize(face, None, fx=1.5, fy=1.5)
    single = wall.copy()
    single[300:300 + face.shape[0], 620:620 + face.shape[1]] = face
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    assert writer.isOpened()
    for frame in [scene] * 30 + [single] * 10 + [wall] * 5:
        writer.write(frame)
    writer.release()


@pytest.fixture(scope="module")
def clip(tmp_path_factory, yunet, pic1):
    """(fps, duration_s, faces per frame as FaceResult.to_dict() lists) of the clip, read back from the file."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    make_clip(path, pic1)
    cap = cv2.VideoCapture(str(path))
    fps, count = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    clf = ScriptedClassifier()
    pipe = DetectionPipeline(yunet, clf)
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        clf.label = script(len(frames))
        frames.append([r.to_dict() for r in pipe(img)])
    cap.release()
    assert [len(f) for f in frames] == [2] * 30 + [1] * 10 + [0] * 5  # YuNet finds exactly the faces put there
    return fps, count / fps, frames


def feed(summary: VideoSummary, frames) -> VideoSummary:
    for i, faces in enumerate(frames):
        summary.update(i, faces)
    return summary


def ci(k, n):
    c = binomtest(k, n).proportion_ci(method="wilson")
    return pytest.approx(k / n), pytest.approx(c.low), pytest.approx(c.high)


def test_counts_rates_and_intervals_per_one_second_bin(clip):
    fps, duration, frames = clip
    assert fps == FPS and duration == 4.5
    s = feed(VideoSummary(fps, None, duration_s=duration), frames)
    assert s.bin_seconds == 1.0  # a clip under a minute gets 1 s bins
    rows = s.rows()
    assert [(r["t_start"], r["t_end"]) for r in rows] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 4.5)]
    got = [(r["faces"], r["with"], r["without"], r["incorrect"], r["unsure"], r["people"]) for r in rows]
    assert got == [(20, 20, 0, 0, 0, 2), (20, 10, 0, 10, 0, 2), (20, 20, 0, 0, 0, 2), (10, 0, 7, 0, 3, 1),
                   (0, 0, 0, 0, 0, 0)]
    assert (rows[0]["mask_rate"], rows[0]["ci_low"], rows[0]["ci_high"]) == ci(20, 20)
    assert (rows[1]["mask_rate"], rows[1]["ci_low"], rows[1]["ci_high"]) == ci(10, 20)  # incorrect is no mask
    assert (rows[3]["mask_rate"], rows[3]["ci_low"], rows[3]["ci_high"]) == ci(0, 7)  # the unsure 3 left out
    assert rows[4]["mask_rate"] is rows[4]["ci_low"] is rows[4]["ci_high"] is None  # nobody there
    assert [(r["people_with"], r["people_without"]) for r in rows] == [(2, 0), (2, 0), (2, 0), (0, 1), (0, 0)]

    t = s.totals()
    assert (t["faces"], t["with"], t["without"], t["incorrect"], t["unsure"], t["other"]) == (70, 50, 7, 10, 3, 0)
    assert t["mask_rate"] == pytest.approx(50 / 67)
    c = binomtest(50, 67).proportion_ci(method="wilson")
    assert t["mask_rate_ci"] == [pytest.approx(c.low), pytest.approx(c.high)]
    assert (t["frames"], t["bins"], t["bin_seconds"], t["seconds"]) == (45, 5, 1.0, 4.5)
    assert "once per frame" in t["counting"] and "track" in t["counting"]
    # by track: two people for 30 frames each (25 frames WithMask, 5 worn incorrectly: WithMask by majority)
    # and one unmasked person (7 WithoutMask, 3 unsure: unsure is left out of the vote)
    p = t["people"]
    assert (p["count"], p["with"], p["without"], p["incorrect"], p["unsure"]) == (3, 2, 1, 0, 0)
    assert p["mask_rate"] == pytest.approx(2 / 3)
    c = binomtest(2, 3).proportion_ci(method="wilson")
    assert p["mask_rate_ci"] == [pytest.approx(c.low), pytest.approx(c.high)]


def test_one_person_standing_still_counts_once_by_track_and_once_per_frame(clip):
    fps, duration, frames = clip
    left = [[f for f in faces if f["box"][0] < 420] for faces in frames]  # the man alone: 30 frames
    assert sum(map(len, left)) == 30
    t = feed(VideoSummary(fps, 1.0, duration_s=duration), left).totals()
    assert t["faces"] == 30 and t["people"]["count"] == 1
    off = feed(VideoSummary(fps, 1.0, duration_s=duration, track=False), left)
    assert off.totals()["faces"] == 30 and off.totals()["people"] is None
    assert {r["people"] for r in off.rows()} == {None} and "no tracking" in off.totals()["counting"]


def test_bin_width_option_and_default(clip):
    fps, duration, frames = clip
    rows = feed(VideoSummary(fps, 2.0, duration_s=duration), frames).rows()
    assert [(r["t_start"], r["t_end"], r["faces"], r["people"]) for r in rows] == [(0, 2, 40, 2), (2, 4, 30, 3),
                                                                                   (4, 4.5, 0, 0)]
    assert default_bin_seconds(59.9) == 1.0 and default_bin_seconds(60) == 10.0 and default_bin_seconds(None) == 10.0
    assert VideoSummary(25, None, duration_s=600).bin_seconds == 10.0
    assert VideoSummary(25, None).bin_seconds == 10.0  # a camera: length unknown
    with pytest.raises(ConfigError, match="--bin-seconds"):
        VideoSummary(25, 0)


def test_a_zone_counts_only_the_faces_whose_centre_is_inside(clip):
    fps, duration, frames = clip
    s = feed(VideoSummary(fps, 1.0, duration_s=duration, zone="0,0,420,552"), frames)  # the left half: the man
    rows, t = s.rows(), s.totals()
    assert [r["faces"] for r in rows] == [10, 10, 10, 0, 0]
    assert (t["faces"], t["with"], t["incorrect"], t["outside_zone"]) == (30, 25, 5, 40)
    assert t["people"]["count"] == 1 and t["zone"] == "0,0,420,552"
    # a triangle around the unmasked face only (the right-hand lower corner)
    tri = feed(VideoSummary(fps, 1.0, duration_s=duration, zone="560,250;840,250;840,552"), frames).totals()
    assert (tri["faces"], tri["without"], tri["unsure"], tri["people"]["count"]) == (10, 7, 3, 1)


def test_the_csv_and_png_are_written(clip, tmp_path):
    fps, duration, frames = clip
    s = feed(VideoSummary(fps, None, duration_s=duration), frames)
    t = s.write(tmp_path)
    assert t["csv"] == str(tmp_path / SUMMARY_CSV) and t["png"] == str(tmp_path / SUMMARY_PNG)
    assert json.loads(json.dumps(t))["people"]["count"] == 3  # plain JSON for the run's summary
    with open(tmp_path / SUMMARY_CSV, newline="") as f:
        reader = csv.DictReader(f)
        table = list(reader)
    assert tuple(reader.fieldnames) == COLUMNS and len(table) == 5
    assert [int(r["faces"]) for r in table] == [20, 20, 20, 10, 0]
    assert float(table[1]["mask_rate"]) == 0.5 and table[4]["mask_rate"] == ""
    assert float(table[3]["ci_high"]) == pytest.approx(binomtest(0, 7).proportion_ci(method="wilson").high, abs=1e-6)
    png = cv2.imread(str(tmp_path / SUMMARY_PNG))
    assert png.shape == (560, 900, 3)
    assert (tmp_path / SUMMARY_PNG).stat().st_size < 150_000
    # the stacked bars carry the annotated video's colours: green (with mask) and orange (worn incorrectly)
    for bgr in ((40, 170, 40), (0, 110, 240), (40, 40, 220), (0, 180, 255)):
        assert (np.abs(png.astype(int) - bgr).sum(axis=2) < 8).sum() > 200, bgr
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_an_empty_session_writes_a_header_and_a_plot(tmp_path):
    t = VideoSummary(25, None).write(tmp_path)
    assert (tmp_path / SUMMARY_CSV).read_text().strip() == ",".join(COLUMNS)
    assert t["faces"] == 0 and t["mask_rate"] is None and t["people"]["count"] == 0
    assert cv2.imread(str(tmp_path / SUMMARY_PNG)) is not None


def test_the_tracker_associates_by_iou_and_ends_tracks_left_unseen():
    tr = FaceTracker(min_iou=0.3, max_missed=2)
    assert tr.update([(0, 0, 100, 100), (300, 0, 100, 100)]) == [0, 1]
    assert tr.update([(310, 5, 100, 100), (10, 10, 100, 100)]) == [1, 0]  # order does not matter
    assert tr.update([(60, 60, 100, 100), (310, 5, 100, 100)]) == [2, 1]  # IoU 0.14 with track 0: a new face
    assert tr.update([]) == [] and tr.update([]) == []
    assert tr.update([(310, 5, 100, 100)]) == [1]  # two frames unseen: still track 1
    for _ in range(3):
        tr.update([])
    assert tr.update([(310, 5, 100, 100)]) == [3]  # three frames unseen > max_missed: a new person
    assert tr.update([(310, 5, 100, 100)], frame_index=100) == [4]  # skipped frames count as unseen


def test_a_track_label_is_the_majority_with_unsure_left_out():
    from collections import Counter

    assert majority(Counter({UNSURE: 9, "WithoutMask": 1})) == "WithoutMask"
    assert majority(Counter({"WithMask": 3, "MaskWornIncorrectly": 2})) == "WithMask"
    assert majority(Counter({UNSURE: 4})) == UNSURE and majority(Counter()) is None
    tr = FaceTracker()
    tr.update([(0, 0, 50, 50)], labels=["WithMask"])
    tr.update([(2, 0, 50, 50)], labels=[UNSURE])
    tr.update([(4, 0, 50, 50)], labels=[UNSURE])
    assert tr.label(0) == "WithMask" and len(tr) == 1


def test_zones_parse_and_bad_ones_say_what_to_write():
    r = parse_zone("400, 300, 100, 50")  # corners in any order
    assert r.kind == "rectangle" and r.contains((150, 100, 20, 20)) and not r.contains((0, 0, 20, 20))
    p = parse_zone("0,0;100,0;0,100")
    assert p.kind == "polygon" and p.contains((10, 10, 10, 10)) and not p.contains((80, 80, 10, 10))
    for bad, msg in (("1,2,3", "rectangle needs 4"), ("a,b,c,d", "not a number"), ("0,0;1,1", "needs 3"),
                     ("0,0;1,1;2,2", "zero area"), ("5,5,5,9", "zero area"), ("0,0;1;2,2", "not x,y"),
                     ("", "empty"), ("0,0,inf,5", "finite")):
        with pytest.raises(ConfigError, match=msg) as e:
            parse_zone(bad)
        assert "\n" not in str(e.value) and "x1,y1,x2,y2" in str(e.value)


def test_wilson_matches_scipy_and_is_none_without_faces():
    assert wilson(0, 0) == (None, None, None)
    rate, lo, hi = wilson(7, 9)
    c = binomtest(7, 9).proportion_ci(method="wilson")
    assert (rate, lo, hi) == (7 / 9, c.low, c.high)


# ---------------------------------------------------------------- scene cuts and short tracks

PHOTOS = Path(__file__).resolve().parents[2] / "src" / "visionlab" / "assets" / "photos"
HOLD = 5  # frames each photo of the cut clip is shown for


def _letterbox(img, w=640, h=480):
    s = min(w / img.shape[1], h / img.shape[0])
    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - img.shape[0]) // 2, (w - img.shape[1]) // 2
    out[y:y + img.shape[0], x:x + img.shape[1]] = img
    return out


def _read_all(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def _faces(detector, frames):
    return [[{"box": list(f.box), "label": "WithMask"} for f in detector.detect(x)] for x in frames]


@pytest.fixture(scope="module")
def bundled_yunet():
    from visionlab.detect import build_detector

    return build_detector("yunet")


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory, bundled_yunet):
    """30 unrelated photos (the 4 bundled ones, then facemask_boxes photos when ../shared has them), each held
    for HOLD frames, written as an mp4 and read back: (frames, faces per frame, number of photos)."""
    photos = sorted(PHOTOS.glob("*.jp*g"))
    boxes = SHARED / "data" / "facemask_boxes" / "images"
    if boxes.is_dir():
        photos += sorted(p for p in boxes.glob("*.jpg") if p.name not in {q.name for q in photos})[:30 - len(photos)]
    path = tmp_path_factory.mktemp("cuts") / "cuts.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for p in photos:
        frame = _letterbox(cv2.imread(str(p)))
        for _ in range(HOLD):
            writer.write(frame)
    writer.release()
    frames = _read_all(path)
    assert len(frames) == HOLD * len(photos)
    return frames, _faces(bundled_yunet, frames), len(photos)


def _feed_frames(summary, frames, faces):
    for i, (img, f) in enumerate(zip(frames, faces)):
        summary.update(i, f, frame=img)
    return summary


def test_a_clip_of_unrelated_photos_counts_at_most_one_person_per_face(cut_clip):
    frames, faces, n = cut_clip
    most = [max(len(faces[i * HOLD + k]) for k in range(HOLD)) for i in range(n)]  # faces of each photo
    ended: list = []  # the summary folds and drops a track when it ends (bounded memory): collect them
    s = _feed_frames(VideoSummary(10, 1.0, on_track_end=ended.append), frames, faces)
    people = s.totals()["people"]
    assert people["scene_cuts"] == n - 1  # every cut seen, no other
    tracks = [t for t in ended + list(s.tracker.tracks.values()) if t.hits >= s.min_track_frames]
    assert all(t.first // HOLD == t.last // HOLD for t in tracks)  # no person runs across a cut
    per_photo = Counter(t.first // HOLD for t in tracks)
    assert all(per_photo[i] <= most[i] for i in range(n)), (per_photo, most)
    assert people["count"] == len(tracks) <= sum(most)
    assert people["count"] >= 0.8 * sum(most)  # and the faces are still counted
    # the old tracker (no cuts, every track a person) runs people across cuts: two photos' faces are one person
    old_ended: list = []
    old = _feed_frames(VideoSummary(10, 1.0, min_track_frames=1, scene_cut=0, on_track_end=old_ended.append),
                       frames, faces)
    assert any(t.first // HOLD != t.last // HOLD for t in old_ended + list(old.tracker.tracks.values()))
    assert old.totals()["people"]["scene_cuts"] == 0


def _moving(img, n=40, seed=0):
    """``n`` frames of one photo as a hand-held camera films it: a slow random drift of up to 15 px, zoomed 5%."""
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    dx = dy = 0.0
    out = []
    for _ in range(n):
        dx, dy = np.clip(dx + rng.normal(0, 2), -15, 15), np.clip(dy + rng.normal(0, 2), -15, 15)
        m = np.float32([[1.05, 0, dx - 0.025 * w], [0, 1.05, dy - 0.025 * h]])
        out.append(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT))
    return out


def test_a_moving_camera_is_no_scene_cut_and_still_counts_the_people(bundled_yunet):
    frames = _moving(cv2.imread(str(PHOTOS / "pic1.jpeg")))
    faces = _faces(bundled_yunet, frames)
    assert all(len(f) == 2 for f in faces)
    t = _feed_frames(VideoSummary(10, 1.0), frames, faces).totals()["people"]
    assert t["scene_cuts"] == 0 and t["count"] == 2 and t["short_tracks"] == 0
    crowd = _moving(cv2.imread(str(PHOTOS / "maksssksksss559.jpg")), seed=1)
    faces = _faces(bundled_yunet, crowd)
    t = _feed_frames(VideoSummary(10, 1.0), crowd, faces).totals()["people"]
    assert t["scene_cuts"] == 0
    assert max(map(len, faces)) <= t["count"] <= 1.5 * max(map(len, faces))


def test_a_track_counts_as_a_person_after_min_track_frames():
    s = VideoSummary(10, 1.0, min_track_frames=3)
    for i in range(6):  # one face in frames 0-5, a flicker at (300, 0) in frames 0-1 only
        s.update(i, [{"box": [0, 0, 50, 50], "label": "WithMask"}]
                 + ([{"box": [300, 0, 50, 50], "label": "WithoutMask"}] if i < 2 else []))
    t = s.totals()
    assert t["faces"] == 8 and t["without"] == 2  # every sighting is still counted per frame
    assert t["people"]["count"] == 1 and t["people"]["with"] == 1 and t["people"]["short_tracks"] == 1
    assert s.rows()[0]["people"] == 1
    assert VideoSummary(10, 1.0, min_track_frames=2).update(0, []) == []
    with pytest.raises(ConfigError, match="min-track-frames"):
        VideoSummary(10, 1.0, min_track_frames=0)
    with pytest.raises(ConfigError, match="scene-cut"):
        VideoSummary(10, 1.0, scene_cut=2)


def test_the_tracker_ends_every_track_at_a_cut():
    tr = FaceTracker()
    assert tr.update([(0, 0, 100, 100)]) == [0]
    assert tr.update([(0, 0, 100, 100)], cut=True) == [1]
    assert tr.update([(2, 0, 100, 100)]) == [1]


def _crowd_day(n_people=120, seed=3):
    """Faces of a long, busy session without images: person k is in view for 4..9 frames from frame 6k, at a
    place apart from the others in view, with random labels (unsure now and then). Frame index -> faces."""
    rng = np.random.default_rng(seed)
    labels = ["WithMask", "WithoutMask", "MaskWornIncorrectly", UNSURE]
    frames: dict[int, list[dict]] = {}
    for k in range(n_people):
        x, y = (k % 10) * 90, (k // 10 % 5) * 100  # one of 50 places, a minute apart: nobody's box meets another's
        lab = [labels[int(i)] for i in rng.choice(4, size=9, p=[0.5, 0.3, 0.1, 0.1])]
        for j in range(int(rng.integers(4, 10))):
            frames.setdefault(6 * k + j, []).append({"box": [x + j, y, 40, 48], "label": lab[j]})
    return [frames.get(i, []) for i in range(6 * n_people + 10)]


def test_a_long_session_holds_only_live_tracks_and_popped_rows_add_up():
    """A stream of days must not keep every track or bin: ended tracks are folded into the counts and dropped,
    and rows handed out by pop_rows (a rolled-over period) keep only their totals, which equal an unsplit run's."""
    faces = _crowd_day()
    whole = VideoSummary(10, 1.0, min_track_frames=5)
    split = VideoSummary(10, 1.0, min_track_frames=5)
    popped, most_tracks = [], 0
    for i, f in enumerate(faces):
        whole.update(i, f)
        split.update(i, f)
        most_tracks = max(most_tracks, len(split.tracker.tracks), len(split._track_labels))
        if i % 50 == 49:  # a period of 5 bins ends
            popped += split.pop_rows((i + 1) // 10)
            assert len(split._bins) <= 1 and all(b >= (i + 1) // 10 for b in split._bins)
    assert most_tracks <= 4  # two or three people are in view at once, not the 120 seen
    assert len(whole.tracker) == len(split.tracker) == 120
    rows, ref = popped + split.rows(), whole.rows()
    faces_only = [{k: v for k, v in r.items() if not k.startswith("people")} for r in rows]
    assert faces_only == [{k: v for k, v in r.items() if not k.startswith("people")} for r in ref]  # every bin once
    # a person in view when a period ends is in that period's rows only once their track counts (min_track_frames)
    assert all(a["people"] <= b["people"] for a, b in zip(rows, ref))
    assert sum(a["people"] != b["people"] for a, b in zip(rows, ref)) <= len(popped) // 5
    assert split.totals() == whole.totals()  # the totals are exact: an ended track is folded in whole
    t = whole.totals()
    assert t["bins"] == len(rows) == 73 and t["faces"] == sum(r["faces"] for r in rows) == sum(map(len, faces))
    people = t["people"]
    assert people["count"] + people["short_tracks"] == 120 and people["short_tracks"] > 0  # 4-frame tracks
