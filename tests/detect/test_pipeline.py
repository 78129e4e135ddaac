"""The detection pipeline and its loop over real inputs: pic1, a folder with a corrupt image, a video made
with OpenCV's VideoWriter, a video that cannot be opened, a camera that does not exist, Ctrl-C."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from visionlab.detect import DetectionPipeline, draw_results, run_detection
from visionlab.inference.backends import TorchClassifier
from visionlab.inference.load import load_classifier
from visionlab.detect.pipeline import (AMBER, GREEN, RED, UNSURE, FaceResult, label_color, label_text, number_faces,
                                       place_labels, square_crop)
from visionlab.errors import ConfigError, DataError, ModelError

from .conftest import CLASSES, shared_file, tiny_model

FACE_KEYS = {"box", "label", "confidence", "score"}


class CountingClassifier(TorchClassifier):
    """A real torch classifier that also records the batch shapes it was called with."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.calls: list[tuple] = []

    def predict_proba(self, batch):
        self.calls.append(batch.shape)
        assert batch.dtype == np.uint8
        return super().predict_proba(batch)


def test_square_crop_is_square_with_margin_and_inside_the_image():
    img = np.zeros((100, 200, 3), np.uint8)
    assert square_crop(img, (90, 40, 20, 20), 0.25) == (85, 35, 30)  # centred on (100, 50), side 20 * 1.5
    x, y, s = square_crop(img, (0, 0, 30, 40), 0.5)  # at the corner: moved inside, not cut
    assert (x, y, s) == (0, 0, 80)
    x, y, s = square_crop(img, (150, 10, 60, 90), 0.5)  # larger than the image: shrunk to its height
    assert s == 100 and y == 0 and 0 <= x <= 100


def test_pic1_gives_one_labelled_result_per_face_from_one_batched_call(yunet, pic1):
    clf = CountingClassifier(tiny_model(), CLASSES, 32)
    results = DetectionPipeline(yunet, clf)(pic1)
    assert len(results) == 2
    assert clf.calls == [(2, 3, 32, 32)]
    for r in results:
        assert r.label in CLASSES + [UNSURE] and r.guess in CLASSES
        assert 0.5 <= r.confidence <= 1 and 0.7 <= r.score < 0.9
        assert FACE_KEYS <= set(r.to_dict())
    # an RGB frame gives the same boxes and probabilities as its BGR original
    rgb = DetectionPipeline(yunet, clf)(cv2.cvtColor(pic1, cv2.COLOR_BGR2RGB), color="rgb")
    assert [r.box for r in rgb] == [r.box for r in results]
    assert np.allclose([r.confidence for r in rgb], [r.confidence for r in results], atol=1e-6)


def test_small_faces_and_uncertain_answers_are_unsure(yunet, pic1, tiny_classifier):
    assert {r.label for r in DetectionPipeline(yunet, tiny_classifier, min_face=400)(pic1)} == {UNSURE}
    band = DetectionPipeline(yunet, tiny_classifier, min_face=0, unsure_low=0.0, unsure_high=1.0)(pic1)
    assert {r.label for r in band} == {UNSURE} and all(r.guess in CLASSES for r in band)
    sure = DetectionPipeline(yunet, tiny_classifier, min_face=0, unsure_low=0.5, unsure_high=0.5,
                             min_confidence=0)(pic1)
    assert all(r.label == r.guess for r in sure)
    with pytest.raises(ConfigError):
        DetectionPipeline(yunet, tiny_classifier, unsure_low=0.8, unsure_high=0.2)


