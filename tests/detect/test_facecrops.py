"""Photo groups and folds of `visionlab data faces`: perceptual hashes, near-duplicates kept together, the fold
split (folds partition the photos outside a fixed held-out Test part) and its record in faces.json."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionlab.data.boxes import AnnotatedImage, read_boxes_csv
from visionlab.detect.facecrops import (cut_faces, dhash, fold_photos, fold_split, hamming, phash, photo_groups,
                                        split_photos)
from visionlab.errors import ConfigError, DataError

from .conftest import shared_file

RATIOS = (0.7, 0.15, 0.15)


def _bits(h: int) -> str:
    return format(h, "064b")


def test_phash_of_a_hand_built_image_is_the_sign_pattern_it_was_built_from(tmp_path):
    """A 32 x 32 grey image made from a chosen 8 x 8 block of low DCT frequencies (+A for 31 of them, -A for the
    other 32, a large DC): the median of the 64 coefficients lies between -A and +A, so the hash is exactly the
    chosen pattern of signs, DC first."""
    from scipy.fft import idctn

    rng = np.random.default_rng(5)
    signs = np.array([1] * 31 + [-1] * 32)[rng.permutation(63)]
    block = np.zeros((32, 32))
    block[:8, :8].flat[1:] = 4.0 * signs
    block[0, 0] = 128 * 32  # mean grey 128 (orthonormal DCT: DC = mean x 32)
    img = idctn(block, norm="ortho")
    assert img.min() > 0 and img.max() < 255  # nothing clipped
    Image.fromarray(np.round(img).astype(np.uint8), "L").save(tmp_path / "made.png")
    want = "1" + "".join("1" if s > 0 else "0" for s in signs)
    assert _bits(phash(tmp_path / "made.png")) == want


def test_phash_same_image_zero_flipped_far_and_imagehash_agrees(tmp_path):
    src = shared_file("data", "facemask_boxes", "images", "maksssksksss0.jpg")
    Image.open(src).save(tmp_path / "same.png")  # other file, same pixels
    with Image.open(src) as im:
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "flipped.png")
    h = phash(src)
    assert hamming([h, phash(tmp_path / "same.png")])[0, 1] == 0
    far = hamming([h, phash(tmp_path / "flipped.png")])[0, 1]
    assert far >= 16  # a mirror image negates the odd horizontal frequencies: far beyond the limit of 6
    imagehash = pytest.importorskip("imagehash", reason="imagehash (the `issues` extra) is not installed")
    for p in (src, tmp_path / "flipped.png"):
        with Image.open(p) as im:
            assert _bits(phash(p)) == "".join("1" if b else "0" for b in imagehash.phash(im).hash.flatten())


def test_hamming_counts_bits():
    d = hamming([0, 0b1011, (1 << 64) - 1])
    assert d.tolist() == [[0, 3, 64], [3, 0, 61], [64, 61, 0]]


# --- near-duplicates of real photos --------------------------------------------------------------------------

N_PHOTOS, N_COPIED = 40, 8


def _copies(src: Path, out: Path) -> list[Path]:
    """Three near-duplicates of a photo: re-encoded at JPEG quality 60, resized to 90%, brightness +10."""
    with Image.open(src) as im:
        im = im.convert("RGB")
        q = out / f"{src.stem}_q60.jpg"
        im.save(q, quality=60)
        r = out / f"{src.stem}_r90.jpg"
        im.resize((round(im.width * 0.9), round(im.height * 0.9)), Image.Resampling.BILINEAR).save(r, quality=95)
        b = out / f"{src.stem}_b10.jpg"
        Image.fromarray(np.clip(np.asarray(im, np.int16) + 10, 0, 255).astype(np.uint8)).save(b, quality=95)
    return [q, r, b]


@pytest.fixture(scope="module")
def with_copies(tmp_path_factory) -> tuple[list[AnnotatedImage], dict[int, int]]:
    """The first photos of facemask_boxes (with those holding incorrectly-worn masks among them) and three
    near-duplicate copies of some, as records; the map copy index -> original index."""
    src = shared_file("data", "facemask_boxes", "boxes.csv")
    recs = read_boxes_csv(src, src.parent / "images")
    mwi = [r for r in recs if any(b.label == "MaskWornIncorrectly" for b in r.boxes)][:10]
    chosen = list({r.name: r for r in mwi + recs}.values())[:N_PHOTOS]
    out = tmp_path_factory.mktemp("copies")
    records, origin = list(chosen), {}
    for k in range(0, N_PHOTOS, N_PHOTOS // N_COPIED):  # every fifth photo, rare classes among them
        for c in _copies(chosen[k].path, out):
            origin[len(records)] = k
            records.append(AnnotatedImage(c, chosen[k].width, chosen[k].height, chosen[k].boxes))
    return records, origin


def test_near_duplicate_copies_join_their_original_group(with_copies):
    records, origin = with_copies
    groups = photo_groups(records)
    assert all(groups[c] == groups[o] for c, o in origin.items())
    originals = photo_groups(records[:N_PHOTOS])
    assert len(set(groups)) == len(set(originals))  # the copies made no new group and merged no two originals
    assert len(set(originals)) >= N_PHOTOS - 2  # these photos are mostly distinct: the grouping is not trivial
    # each copy is within at least one of the two limits (dHash 4 bits, pHash 6 bits) of its original
    for c, o in origin.items():
        d = hamming([dhash(records[c].path), dhash(records[o].path)])[0, 1]
        p = hamming([phash(records[c].path), phash(records[o].path)])[0, 1]
        assert d <= 4 or p <= 6, (records[c].name, d, p)


@pytest.mark.parametrize("seed", [0, 7])
def test_the_fold_split_keeps_near_duplicates_together(with_copies, seed):
    records, origin = with_copies
    groups = photo_groups(records)
    k = 3
    fold_of = fold_photos(records, RATIOS, seed, k, groups)
    plain = split_photos(records, RATIOS, seed, groups)
    # Test is the held-out part of the split without folds, whole groups, the same for every fold
    assert [f is None for f in fold_of] == [s == "Test" for s in plain]
    assert 0 < fold_of.count(None) < len(records)
    # the folds partition the other photos, none empty, each group in exactly one fold
    assert {f for f in fold_of if f is not None} == set(range(k))
    for g in set(groups):
        assert len({f for f, gg in zip(fold_of, groups) if gg == g}) == 1
    for c, o in origin.items():
        assert fold_of[c] == fold_of[o]
    tests = set()
    for i in range(k):
        split = fold_split(fold_of, i)
        assert all(split[c] == split[o] for c, o in origin.items())
        assert [j for j, s in enumerate(split) if s == "Validation"] == [j for j, f in enumerate(fold_of) if f == i]
        assert {s for j, s in enumerate(split) if fold_of[j] not in (None, i)} == {"Train"}
        tests.add(tuple(j for j, s in enumerate(split) if s == "Test"))
    assert len(tests) == 1
    assert fold_of == fold_photos(records, RATIOS, seed, k, groups)  # seeded


def test_folds_are_stratified_by_the_rarest_class():
    """60 one-photo groups, 15 of them holding an incorrectly-worn face: every one of 3 folds gets its share."""
    from visionlab.data.boxes import Box

    recs = [AnnotatedImage(Path(f"p{i}.jpg"), 100, 100,
                           [Box(0, 0, 10, 10, "WithMask"), Box(20, 20, 30, 30, "MaskWornIncorrectly" if i % 4 == 0
                                                               else "WithMask")]) for i in range(60)]
    fold_of = fold_photos(recs, (0.8, 0.0, 0.2), 1, 3)
    assert fold_of.count(None) == 12
    mwi = [fold_of[i] for i in range(0, 60, 4) if fold_of[i] is not None]
    per_fold = [mwi.count(f) for f in range(3)]
    assert max(per_fold) - min(per_fold) <= 1 and sum(per_fold) == len(mwi) >= 11


def test_fold_options_are_checked_before_any_work(tmp_path):
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("image,width,height,xmin,ymin,xmax,ymax,label\n")
    for kw, msg in (({"fold": 1}, "--fold 1 needs --folds"), ({"folds": 1, "fold": 0}, "at least 2 folds"),
                    ({"folds": 4}, "--fold I with I from 0 to 3"), ({"folds": 4, "fold": 4}, "from 0 to 3"),
                    ({"turned_copies": -2}, "counts of 0 or more, not -2"),
                    ({"synthetic_incorrect": -1}, "counts of 0 or more, not -1"),
                    ({"margin": -1.0}, "--margin is a share .* 0 or more, not -1.0"),
                    ({"background_max_score": 0.0}, "--background-max-score is a detector score .* not 0.0"),
                    ({"background_max_score": 1.5}, "above 0 and at most 1, not 1.5"),
                    ({"box_correction": "cubic"}, "unknown box correction 'cubic'; choose one of: linear, quadratic")):
        with pytest.raises(ConfigError, match=msg):
            cut_faces([boxes], tmp_path / "out", show_progress=False, **kw)
    assert not (tmp_path / "out").exists()


def test_a_source_that_cannot_be_read_leaves_no_out_folder(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        cut_faces([tmp_path / "absent.csv"], tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_fold_error_is_one_line(tmp_path, capsys):
    from visionlab.cli import main

    with pytest.raises(SystemExit) as e:
        main(["data", "faces", str(tmp_path / "boxes.csv"), "--out", str(tmp_path / "o"), "--folds", "3"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--folds 3 needs --fold I" in err[0]


def _first_photos(tmp_path: Path, n: int) -> tuple[Path, Path, list[str]]:
    """The shared boxes.csv, a copy of its rows for its first ``n`` photos, and those photos' names."""
    src = shared_file("data", "facemask_boxes", "boxes.csv")
    rows = list(csv.DictReader(open(src, newline="")))
    names = list(dict.fromkeys(r["image"] for r in rows))[:n]
    boxes = tmp_path / "boxes.csv"
    with open(boxes, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for r in rows if r["image"] in names)
    return src, boxes, names


