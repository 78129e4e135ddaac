"""Robustness slices: figures against a small case worked out by hand, tag files and their errors, and the CLI on
real tagged photos."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from PIL import Image

from conftest import shared_path  # tests/conftest.py (rootdir conftest, on sys.path)
from visionlab.data.boxes import read_annotations
from visionlab.errors import DataError
from visionlab.evaluation.slices import (ALL, NONE, box_tags, crop_tags, plot_misses, plot_slices, read_tag_file,
                                         slice_metrics, table_rows, wilson)

M, N = "WithMask", "WithoutMask"

# ten faces: truth, what the model said (None: no box found it), beard, dark_mask
CASE = [
    (M, M, 0, 1),
    (M, M, 0, 1),
    (M, None, 0, 1),  # missed: counts against WithMask recall, in no class's precision
    (M, N, 0, 0),
    (M, M, 0, 0),
    (M, M, 0, 0),
    (N, M, 1, 0),  # a bearded unmasked face read as masked
    (N, N, 1, 0),
    (N, N, 0, 0),
    (N, N, 0, 0),
]


def _wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's score interval from its formula: (p + z²/2n -+ z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p = k / n
    mid, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (mid - half) / (1 + z * z / n), (mid + half) / (1 + z * z / n)


def _case(min_faces: int = 3) -> dict:
    truth = [t for t, _, _, _ in CASE]
    guess = [g for _, g, _, _ in CASE]
    tags = np.array([[b, d] for _, _, b, d in CASE])
    return slice_metrics(truth, guess, tags, ["beard", "dark_mask"], [M, N], min_faces=min_faces)


def _row(sm: dict, name: str) -> dict:
    return next(r for r in sm["rows"] if r["slice"] == name)


def test_slice_figures_match_a_hand_computed_case():
    sm = _case()
    assert [r["slice"] for r in sm["rows"]] == [ALL, "beard", "dark_mask", NONE]
    whole = _row(sm, ALL)
    # whole set: WithMask faces 0-5, right on 0, 1, 4, 5 -> recall 4/6; said WithMask on 0, 1, 4, 5, 6 -> precision
    # 4/5. WithoutMask faces 6-9, right on 7, 8, 9 -> 3/4; said WithoutMask on 3, 7, 8, 9 -> precision 3/4.
    assert (whole["per_class"][M]["recall"]["k"], whole["per_class"][M]["recall"]["n"]) == (4, 6)
    assert (whole["per_class"][M]["precision"]["k"], whole["per_class"][M]["precision"]["n"]) == (4, 5)
    assert (whole["per_class"][N]["recall"]["k"], whole["per_class"][N]["recall"]["n"]) == (3, 4)
    assert (whole["per_class"][N]["precision"]["k"], whole["per_class"][N]["precision"]["n"]) == (3, 4)
    assert whole["overall"]["rate"] == pytest.approx(0.7) and whole["rank"] is None  # 7 of 10 right

    beard = _row(sm, "beard")  # faces 6 and 7, both WithoutMask
    assert beard["faces"] == 2 and beard["small"] and beard["rank"] is None  # under min_faces 3: not ranked
    assert beard["per_class"][M]["recall"]["rate"] is None  # no WithMask face in the slice
    assert beard["per_class"][N]["recall"]["rate"] == pytest.approx(1 / 2)
    assert beard["per_class"][N]["recall"]["gap"] == pytest.approx(1 / 2 - 3 / 4, abs=1e-4)
    assert beard["per_class"][M]["precision"]["rate"] == 0.0  # face 6 said WithMask, is WithoutMask: 0/1
    assert beard["per_class"][N]["precision"]["rate"] == 1.0  # face 7: 1/1
    # overall 1/2 against what WithoutMask faces do in the whole set (3/4): gap -0.25
    assert beard["overall"]["expected"] == pytest.approx(0.75) and beard["overall"]["gap"] == pytest.approx(-0.25)

    dark = _row(sm, "dark_mask")  # faces 0, 1, 2: WithMask, right, right, missed
    assert dark["per_class"][M]["recall"]["rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert dark["per_class"][M]["recall"]["gap"] == pytest.approx(2 / 3 - 4 / 6, abs=1e-4)
    assert dark["per_class"][M]["precision"]["rate"] == 1.0  # 2 said WithMask, both are
    assert dark["per_class"][M]["precision"]["gap"] == pytest.approx(1 - 4 / 5, abs=1e-4)
    lo, hi = _wilson_by_hand(2, 3)
    assert dark["per_class"][M]["recall"]["ci"] == pytest.approx([lo, hi], abs=1e-4)
    assert dark["overall"]["gap"] == pytest.approx(0.0, abs=1e-4)  # 2/3 against WithMask's 4/6

    none = _row(sm, NONE)  # faces 3, 4, 5, 8, 9
    assert none["per_class"][M]["recall"]["rate"] == pytest.approx(2 / 3, abs=1e-4)  # 3 wrong, 4 and 5 right
    assert none["per_class"][N]["recall"]["rate"] == 1.0
    assert none["per_class"][N]["precision"]["rate"] == pytest.approx(2 / 3, abs=1e-4)  # 3, 8, 9 said WithoutMask
    # 4/5 right against (3 x 4/6 + 2 x 3/4) / 5 = 0.7 expected: +0.1
    assert none["overall"]["expected"] == pytest.approx(0.7) and none["overall"]["gap"] == pytest.approx(0.1)
    # ranked by that gap, worst first: dark_mask (0.0), then no tag (+0.1); beard is too small to rank
    assert (dark["rank"], none["rank"]) == (1, 2)
    assert not any(r["short"] for r in sm["rows"])  # three faces say nothing clearly


def test_right_and_shown_counts_only_faces_labelled_right_whose_box_is_shown():
    """Faces 1 and 7 (right) and 3 (wrong) have boxes under the shown threshold: right and shown drops 1 and 7,
    and face 3 was not right anyway. Without ``shown`` (crop evaluation) there is no such figure or column."""
    truth, guess = [t for t, _, _, _ in CASE], [g for _, g, _, _ in CASE]
    tags = np.array([[b, d] for _, _, b, d in CASE])
    shown = [i not in (1, 3, 7) for i in range(len(CASE))]
    sm = slice_metrics(truth, guess, tags, ["beard", "dark_mask"], [M, N], min_faces=3, shown=shown)
    assert (_row(sm, ALL)["shown"]["k"], _row(sm, ALL)["shown"]["n"]) == (5, 10)  # 7 right, 1 and 7 hidden
    assert _row(sm, "beard")["shown"]["k"] == 0  # 6 wrong, 7 right but hidden
    assert _row(sm, "dark_mask")["shown"]["k"] == 1 and _row(sm, NONE)["shown"]["k"] == 4
    assert _row(sm, ALL)["shown"]["ci"] == pytest.approx(list(_wilson_by_hand(5, 10)), abs=1e-4)
    head, rows = table_rows(sm)
    assert head[5] == "right and shown [95% CI]" and rows[0][5].startswith("50.0% [")
    plain_head, _ = table_rows(_case())
    assert _row(_case(), ALL)["shown"] is None and "right and shown [95% CI]" not in plain_head


def test_a_slice_whose_interval_lies_below_the_whole_set_is_marked_short():
    # 100 WithMask faces, 80 right; the 20 tagged ones are all wrong: 0/20 [0, 16.1%] against 80/100 [71.1, 86.7%]
    truth = [M] * 100
    guess = [N] * 20 + [M] * 80
    tags = np.array([[1]] * 20 + [[0]] * 80)
    sm = slice_metrics(truth, guess, tags, ["dark_mask"], [M, N])
    dark, whole = _row(sm, "dark_mask"), _row(sm, ALL)
    assert dark["per_class"][M]["recall"]["short"] and dark["short"] == [f"{M} recall"]
    assert dark["per_class"][M]["recall"]["ci"][1] < whole["per_class"][M]["recall"]["ci"][0]
    assert dark["small"] and dark["rank"] is None  # 20 faces: under the default 30, so still not ranked
    assert wilson(0, 20)[2] == pytest.approx(_wilson_by_hand(0, 20)[1], abs=1e-9)
    head, rows = table_rows(sm)
    text = dict(zip([r[0] for r in rows], rows))
    assert "not ranked" in text["dark_mask"][4] and "below the whole set: WithMask recall" in text["dark_mask"][4]
    assert text["dark_mask"][2].startswith("0.0% [0.0, 16.1] of 20")
    assert text[ALL][3] == "" and text["dark_mask"][3] == "-80.0"  # 0/20 right where the whole set's WithMask is 0.8
    # one face wrong is no pattern, although 0/1's interval [0, 79.3%] lies below the whole set's
    sm = slice_metrics([M] * 100, [N] + [M] * 99, np.array([[1]] + [[0]] * 99), ["child"], [M, N])
    child = _row(sm, "child")["per_class"][M]["recall"]
    assert child["ci"][1] < _row(sm, ALL)["per_class"][M]["recall"]["ci"][0] and not child["short"]


def test_slices_of_30_faces_or_more_are_ranked_worst_first():
    # 100 WithMask faces: 40 tagged side_face, 10 of them wrong (30/40); 60 untagged, 5 wrong (55/60); whole 85/100
    truth = [M] * 100
    guess = [N] * 10 + [M] * 30 + [N] * 5 + [M] * 55
    tags = np.array([[1]] * 40 + [[0]] * 60)
    sm = slice_metrics(truth, guess, tags, ["side_face"], [M, N])
    side, none = _row(sm, "side_face"), _row(sm, NONE)
    assert not side["small"] and not none["small"]
    assert side["overall"]["gap"] == pytest.approx(30 / 40 - 85 / 100) and none["overall"]["gap"] == pytest.approx(
        55 / 60 - 85 / 100, abs=1e-4)
    assert (side["rank"], none["rank"]) == (1, 2)
    # 30/40 [59.8, 85.8%] overlaps the whole set's 85/100 [76.7, 90.7%]: not clearly short
    assert side["short"] == [] and side["per_class"][M]["recall"]["ci"] == pytest.approx(
        list(_wilson_by_hand(30, 40)), abs=1e-4)


def test_the_plot_and_gallery_are_drawn(tmp_path):
    sm = _case()
    p = plot_slices(sm, tmp_path / "slices.png")
    assert p.stat().st_size > 5000
    img = np.full((40, 40, 3), 128, np.uint8)
    g = plot_misses([("beard (1)", [(img, "WithoutMask\nsaid WithMask", (10, 10, 20, 20))]), ("no tag (0)", [])],
                    tmp_path / "gallery.png")
    assert g is not None and g.stat().st_size > 2000
    assert plot_misses([("beard (0)", [])], tmp_path / "none.png") is None


# --- tag files --------------------------------------------------------------------------------------------------


@pytest.fixture
def truth(tmp_path):
    """boxes.csv: a.jpg has rows 0, 1 and 3 (boxes 0, 1, 2 of that photo), b.jpg row 2."""
    for n in ("a.jpg", "b.jpg"):
        Image.new("RGB", (100, 80)).save(tmp_path / n)
    p = tmp_path / "boxes.csv"
    p.write_text("image,width,height,xmin,ymin,xmax,ymax,label\n"
                 "a.jpg,100,80,0,0,19,19,with_mask\n"
                 "a.jpg,100,80,30,0,49,19,without_mask\n"
                 "b.jpg,100,80,10,10,39,39,with_mask\n"
                 "a.jpg,100,80,60,40,99,79,mask_weared_incorrect\n")
    return p, read_annotations(p, tmp_path)


def _write(tmp_path, text: str, name: str = "tags.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_box_id_and_box_keyed_tags_map_to_the_faces_of_each_photo(tmp_path, truth):
    path, truths = truth
    tf = read_tag_file(_write(tmp_path, "box_id,image,label,beard,low_light\n3,a.jpg,x,1,0\n2,b.jpg,x,0,1\n"))
    assert tf.kind == "box_id" and tf.names == ["beard", "low_light"]  # label is information, not a tag
    tags = box_tags(tf, truths, path)
    assert {k: v.tolist() for k, v in tags.items()} == {("a.jpg", 2): [True, False], ("b.jpg", 0): [False, True]}
    # keyed by the box as the truth writes it (VOC-style inclusive max; x1 clipped to the photo as data.boxes does)
    tf = read_tag_file(_write(tmp_path, "image,xmin,ymin,xmax,ymax,side_face\na.jpg,60,40,100,79,1\n", "b.csv"))
    assert tf.kind == "box" and list(box_tags(tf, truths, path)) == [("a.jpg", 2)]


@pytest.mark.parametrize("text, match", [
    ("box_id,image,beard\n9,a.jpg,1\n", r"line 2 \(a.jpg, box_id 9\) name no annotated face"),
    ("box_id,image,beard\n2,a.jpg,1\n1,a.jpg,0\n", r"line 2 \(a.jpg, box_id 2\) name no annotated face"),  # row 2 is b
    ("image,xmin,ymin,xmax,ymax,beard\nc.jpg,0,0,19,19,1\n", r"line 2 \(c.jpg, box 0,0,19,19\) name no annotated"),
    ("image,xmin,ymin,xmax,ymax,beard\na.jpg,5,5,19,19,1\na.jpg,1,1,2,2,0\n", "and 1 more name no annotated face"),
    ("image,beard\na.jpg,1\n", "missing key column.*image and box_id.*it has image, beard"),
    ("box_id,image,label\n0,a.jpg,with_mask\n", "no tag columns"),
    ("box_id,image,beard,child\n0,a.jpg,1,0\n1,a.jpg,yes,2\n", r"tags.csv:3: column beard is 'yes', not 0 or 1 "
                                                               r"\(and 1 more\)"),
    ("box_id,image,beard\n0,a.jpg,\n", "column beard is '', not 0 or 1"),
    ("box_id,image,beard\n0,a.jpg,1\n0,a.jpg,0\n", "tags.csv:3: the same face as line 2"),
    ("image,xmin,ymin,xmax,ymax,beard\na.jpg,0,0,19,19,1\na.jpg,0,0,20,19,0\n", "tags.csv:3: the same face as line 2"),
    ("box_id,image,beard\nx,a.jpg,1\n", "box_id is not a number"),
    ("box_id,image,beard\n", "has no rows"),
])
def test_a_bad_tag_file_is_one_clear_line(tmp_path, truth, text, match):
    path, truths = truth
    with pytest.raises(DataError, match=match) as e:
        box_tags(read_tag_file(_write(tmp_path, text)), truths, path)
    assert "\n" not in str(e.value) and "tags.csv" in str(e.value)


def test_box_id_keys_need_a_boxes_csv_and_crop_keys_need_crops(tmp_path, truth):
    path, truths = truth
    tf = read_tag_file(_write(tmp_path, "box_id,image,beard\n0,a.jpg,1\n"))
    with pytest.raises(DataError, match="needs a boxes.csv as --truth"):
        box_tags(tf, truths, tmp_path / "voc")
    with pytest.raises(DataError, match="keyed by crop"):
        box_tags(read_tag_file(_write(tmp_path, "crop,beard\nx.jpg,1\n", "c.csv")), truths, path)
    with pytest.raises(DataError, match="no such file"):
        read_tag_file(tmp_path / "missing.csv")


def test_crop_keyed_tags_by_name_or_relative_path(tmp_path):
    every = ["/d/Train/WithMask/p1_000.jpg", "/d/Test/WithMask/p2_000.jpg", "/d/Test/WithoutMask/p2_001.jpg"]
    tf = read_tag_file(_write(tmp_path, "crop,beard\np2_001.jpg,1\nTest/WithMask/p2_000.jpg,0\np1_000.jpg,1\n"))
    per = crop_tags(tf, every[1:], every)  # the Train crop is tagged but not evaluated: left out, no error
    assert [v.tolist() for v in per] == [[False], [True]]
    tf = read_tag_file(_write(tmp_path, "crop,image,label,beard\np1_000.jpg,p1.jpg,x,1\n", "info.csv"))
    assert tf.kind == "crop" and tf.names == ["beard"]  # key-like and information columns are never tags
    tf = read_tag_file(_write(tmp_path, "crop,beard\nTest/WithMask/p9_000.jpg,1\n", "bad.csv"))
    with pytest.raises(DataError, match=r"line 2 \(Test/WithMask/p9_000.jpg\) name no image of the data"):
        crop_tags(tf, every, every)


def test_box_keyed_tags_find_crops_through_faces_json(tmp_path, truth):
    path, _ = truth
    root = tmp_path / "crops"
    root.mkdir()
    (root / "faces.json").write_text(json.dumps({"sources": [str(path)], "photos": {}}))
    every = [str(root / "Test" / "WithMask" / "b_000.jpg"), str(root / "Test" / "MaskWornIncorrectly" / "a_002.jpg")]
    tf = read_tag_file(_write(tmp_path, "box_id,image,beard\n3,a.jpg,1\n2,b.jpg,0\n"))
    assert [v.tolist() for v in crop_tags(tf, every, every, root)] == [[False], [True]]


# --- end to end ---------------------------------------------------------------------------------------------------


def _tagged_photos(n: int = 3) -> tuple[list[str], list[dict]]:
    rows = list(csv.DictReader(open(shared_path("data", "facemask_boxes", "special_cases.csv"), newline="")))
    names = list(dict.fromkeys(r["image"] for r in rows if r["side_face"] == "1" or r["beard"] == "1"))[:n]
    return names, [r for r in rows if r["image"] in names]


def test_detect_truth_with_slices_on_real_tagged_photos(tmp_path, capsys):
    from visionlab.cli import main

    boxes = shared_path("data", "facemask_boxes", "boxes.csv")
    special = shared_path("data", "facemask_boxes", "special_cases.csv")
    names, tagged = _tagged_photos()
    subset = tmp_path / "photos.txt"
    subset.write_text("\n".join(names) + "\n")
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as e:
        main(["detect", str(boxes.parent / "images"), "--out", str(out), "--truth", str(boxes), "--subset",
              str(subset), "--slices", str(special)])
    assert e.value.code in (0, None)
    m = json.loads((out / "metrics.json").read_text())
    sm = m["slices"]
    assert sm["faces"] == len(tagged)  # every tagged face of those photos, and only those
    rows = {r["slice"]: r for r in sm["rows"]}
    for tag in ("beard", "side_face", "glasses", "low_light"):
        assert rows[tag]["faces"] == sum(r[tag] == "1" for r in tagged)
    labels = {"with_mask": M, "without_mask": N, "mask_weared_incorrect": "MaskWornIncorrectly"}
    for c, n in rows[ALL]["by_class"].items():
        assert n == sum(labels[r["label"]] == c for r in tagged)
    assert all(r["small"] for r in sm["rows"][1:])  # a few photos: every slice too small to rank
    # right and shown: the faces labelled right whose box the model's threshold shows, never more than right
    assert all(r["shown"]["k"] <= r["overall"]["k"] for r in sm["rows"])
    assert "right and shown [95% CI]" in (out / "report.html").read_text()
    html = (out / "report.html").read_text()
    assert "<h2>Slices: kinds of face</h2>" in html and '<img src="plots/slices.png"' in html
    assert "&lt;h2&gt;" not in html and "&lt;table" not in html  # the slice section is HTML, not escaped text
    assert (out / "plots" / "slices.png").stat().st_size > 5000
    assert "under 30 faces, not ranked: " in capsys.readouterr().out


def test_a_bad_tag_file_stops_detect_before_any_work(tmp_path, capsys):
    from visionlab.cli import main

    boxes = shared_path("data", "facemask_boxes", "boxes.csv")
    bad = _write(tmp_path, "box_id,image,beard\n0,maksssksksss0.jpg,2\n")
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as e:
        main(["detect", str(boxes.parent / "images"), "--out", str(out), "--truth", str(boxes), "--slices", str(bad)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "column beard is '2', not 0 or 1" in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.fixture(scope="module")
def crop_run(tmp_path_factory):
    """A face-crop-like ImageFolder (Train/Validation/Test, two classes, solid colours with noise) and a small CNN
    trained on it for one epoch."""
    import visionlab

    root = tmp_path_factory.mktemp("crops") / "faces"
    rng = np.random.default_rng(0)
    for split, n in (("Train", 12), ("Validation", 4), ("Test", 6)):
        for c, colour in ((M, (40, 160, 60)), (N, (200, 150, 120))):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                px = np.clip(np.array(colour) + rng.normal(0, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(px).save(root / split / c / f"p{i}_{c[:5]}.png")
    run = tmp_path_factory.mktemp("run") / "run"
    visionlab.train(data=str(root), model="small_cnn", image_size=32, epochs=1, quiet=True, threads=1,
                    out=str(run), report="metrics")
    return root, run


def test_evaluate_with_slices_by_crop_file(crop_run, tmp_path, capsys):
    import visionlab
    from visionlab.cli import main

    root, run = crop_run
    # three Test crops tagged dark_mask, two of them WithMask; a Train crop tagged too (not evaluated: left out)
    tags = _write(tmp_path, "crop,dark_mask,side_face\nTest/WithMask/p0_WithM.png,1,0\np1_WithM.png,1,1\n"
                            "Test/WithoutMask/p0_Witho.png,1,0\nTrain/WithMask/p5_WithM.png,0,1\n")
    m = visionlab.evaluate(run, out=tmp_path / "ev", slices=tags)
    sm = m["slices"]
    rows = {r["slice"]: r for r in sm["rows"]}
    assert sm["faces"] == 3 and rows["dark_mask"]["by_class"] == {M: 2, N: 1} and rows["side_face"]["faces"] == 1
    preds = {r["path"].split("/Test/")[-1]: (r["true"], r["pred"])
             for r in csv.DictReader(open(tmp_path / "ev" / "predictions.csv", newline=""))}
    right = sum(t == p for t, p in (preds["WithMask/p0_WithM.png"], preds["WithMask/p1_WithM.png"],
                                    preds["WithoutMask/p0_Witho.png"]))
    assert rows[ALL]["overall"]["k"] == right  # the same predictions as predictions.csv
    html = (tmp_path / "ev" / "report.html").read_text()
    assert "Slices: kinds of image" in html and (tmp_path / "ev" / "plots" / "slices.png").is_file()
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(run), "--out", str(tmp_path / "ev2"), "--slices", str(tags)])
    assert e.value.code in (0, None)
    assert "slices of 3 tagged faces" in capsys.readouterr().out
    bad = _write(tmp_path, "crop,dark_mask\nTest/WithMask/nope.png,1\n", "bad.csv")
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(run), "--out", str(tmp_path / "ev3"), "--slices", str(bad)])
    assert e.value.code == 2 and "nope.png) name no image of the data" in capsys.readouterr().err


def test_slices_that_tag_none_of_the_scored_photos_stop_before_detection(tmp_path, capsys):
    from visionlab.cli import main

    boxes = shared_path("data", "facemask_boxes", "boxes.csv")
    special = shared_path("data", "facemask_boxes", "special_cases.csv")
    tagged = {r["image"] for r in csv.DictReader(open(special, newline=""))}
    untagged = sorted({r["image"] for r in csv.DictReader(open(boxes, newline=""))} - tagged)[:2]
    subset = _write(tmp_path, "\n".join(untagged) + "\n", "photos.txt")
    with pytest.raises(SystemExit) as e:
        main(["detect", str(boxes.parent / "images"), "--out", str(tmp_path / "eval"), "--truth", str(boxes),
              "--subset", str(subset), "--slices", str(special)])
    assert e.value.code == 2 and "tags no face of the photos scored here" in capsys.readouterr().err
    assert not (tmp_path / "eval").exists()