def test_colours_and_drawing(yunet, pic1, tiny_classifier):
    assert label_color("WithMask") == GREEN and label_color("with_mask") == GREEN
    assert label_color("WithoutMask") == RED and label_color("no_mask") == RED
    assert label_color(UNSURE) == AMBER
    results = DetectionPipeline(yunet, tiny_classifier)(pic1)
    drawn = draw_results(pic1, results, fps=31.5)
    assert drawn.shape == pic1.shape and not np.array_equal(drawn, pic1)
    x, y, w, h = results[0].box
    assert tuple(int(v) for v in drawn[y + h // 2, x]) == label_color(results[0].label)  # the box's left edge


def _make_video(path, n=12, size=(420, 274)):
    pic1 = cv2.resize(cv2.imread(str(shared_file("data", "scenes", "pic1.jpeg"))), size)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
    assert writer.isOpened()
    for i in range(n):
        writer.write(pic1 if i % 2 == 0 else cv2.flip(pic1, 1))
    writer.release()


def _count_frames(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_video_in_annotated_video_and_json_lines_out(tmp_path, yunet, tiny_classifier):
    video = tmp_path / "walk.mp4"
    _make_video(video)
    seen = []
    out = tmp_path / "out"
    s = run_detection(video, None, out, classifier=tiny_classifier, detector=yunet, show_progress=False,
                      on_frame=lambda r, img: seen.append(img.shape))
    assert s["kind"] == "video" and s["processed"] == 12 and not s["interrupted"]
    assert s["video"] == str(out / "walk.mp4") and _count_frames(out / "walk.mp4") == 12
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # the partial file was renamed
    lines = [json.loads(x) for x in (out / "detections.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and [x["frame"] for x in lines] == list(range(12))
    assert all(set(x) >= {"source", "frame", "faces"} and x["source"] == str(video) for x in lines)
    assert [x["time_s"] for x in lines] == [round(i / 10, 3) for i in range(12)]  # the video's own time (10 FPS)
    assert all(len(x["faces"]) == 2 and all(FACE_KEYS <= set(f) for f in x["faces"]) for x in lines)
    assert s["faces"] == 24 and sum(s["labels"].values()) == 24 and len(seen) == 12


def test_ctrl_c_stops_with_video_and_json_lines_finalised(tmp_path, yunet, tiny_classifier):
    video = tmp_path / "clip.mp4"
    _make_video(video)

    def interrupt(record, _img):
        if record["frame"] == 4:
            raise KeyboardInterrupt

    out = tmp_path / "out"
    s = run_detection(video, None, out, classifier=tiny_classifier, detector=yunet, show_progress=False, on_frame=interrupt)
    assert s["interrupted"] and s["processed"] == 5
    assert _count_frames(out / "clip.mp4") == 5
    assert len((out / "detections.jsonl").read_text().splitlines()) == 5


def test_folder_with_a_corrupt_image_warns_once_and_does_the_rest(tmp_path, yunet, tiny_classifier, capsys):
    src = tmp_path / "photos"
    (src / "street").mkdir(parents=True)
    shutil.copy(shared_file("data", "scenes", "pic1.jpeg"), src / "pic1.jpeg")
    masked = sorted(shared_file("data", "facemask", "Test", "WithoutMask").glob("*.jpg"))[0]
    shutil.copy(masked, src / "street" / "face.jpg")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (src / "notes.txt").write_text("not an image, not listed")
    out = tmp_path / "out"
    s = run_detection(src, None, out, classifier=tiny_classifier, detector=yunet, show_progress=False)
    assert s["kind"] == "folder" and s["processed"] == 2
    assert [p for p, _ in s["skipped"]] == [str(src / "broken.jpg")]
    assert (out / "pic1.jpeg").is_file() and (out / "street" / "face.jpg").is_file()
    assert not (out / "broken.jpg").exists()
    lines = [json.loads(x) for x in (out / "detections.jsonl").read_text().splitlines()]
    assert [x["source"] for x in lines] == [str(src / "pic1.jpeg"), str(src / "street" / "face.jpg")]
    assert lines[0]["frame"] is None and len(lines[0]["faces"]) == 2 and "time_s" not in lines[0]
    warning = [ln for ln in capsys.readouterr().err.splitlines() if "broken.jpg" in ln]
    assert len(warning) == 1 and "warning" in warning[0]


def test_single_image_and_output_never_replaces_the_input(tmp_path, yunet, tiny_classifier, pic1_path):
    s = run_detection(pic1_path, None, tmp_path / "o", classifier=tiny_classifier, detector=yunet, show_progress=False)
    assert s["processed"] == 1 and s["faces"] == 2 and (tmp_path / "o" / "pic1.jpeg").is_file()
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(pic1_path, src / "a.jpg")
    with pytest.raises(ConfigError, match="replace the originals"):
        run_detection(src, None, src, classifier=tiny_classifier, detector=yunet, show_progress=False)


def test_bad_inputs_are_one_clear_error(tmp_path, yunet, tiny_classifier):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 2048)
    with pytest.raises(DataError, match="cannot open video .*broken.mp4"):
        run_detection(bad, None, tmp_path / "o1", classifier=tiny_classifier, detector=yunet, show_progress=False)
    assert not (tmp_path / "o1").exists()  # nothing written for an input that failed
    t = time.perf_counter()
    with pytest.raises(DataError, match="cannot open camera 99"):
        run_detection(99, None, tmp_path / "o2", classifier=tiny_classifier, detector=yunet, show_progress=False)
    assert time.perf_counter() - t < 10
    with pytest.raises(DataError, match="does not exist"):
        run_detection(tmp_path / "missing.jpg", None, tmp_path / "o3", classifier=tiny_classifier, detector=yunet, show_progress=False)
    corrupt = tmp_path / "one.jpg"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot decode image"):
        run_detection(corrupt, None, tmp_path / "o4", classifier=tiny_classifier, detector=yunet, show_progress=False)
    assert not (tmp_path / "o4").exists()  # one image that cannot be decoded leaves no empty output folder
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images"):
        run_detection(empty, None, tmp_path / "o5", classifier=tiny_classifier, detector=yunet, show_progress=False)


def test_a_model_folder_without_a_model_is_a_model_error(tmp_path):
    (tmp_path / "run").mkdir()
    for backend in ("onnx", "torch"):
        with pytest.raises(ModelError, match="not a finished visionlab run"):
            load_classifier(tmp_path / "run", backend)
    with pytest.raises(ModelError, match="does not exist"):
        load_classifier(tmp_path / "missing.onnx")
    with pytest.raises(ConfigError, match="onnx, torch"):
        load_classifier(tmp_path / "run", "tensorrt")


# ---------------------------------------------------------------- readable labels

def _face(box, label="WithMask", conf=0.97, n=None):
    return FaceResult(tuple(box), label, conf, 0.9, "WithMask" if label == UNSURE else label, id=n)


def test_faces_are_numbered_in_reading_order():
    # two rows at slightly different heights, given in a scrambled order
    boxes = [(300, 112, 30, 30), (10, 100, 30, 30), (150, 95, 30, 30), (40, 300, 40, 40), (5, 290, 40, 40)]
    assert number_faces(boxes) == [3, 1, 2, 5, 4]
    assert number_faces([]) == []


def test_label_text_per_mode():
    f, u = _face((0, 0, 40, 40), n=3), _face((0, 0, 40, 40), UNSURE, 0.41, n=4)
    assert [label_text(f, m) for m in ("full", "short", "id", "none")] == ["3 WithMask 97%", "3 mask", "3", ""]
    assert [label_text(u, m) for m in ("full", "short", "id")] == ["4 ? WithMask 41%", "4 ?", "4"]
    assert label_text(_face((0, 0, 40, 40), "WithoutMask"), "short") == "no mask"  # no number: none shown
    with pytest.raises(ConfigError, match="--labels"):
        draw_results(np.zeros((50, 50, 3), np.uint8), [f], labels="big")


def _rects(spots, sizes):
    return [(x, y, x + w, y + h) for (x, y), (w, h) in zip(spots, sizes)]


def _pair_overlap(rects):
    total = 0
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            total += max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return total


def test_labels_are_placed_off_each_other_and_off_faces():
    # two faces side by side: labels above both would overlap; one goes below instead
    faces, sizes = [(100, 100, 30, 30), (135, 100, 30, 30)], [(60, 12), (60, 12)]
    spots = place_labels(faces, sizes, 400, 300)
    assert _pair_overlap(_rects(spots, sizes)) == 0 and spots[0] == (100, 87)  # the first keeps "above"
    assert all(0 <= x <= 400 - 60 and 0 <= y <= 300 - 12 for x, y in spots)  # inside the picture
    # a face at the top edge: its label goes below, not off the picture or onto the face
    assert place_labels([(10, 0, 30, 30)], [(40, 12)], 200, 200) == [(10, 31)]


def test_a_crowd_photo_gets_far_less_label_overlap_than_labels_above_each_face():
    from visionlab.detect import build_detector

    photos = Path(__file__).resolve().parents[2] / "src" / "visionlab" / "assets" / "photos"
    img = cv2.imread(str(photos / "maksssksksss559.jpg"))
    faces = [f.box for f in build_detector("yunet").detect(img)]
    assert len(faces) >= 5
    sizes = [(cv2.getTextSize(f"{i + 1} WithMask 97%", cv2.FONT_HERSHEY_SIMPLEX, 0.3, 1)[0][0] + 4, 12)
             for i in range(len(faces))]
    above = [(max(0, x), max(0, y - 13)) for x, y, _, _ in faces]
    ours = place_labels(faces, sizes, img.shape[1], img.shape[0])
    face_rects = [(x, y, x + w, y + h) for x, y, w, h in faces]
    over_faces = lambda spots: sum(_pair_overlap([r, f]) for r in _rects(spots, sizes) for f in face_rects)  # noqa
    assert _pair_overlap(_rects(above, sizes)) > 0
    assert _pair_overlap(_rects(ours, sizes)) <= 0.5 * _pair_overlap(_rects(above, sizes))
    assert over_faces(ours) <= over_faces(above)


def test_label_modes_draw_boxes_and_ids(yunet, pic1, tiny_classifier, tmp_path, pic1_path):
    results = DetectionPipeline(yunet, tiny_classifier)(pic1)
    assert sorted(r.id for r in results) == [1, 2]
    boxes_only = draw_results(pic1, results, labels="none")
    full = draw_results(pic1, results, labels="full")
    ids = draw_results(pic1, results, labels="id")
    inside = np.zeros(pic1.shape[:2], bool)
    for r in results:
        x, y, w, h = r.box
        inside[max(0, y - 3):y + h + 3, max(0, x - 3):x + w + 3] = True
    assert np.array_equal(boxes_only[~inside], pic1[~inside])  # boxes only: nothing drawn elsewhere
    changed = lambda a: int((a != pic1).any(axis=2).sum())  # noqa: E731
    assert changed(boxes_only) < changed(ids) < changed(full)  # a number takes less room than a full label
    s = run_detection(pic1_path, None, tmp_path / "o", classifier=tiny_classifier, detector=yunet,
                      show_progress=False, labels="id")
    line = json.loads((tmp_path / "o" / "detections.jsonl").read_text())
    assert s["processed"] == 1 and sorted(f["id"] for f in line["faces"]) == [1, 2]
    left = min(line["faces"], key=lambda f: f["box"][0])
    assert left["id"] == 1  # pic1's two faces sit side by side: the left one is 1


def test_a_small_photo_is_drawn_enlarged_so_its_labels_stay_readable(yunet, pic1, tiny_classifier, tmp_path):
    """A photo whose longer side is under READABLE_SIDE is drawn enlarged by a whole factor (at most 4), its boxes
    scaled with it; the JSON lines keep the photo's own pixels; a video keeps its frame size."""
    from visionlab.detect.pipeline import GREEN, READABLE_SIDE, drawing_scale

    assert [drawing_scale((h, w), 1200) for h, w in ((261, 400), (200, 150), (700, 1000), (1200, 900))] == [3, 4, 2, 1]
    assert drawing_scale((261, 400), 0) == 1
    small = cv2.resize(pic1, (pic1.shape[1] * 400 // max(pic1.shape[:2]), pic1.shape[0] * 400 // max(pic1.shape[:2])))
    face = FaceResult((100, 80, 40, 50), "WithMask", 0.97, 0.9, "WithMask")
    k = drawing_scale(small.shape, READABLE_SIDE)
    drawn = draw_results(small, [face], scale=k)
    assert k == 3 and drawn.shape == (small.shape[0] * 3, small.shape[1] * 3, 3)
    x, y, w, h = (v * 3 for v in face.box)
    assert tuple(drawn[y + h // 2, x]) == GREEN and tuple(drawn[y + h, x + w // 2]) == GREEN  # the box, scaled
    assert draw_results(small, [face]).shape == small.shape  # without a scale: as before
    cv2.imwrite(str(tmp_path / "small.jpg"), small)
    run_detection(tmp_path / "small.jpg", None, tmp_path / "o", classifier=tiny_classifier, detector=yunet,
                  show_progress=False)
    saved = cv2.imread(str(tmp_path / "o" / "small.jpg"))
    assert saved.shape == (small.shape[0] * k, small.shape[1] * k, 3)
    line = json.loads((tmp_path / "o" / "detections.jsonl").read_text())
    assert line["faces"] and all(f["box"][0] + f["box"][2] <= small.shape[1] for f in line["faces"])


def test_a_zone_is_drawn_where_its_points_fall_on_an_enlarged_photo():
    from visionlab.detect.summary import parse_zone

    zone = parse_zone("10,20,50,60")
    img = zone.draw(np.zeros((200, 200, 3), np.uint8), scale=3)
    assert img[60, 30:150].any() and img[180, 30:150].any()  # top and bottom edges at y = 60 and 180
    assert not img[20, 30:150].any()  # not where the unscaled edge would be