def test_faces_json_records_groups_and_folds(yunet_path, tmp_path):
    """`data faces --folds 2 --fold 1` on a few real photos: Validation = fold 1, every non-Test photo's fold and
    every photo's group in faces.json; the Test part equals the one without folds."""
    src, boxes, names = _first_photos(tmp_path, 10)
    kw = dict(images=src.parent / "images", face_model=yunet_path, upscale=1.0, size=32, split_ratios=(0.6, 0.2, 0.2),
              seed=2, balance=False, background=False, show_progress=False)
    cut_faces([boxes], tmp_path / "plain", **kw)
    cut_faces([boxes], tmp_path / "fold1", folds=2, fold=1, **kw)
    plain = json.loads((tmp_path / "plain" / "faces.json").read_text())
    m = json.loads((tmp_path / "fold1" / "faces.json").read_text())
    assert m["photos"]["Test"] == plain["photos"]["Test"] and m["photos"]["Test"]
    assert "folds" not in plain and plain["grouping"] == {"dhash_bits": 4, "phash_bits": 6}
    assert set(m["photo_groups"]) == set(names) and m["groups"] == len(set(m["photo_groups"].values()))
    fo = m["folds"]
    assert (fo["k"], fo["fold"]) == (2, 1)
    assert set(fo["fold_of"]) == set(names) - set(m["photos"]["Test"])
    assert sorted(p for p, f in fo["fold_of"].items() if f == 1) == m["photos"]["Validation"]
    assert sorted(p for p, f in fo["fold_of"].items() if f == 0) == m["photos"]["Train"]
    # the crops follow the split: a Validation photo's faces are cut into Validation only
    val_stems = {Path(p).stem for p in m["photos"]["Validation"]}
    cut = {f.name.split("_")[0] for f in (tmp_path / "fold1" / "Validation").glob("*/*.jpg")}
    assert cut and cut <= val_stems
    assert not {f.name.split("_")[0] for f in (tmp_path / "fold1" / "Train").glob("*/*.jpg")} & val_stems
    # the OpenCV YuNet from ../shared is not a bundled file: the profile names no face model
    assert "face_model" not in json.loads((tmp_path / "plain" / "detect.json").read_text())
    # YuNet_n by its bare name through ONNX Runtime: the profile names it, and reads back as a profile that runs it
    from visionlab.inference.profile import read_profile

    cut_faces([boxes], tmp_path / "n", **{**kw, "face_model": "yunet_n_dynamic.onnx"}, detector="yunet_ort")
    prof = read_profile(tmp_path / "n" / "detect.json")
    assert (prof.detector, prof.face_model) == ("yunet_ort", "yunet_n_dynamic.onnx")
    assert Path(prof.detector_options("accurate")["model_path"]).name == "yunet_n_dynamic.onnx"


def test_a_bundled_face_model_is_named_in_the_profile(tmp_path):
    """Crops cut with YuNet_n (a copy outside the package, or its bare name) give a profile that names the bundled
    file, so the trained model detects with it anywhere; another file is not named."""
    import shutil

    from visionlab.assets import YUNET_N, asset, bundled_name

    copy = tmp_path / YUNET_N
    shutil.copyfile(asset(YUNET_N), copy)
    assert bundled_name(copy) == YUNET_N
    copy.write_bytes(copy.read_bytes()[:-1] + b"\0")
    assert bundled_name(copy) is None  # same name, other bytes
    assert bundled_name(tmp_path / "absent.onnx") is None


def test_crops_cut_with_the_fused_search_fit_the_correction_detect_applies(yunet_path, tmp_path):
    """`data faces --box-merge wbf --mirror-search`: the profile's photo setting searches as the crops were cut, its
    box correction was fitted on fused boxes, and the detector gives it their fused scores (a correction fitted on
    single boxes is given each fused box's best single score instead)."""
    from visionlab.boxes import BoxCorrection
    from visionlab.detect.faces import build_detector
    from visionlab.detect.pipeline import _to_bgr
    from visionlab.inference.profile import read_profile

    src, boxes, names = _first_photos(tmp_path, 12)
    cut_faces([boxes], tmp_path / "wbf", images=src.parent / "images", face_model=yunet_path, upscale=2.0, size=32,
              seed=0, balance=False, background=False, show_progress=False, box_merge="wbf", mirror_search=True)
    raw = json.loads((tmp_path / "wbf" / "detect.json").read_text())
    assert (raw["box_merge"], raw["mirror_search"], raw["box_correction"]["merge"]) == ("wbf", True, "wbf")
    assert json.loads((tmp_path / "wbf" / "faces.json").read_text())["detector"]["box_merge"] == "wbf"
    prof = read_profile(tmp_path / "wbf" / "detect.json")
    opts = prof.detector_options("accurate")
    assert (opts["box_merge"], opts["mirror_search"]) == ("wbf", True)

    det = build_detector("yunet", **opts)
    img = _to_bgr(np.asarray(Image.open(src.parent / "images" / names[0]).convert("RGB")), "rgb")
    found = det.detect(img)
    assert len(found) >= 3
    fused = det.detect_raw(img)
    corr = det.box_correction
    by_fused = corr(fused[:, :4], fused[:, 4:14], fused[:, 14])
    # each face's box is the correction of its fused box at the fused score (boxes clipped to the photo)
    for f in found:
        i = int(np.argmin(np.abs(fused[:, 14] - f.score)))
        x0, y0 = max(0.0, by_fused[i, 0]), max(0.0, by_fused[i, 1])
        assert abs(f.box[0] - x0) <= 1 and abs(f.box[1] - y0) <= 1
    # the same correction marked as fitted on single boxes places some boxes elsewhere (best single scores)
    single = BoxCorrection(corr.coef, corr.intercept, corr.features, corr.pairs, "nms")
    other = build_detector("yunet", **{**opts, "box_correction": single}).detect(img)
    assert [f.box for f in other] != [f.box for f in found]


def test_a_quadratic_box_correction_is_fitted_recorded_and_applied(yunet_path, tmp_path):
    """`data faces --box-correction quadratic`: faces.json and the profile say so, the profile reads back as a
    correction of 39 inputs, and a detector built from it places the boxes of a Train photo nearer their annotation
    than without a correction (the fit is of these photos)."""
    from visionlab.boxes import match, xywh_to_xyxy
    from visionlab.detect.faces import build_detector
    from visionlab.detect.pipeline import _to_bgr
    from visionlab.data.boxes import read_boxes_csv
    from visionlab.inference.profile import read_profile

    src, boxes, names = _first_photos(tmp_path, 12)
    cut_faces([boxes], tmp_path / "q", images=src.parent / "images", face_model=yunet_path, upscale=2.0, size=32,
              seed=0, balance=False, background=False, show_progress=False, box_correction="quadratic")
    m = json.loads((tmp_path / "q" / "faces.json").read_text())
    assert m["detector"]["box_correction"] == "quadratic"
    raw = json.loads((tmp_path / "q" / "detect.json").read_text())["box_correction"]
    assert raw["features"] == "landmarks-rel-quad-v1" and np.asarray(raw["coef"]).shape == (4, 39)
    opts = read_profile(tmp_path / "q" / "detect.json").detector_options("accurate")
    assert opts["box_correction"]["features"] == "landmarks-rel-quad-v1"  # the detector reads it (FaceDetector)
    truth = {r.path.name: r for r in read_boxes_csv(boxes, src.parent / "images")}
    ious = {}
    for name, o in (("quadratic", opts), ("none", {**opts, "box_correction": None})):
        det = build_detector("yunet", **o)
        got = []
        for photo in m["photos"]["Train"]:
            img = _to_bgr(np.asarray(Image.open(src.parent / "images" / photo).convert("RGB")), "rgb")
            gt = np.array([[b.x0, b.y0, b.x1, b.y1] for b in truth[photo].boxes])
            found = xywh_to_xyxy(np.array([f.box for f in det.detect(img)]))
            got += [iou for _, _, iou in match(found, gt, 0.3)]
        ious[name] = np.mean(got)
    assert ious["quadratic"] > ious["none"] + 0.05


def test_high_scoring_boxes_on_no_annotated_face_are_left_out_of_background(yunet_path, tmp_path):
    """--background-max-score 0.6: of the detector's boxes that overlap no annotated face, those scoring 0.6 or more
    (faces the annotators left out) give no crop, the others are Background as without it; faces.json counts the
    left-out boxes per split, and the face crops are the same."""
    import cv2

    from visionlab.detect.faces import build_detector

    src, boxes, names = _first_photos(tmp_path, 40)
    kw = dict(images=src.parent / "images", face_model=yunet_path, upscale=2.0, size=32, seed=0, balance=False,
              show_progress=False)
    cut_faces([boxes], tmp_path / "all", **kw)
    said = str(cut_faces([boxes], tmp_path / "clean", background_max_score=0.6, **kw))

    def crops(folder: str, cls: str) -> set[str]:
        return {p.relative_to(tmp_path / folder).as_posix() for p in (tmp_path / folder).glob(f"*/{cls}/*.jpg")}

    assert crops("all", "WithMask") == crops("clean", "WithMask") and crops("clean", "WithMask")
    kept, every = crops("clean", "Background"), crops("all", "Background")
    gone = every - kept
    assert kept < every and gone
    m = json.loads((tmp_path / "clean" / "faces.json").read_text())["background"]
    assert m["max_score"] == 0.6 and sum(m["left_out"].values()) == len(gone)
    assert f"{len(gone)} detector box(es) on no annotated face taken for faces" in said
    assert m["left_out"]["Train"] == sum(1 for g in gone if g.startswith("Train/"))
    assert "background" not in json.loads((tmp_path / "all" / "faces.json").read_text())
    # each Background crop names its detector row: the left-out rows score >= 0.6, the kept ones less
    det = build_detector("yunet", model_path=yunet_path, score_threshold=0.15, upscale=2.0)
    recs = {r.path.stem: r for r in read_boxes_csv(boxes, src.parent / "images")}
    scores = {}
    for stem in {Path(c).name.split("_bg")[0] for c in every}:
        raw = det.detect_raw(cv2.imread(str(recs[stem].path)))
        scores.update({f"{stem}_bg{d:03d}.jpg": raw[d, 14] for d in range(len(raw))})
    assert all(scores[Path(c).name] >= 0.6 for c in gone)
    assert all(scores[Path(c).name] < 0.6 for c in kept)
