"""tools/build_default_model.py --folds: the summaries over folds (t-interval, Wilson interval) against
hand-computed cases, and one tiny cross-validation end to end (slow)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import load_tool  # tests/conftest.py (rootdir conftest, on sys.path)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VISIONLAB_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="module")
def tool():
    return load_tool("build_default_model")


def test_mean_interval_is_the_t_interval_over_folds(tool):
    # mean 0.7, sd 0.1, 3 folds: t(0.975, 2) = 4.3027, half width 4.3027 * 0.1 / sqrt(3) = 0.2484
    r = tool.mean_interval([0.6, None, 0.7, 0.8])  # a fold without such faces (None) is left out
    assert r == {"mean": 0.7, "low": 0.4516, "high": 0.9484, "sd": 0.1, "folds": 3}
    r = tool.mean_interval([0.9, 1.0])  # t(0.975, 1) = 12.706: clipped to [0, 1]
    assert (r["low"], r["high"]) == (0.3147, 1.0)
    assert tool.mean_interval([None, None])["mean"] is None


def test_calibrate_writes_what_the_folds_chose_into_the_profile(tool, tmp_path):
    """shown.json's threshold and class weights, and the fast setting's detector threshold where --fast-folds
    chose one, go into the run's detect.json; without FOLDS/fast the fast setting keeps its rule."""
    from visionlab.inference.profile import read_profile

    run, folds = tmp_path / "run", tmp_path / "folds"
    run.mkdir()
    (folds / "fast").mkdir(parents=True)
    (run / "detect.json").write_text(json.dumps({"upscale": 2.0, "score_threshold": 0.15, "margin": 0.2}))
    (folds / "shown.json").write_text(json.dumps({"min_face_prob": 0.2, "class_weights": {"WithMask": 0.75}}))
    tool.calibrate_run(run, folds)
    p = read_profile(run / "detect.json")
    assert (p.min_face_prob, p.class_weights, p.fast_score_threshold) == (0.2, {"WithMask": 0.75}, None)
    assert p.detector_options("fast")["score_threshold"] == 0.5
    (folds / "fast" / "folds.json").write_text(json.dumps({"fast_score_threshold": 0.3}))
    chosen = tool.calibrate_run(run, folds)
    p = read_profile(run / "detect.json")
    assert chosen["fast_score_threshold"] == p.fast_score_threshold == 0.3
    assert p.detector_options("fast")["score_threshold"] == 0.3 and p.detector_options("accurate")["score_threshold"] == 0.15
    assert (p.box_merge, p.mirror_search) == ("nms", False)
    # --search-folds chose fused mirror searches: the profile's photo setting, and what is shown chosen on them
    (folds / "search").mkdir()
    (folds / "search" / "folds.json").write_text(json.dumps({"box_merge": "wbf", "mirror_search": True}))
    (folds / "search" / "shown.json").write_text(json.dumps({"min_face_prob": 0.1, "class_weights": None}))
    chosen = tool.calibrate_run(run, folds)
    p = read_profile(run / "detect.json")
    assert (p.box_merge, p.mirror_search, p.min_face_prob, p.class_weights) == ("wbf", True, 0.1, None)
    assert chosen["box_merge"] == "wbf" and p.detector_options("accurate")["mirror_search"] is True
    assert "mirror_search" not in p.detector_options("fast") and p.fast_score_threshold == 0.3


def test_mwi_recall_is_a_wilson_interval_of_the_matched_faces(tool):
    # the 8 of 29: Wilson 95% by hand: centre (p + z^2/2n) / (1 + z^2/n) = 0.3021, half width 0.1551
    conf = {"classes": ["MaskWornIncorrectly", "WithMask", "WithoutMask"],
            "matrix": [[8, 16, 5], [3, 300, 7], [2, 10, 60]]}
    assert tool.mwi_recall(conf) == {"called": 8, "matched": 29, "recall": 0.2759, "low": 0.147, "high": 0.4572}
    conf["matrix"][0] = [0, 0, 0]
    assert tool.mwi_recall(conf)["recall"] is None


def test_summarize_folds_means_every_figure(tool):
    def fold(m, ap, r16, mwi):
        return {"map50": m, "ap50_per_class": ap, "face_recall": 0.9,
                "recall_by_size": {"<16": {"recall": r16}, ">=64": {"recall": 1.0}},
                "confusion": {"classes": ["MaskWornIncorrectly", "WithMask"], "matrix": [[mwi, 10 - mwi], [0, 5]]}}

    s = tool.summarize_folds([fold(0.6, {"WithMask": 0.9, "MaskWornIncorrectly": 0.5}, 0.5, 4),
                              fold(0.8, {"WithMask": 0.7}, None, 6)])
    assert s["map50"]["mean"] == 0.7 and s["map50"]["folds"] == 2
    assert s["ap50_per_class"]["WithMask"]["mean"] == 0.8
    assert s["ap50_per_class"]["MaskWornIncorrectly"] == {"mean": 0.5, "low": None, "high": None, "sd": None,
                                                          "folds": 1}
    assert s["recall_by_size"]["<16"]["folds"] == 1 and s["recall_by_size"][">=64"]["low"] == 1.0
    assert s["mwi_recall"]["mean"] == 0.5


def test_limited_boxes_keeps_whole_photos_with_the_rarest_label(tool, tmp_path):
    src = tmp_path / "boxes.csv"
    rows = [["image", "width", "height", "xmin", "ymin", "xmax", "ymax", "label"]]
    rows += [[f"p{i}.jpg", 100, 100, 0, 0, 10, 10, "with_mask"] for i in range(9)]
    rows += [["p7.jpg", 100, 100, 20, 20, 30, 30, "rare"], ["p8.jpg", 100, 100, 20, 20, 30, 30, "rare"]]
    with open(src, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    out = tool.limited_boxes(src, 3, tmp_path / "few.csv")
    got = list(csv.DictReader(open(out, newline="")))
    assert sorted({r["image"] for r in got}) == ["p0.jpg", "p1.jpg", "p7.jpg"]  # one rare photo (3 // 3), then first
    assert sum(r["image"] == "p7.jpg" for r in got) == 2  # every box of a kept photo


def test_only_folds_reads_a_list_of_fold_numbers(tool):
    import argparse

    assert tool.fold_list("2,0, 2") == [0, 2]
    for bad in ("a,b", "", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            tool.fold_list(bad)


def test_work_folder_never_empties_a_folder_it_did_not_make(tool, tmp_path):
    import argparse

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    a = argparse.Namespace(work=mine, folds=2, resume=False)
    with pytest.raises(SystemExit, match="already holds files"):
        tool.work_folder(a)
    assert (mine / "notes.txt").read_text() == "keep"
    a.resume = True  # --resume keeps everything there
    assert tool.work_folder(a) == mine and (mine / "notes.txt").is_file() and (mine / tool.MARKER).is_file()
    fresh = argparse.Namespace(work=tmp_path / "new" / "w", folds=None, resume=False)
    assert tool.work_folder(fresh).is_dir() and (tmp_path / "new" / "w" / tool.MARKER).is_file()


def test_a_resumed_study_must_ask_for_its_own_settings(tool, tmp_path):
    import argparse

    a = argparse.Namespace(work=tmp_path, **{k: None for k in tool.SETTINGS})
    a.folds, a.model, a.epochs = 4, "efficientnet_lite2", 6
    tool.check_settings(a)  # the first run records them
    tool.check_settings(a)  # the same again: fine
    a.epochs, a.image_size = 8, 96
    with pytest.raises(SystemExit, match=r"--epochs 8 \(the study has 6\), --image-size 96 \(the study has None\)"):
        tool.check_settings(a)


def test_the_cut_search_reaches_data_faces_and_the_searches_tried(tool, tmp_path):
    """--cut-search wbf_mirror: `data faces` cuts with the fused mirrored search, the study records it (a study
    recorded before the setting existed was cut with nms), and --search-folds scores that search from the folds'
    own eval/ and NMS again in eval-nms/."""
    import argparse

    a = argparse.Namespace(seed=0, synthetic_incorrect=0, turned_copies=0, cut_search="wbf_mirror", margin=0.2,
                           background_max_score=None, box_correction="linear")
    cmd = tool.data_faces_cmd(["vl"], [Path("b.csv")], Path("c"), Path("f.onnx"), a)
    assert cmd[-3:] == ["--box-merge", "wbf", "--mirror-search"]
    assert "--box-merge" not in tool.data_faces_cmd(["vl"], [Path("b.csv")], Path("c"), Path("f.onnx"),
                                                    argparse.Namespace(**{**vars(a), "cut_search": "nms"}))
    assert tool.search_variants("wbf_mirror") == {"nms": ("eval-nms", ["--box-merge", "nms", "--no-mirror-search"]),
                                                   "wbf_mirror": ("eval", ["--box-merge", "wbf", "--mirror-search"])}
    assert tool.search_variants("nms")["nms"][0] == "eval" and tool.search_variants("nms")["wbf_mirror"][0] != "eval"
    s = argparse.Namespace(work=tmp_path, **{k: None for k in tool.SETTINGS})
    s.folds, s.cut_search = 4, "nms"
    old = {k: v for k, v in vars(s).items() if k in tool.SETTINGS and k != "cut_search"}
    (tmp_path / "settings.json").write_text(json.dumps(old))  # a study from before --cut-search
    tool.check_settings(s)  # resumed as what it was: nms
    s.cut_search = "wbf_mirror"
    with pytest.raises(SystemExit, match=r"--cut-search wbf_mirror \(the study has nms\)"):
        tool.check_settings(s)


def test_the_margin_reaches_data_faces_and_the_study_records_it(tool, tmp_path):
    """--margin 0.35: `data faces` cuts with it (the profile then carries it to detect); the default adds no flag, so
    the bundled build's recorded commands stay the same; a study recorded before the setting ran with 0.2."""
    import argparse

    a = argparse.Namespace(seed=0, synthetic_incorrect=0, turned_copies=0, cut_search="nms", margin=0.35,
                           background_max_score=None, box_correction="linear")
    assert tool.data_faces_cmd(["vl"], [Path("b.csv")], Path("c"), Path("f.onnx"), a)[-2:] == ["--margin", "0.35"]
    a.margin = tool.DEFAULT_MARGIN
    assert "--margin" not in tool.data_faces_cmd(["vl"], [Path("b.csv")], Path("c"), Path("f.onnx"), a)
    a.background_max_score = 0.6  # --background-max-score reaches data faces the same way; the default adds nothing
    assert tool.data_faces_cmd(["vl"], [Path("b.csv")], Path("c"), Path("f.onnx"), a)[-2:] == \
        ["--background-max-score", "0.6"]
    s = argparse.Namespace(work=tmp_path, **{k: None for k in tool.SETTINGS})
    s.folds, s.margin = 4, 0.2
    (tmp_path / "settings.json").write_text(json.dumps({k: v for k, v in vars(s).items()
                                                        if k in tool.SETTINGS and k != "margin"}))
    tool.check_settings(s)  # resumed as what it was: 0.2
    s.margin = 0.35
    with pytest.raises(SystemExit, match=r"--margin 0.35 \(the study has 0.2\)"):
        tool.check_settings(s)


def test_the_box_correction_reaches_data_faces_and_the_study_records_it(tool, tmp_path):
    """--box-correction quadratic: `data faces` fits it (the profile carries it to detect); the default, the bundled
    recipe's linear one, adds no flag; a study recorded before the setting was cut with the linear one."""
    import argparse

    a = argparse.Namespace(seed=0, synthetic_incorrect=0, turned_copies=0, cut_search="nms", margin=0.2,
                           background_max_score=None, box_correction="quadratic")
    assert tool.data_faces_cmd(["vl"], [Path("b.csv")], Path("c"), Path("f.onnx"), a)[-2:] == \
        ["--box-correction", "quadratic"]
    a.box_correction = "linear"
    assert "--box-correction" not in tool.data_faces_cmd(["vl"], [Path("b.csv")], Path("c"), Path("f.onnx"), a)
    s = argparse.Namespace(work=tmp_path, **{k: None for k in tool.SETTINGS})
    s.folds, s.box_correction = 4, "linear"
    (tmp_path / "settings.json").write_text(json.dumps({k: v for k, v in vars(s).items()
                                                        if k in tool.SETTINGS and k != "box_correction"}))
    tool.check_settings(s)  # resumed as what it was: linear
    s.box_correction = "quadratic"
    with pytest.raises(SystemExit, match=r"--box-correction quadratic \(the study has linear\)"):
        tool.check_settings(s)


def test_train_seed_changes_training_alone(tool):
    """--train-seed: the same folds and crops (data faces keeps --seed), another training seed."""
    import argparse

    a = argparse.Namespace(seed=0, train_seed=None, synthetic_incorrect=0, turned_copies=0, cut_search="nms", margin=0.2,
                           model="efficientnet_lite2", image_size=64, epochs=6, augment_policy="faces", threads=1,
                           loss="cross_entropy", background_max_score=None, lr=1e-3, box_correction="linear")
    args = (["vl"], Path("c"), Path("r"), a)
    assert tool.train_cmd(*args)[tool.train_cmd(*args).index("--seed") + 1] == "0"
    a.train_seed = 3
    assert tool.train_cmd(*args)[tool.train_cmd(*args).index("--seed") + 1] == "3"
    assert "--loss" not in tool.train_cmd(*args)  # the default loss: the bundled recipe's command as it was
    a.loss = "focal"
    assert tool.train_cmd(*args)[-2:] == ["--threads", "1"] and "focal" in tool.train_cmd(*args)
    cut = tool.data_faces_cmd(["vl"], [Path("b.csv")], Path("c"), Path("f.onnx"), a)
    assert cut[cut.index("--seed") + 1] == "0"
    lr = tool.train_cmd(*args).index("--lr") + 1
    assert tool.train_cmd(*args)[lr] == "1e-3"  # the bundled recipe's recorded command, unchanged
    a.lr = 3e-4
    assert tool.train_cmd(*args)[lr] == "0.0003" and float(tool.train_cmd(*args)[lr]) == a.lr


@pytest.mark.parametrize("lr", ["0", "-1e-3", "nan"])
def test_a_learning_rate_that_cannot_train_is_one_line_before_any_work(lr, tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "tools" / "build_default_model.py"), f"--lr={lr}", "--folds", "2",
                        "--work", str(tmp_path / "w")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith(f"error: --lr {float(lr)}: give a learning rate above 0")
    assert not (tmp_path / "w").exists()  # refused before the work folder or any crop


def test_members_train_with_consecutive_seeds_and_detect_averaged(tool, tmp_path):
    """--members 3: runs run, run-m1, run-m2 trained with seeds S, S+1, S+2 on the same crops; one `export
    --average` writing the averaged model (done when its last member is written), which detection then uses; a
    study from before --members resumes as one network."""
    import argparse

    a = argparse.Namespace(seed=0, train_seed=5, synthetic_incorrect=0, turned_copies=0, cut_search="nms", margin=0.2,
                           model="efficientnet_lite2", image_size=64, epochs=6, augment_policy="faces", threads=1,
                           loss="cross_entropy", lr=1e-3)
    runs = tool.member_runs(tmp_path, 3)
    assert [r.name for r in runs] == ["run", "run-m1", "run-m2"]
    seeds = [tool.train_cmd(["vl"], Path("c"), r, a, m) for m, r in enumerate(runs)]
    assert [c[c.index("--seed") + 1] for c in seeds] == ["5", "6", "7"]
    ((cmd, done),) = tool.export_cmds(["vl"], tmp_path, 3)
    out = tmp_path / "averaged" / "facemask_classifier.onnx"
    assert cmd == ["vl", "export", str(runs[0]), "--average", str(runs[1]), "--average", str(runs[2]), "--out",
                   str(out)]
    assert done == out.parent / "facemask_classifier-3.onnx" and tool.model_path(tmp_path, 3) == out
    assert tool.export_cmds(["vl"], tmp_path, 1) == [(["vl", "export", str(runs[0])], runs[0] / "model.onnx")]
    assert tool.model_path(tmp_path, 1) == runs[0]
    s = argparse.Namespace(work=tmp_path, **{k: None for k in tool.SETTINGS})
    s.folds, s.cut_search, s.members = 4, "nms", 1
    (tmp_path / "settings.json").write_text(json.dumps({k: v for k, v in vars(s).items()
                                                        if k in tool.SETTINGS and k != "members"}))
    tool.check_settings(s)  # a study from before --members: one network
    s.members = 3
    with pytest.raises(SystemExit, match=r"--members 3 \(the study has 1\)"):
        tool.check_settings(s)


@pytest.mark.slow
def test_two_folds_end_to_end(tmp_path):
    """Two folds over 24 photos, one epoch at 32 px (about 3 minutes on two shared cores)."""
    if not (SHARED / "data" / "facemask_boxes" / "boxes.csv").is_file():
        pytest.skip(f"shared data {SHARED} is absent (set VISIONLAB_SHARED to the folder holding data/ and models/)")
    work = tmp_path / "w"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, str(REPO / "tools" / "build_default_model.py"), "--shared", str(SHARED),
            "--work", str(work), "--folds", "2", "--limit-photos", "24", "--no-one-face-photos",
            "--epochs", "1", "--image-size", "32", "--augment-policy", "faces", "--synthetic-incorrect", "8",
            "--turned-copies", "2", "--model", "efficientnet_lite1", "--members", "2"]
    # fold 0 alone first (as one of two processes would), then --resume runs fold 1 and pools both
    p = subprocess.run(args + ["--only-folds", "0"], env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "folds 1 of 2 still to run" in p.stdout and not (work / "folds.json").exists()
    fold0 = (work / "fold0" / "averaged" / "facemask_classifier.onnx").stat().st_mtime_ns
    p = subprocess.run(args + ["--resume"], env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"kept: {work / 'fold0' / 'crops'}" in p.stdout and f"kept: {work / 'fold0' / 'run'}" in p.stdout
    assert (work / "fold0" / "averaged" / "facemask_classifier.onnx").stat().st_mtime_ns == fold0  # not made again
    assert f"kept: {work / 'fold0' / 'run-m1'}" in p.stdout
    r = json.loads((work / "folds.json").read_text())
    # the study's folder is never emptied by a new run, and a resume asking for other settings is one line
    longer = args[:args.index("--epochs") + 1] + ["2"] + args[args.index("--epochs") + 2:]
    for again, says in ((longer + ["--resume"], "--epochs 2 (the study has 1)"), (args, "already holds files")):
        p = subprocess.run(again, env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode != 0 and says in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert (work / "folds.json").is_file()
    assert r["k"] == 2 and len(r["folds"]) == 2 and r["test_photos"] > 0
    faces = [json.loads((work / f"fold{i}" / "crops" / "faces.json").read_text()) for i in range(2)]
    assert faces[0]["photos"]["Test"] == faces[1]["photos"]["Test"]
    assert faces[0]["photos"]["Validation"] == faces[1]["photos"]["Train"]  # two folds swap roles
    assert [f["photos"] for f in r["folds"]] == [len(m["photos"]["Validation"]) for m in faces]
    oof = r["out_of_fold"]
    assert oof["photos"] == 24 - r["test_photos"] == sum(f["photos"] for f in r["folds"])
    assert oof["faces"] == sum(f["faces"] for f in r["folds"])
    lines = (work / "oof-detections.jsonl").read_text().splitlines()
    assert len(lines) == oof["photos"]
    assert oof["confusion"]["matrix"] == [[a + b for a, b in zip(x, y)] for x, y in
                                          zip(*(f["confusion"]["matrix"] for f in r["folds"]))]
    w = oof["mwi_recall"]
    assert w["matched"] == sum(f["mwi_recall"]["matched"] for f in r["folds"]) > 0
    assert 0 <= w["low"] <= w["recall"] <= w["high"] <= 1
    m = r["mean"]["map50"]
    assert m["low"] <= m["mean"] <= m["high"] and m["mean"] == pytest.approx(
        sum(f["map50"] for f in r["folds"]) / 2, abs=1e-4)
    assert not (REPO / "src" / "visionlab" / "assets" / "folds.json").exists()  # nothing installed
    # the recipe's options reach every fold: the training config and the synthetic crops of Train only
    assert r["augment_policy"] == "faces" and r["synthetic_incorrect"] == 8 and r["turned_copies"] == 2
    assert r["model"] == "efficientnet_lite1" and r["members"] == 2
    for i in range(2):  # two networks a fold, seeds 0 and 1, averaged: the folds' detections are the average's
        seeds = [(work / f"fold{i}" / run / "config.yaml").read_text() for run in ("run", "run-m1")]
        assert "seed: 0" in seeds[0] and "seed: 1" in seeds[1]
        assert sorted(f.name for f in (work / f"fold{i}" / "averaged").iterdir()) == [
            "facemask_classifier-2.onnx", "facemask_classifier.onnx"]
    detects = [c["command"] for c in r["commands"] if " detect " in c["command"]]  # fold 1's: this invocation's
    assert detects and all("averaged/facemask_classifier.onnx --out" in c for c in detects)
    for i, m in enumerate(faces):
        assert m["synthetic_incorrect"]["written"] == 8
        assert len(list((work / f"fold{i}" / "crops" / "Train" / "MaskWornIncorrectly").glob("synth_*.jpg"))) == 8
        assert not list((work / f"fold{i}" / "crops" / "Validation").rglob("synth_*"))
        assert "augment_policy: faces" in (work / f"fold{i}" / "run" / "config.yaml").read_text()
        assert json.loads((work / f"fold{i}" / "run" / "model.json").read_text())["model"] == "efficientnet_lite1"
        turned = m["turned_copies"]["per_class"]  # turned faces repeated in Train only, as many as listed
        copies = list((work / f"fold{i}" / "crops" / "Train").rglob("*_t[0-9].jpg"))
        assert len(copies) == sum(c["written"] for c in turned.values()) == 2 * sum(c["turned"] for c in turned.values())
        assert not list((work / f"fold{i}" / "crops" / "Validation").rglob("*_t[0-9].jpg"))
    # the same fold models in the video setting, pooled like the photo setting
    p = subprocess.run([sys.executable, str(REPO / "tools" / "build_default_model.py"), "--shared", str(SHARED),
                        "--fast-folds", str(work)], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    fast = json.loads((work / "fast" / "folds.json").read_text())
    assert fast["quality"] == "fast" and fast["k"] == 2 and fast["model"] == "efficientnet_lite1"
    assert fast["out_of_fold"]["photos"] == oof["photos"] and fast["out_of_fold"]["faces"] == oof["faces"]
    assert [f["photos"] for f in fast["folds"]] == [f["photos"] for f in r["folds"]]
    assert all("--quality fast" in c["command"] for c in fast["commands"]) and len(fast["commands"]) == 2 * 3
    assert fast["fast_score_threshold"] in (0.5, 0.3, 0.15) and set(fast["thresholds"]) == {"0.5", "0.3", "0.15"}
    best = fast["thresholds"][str(fast["fast_score_threshold"])]["map50"]
    assert all(best >= t["map50"] for t in fast["thresholds"].values())  # the threshold chosen scores best
    assert len((work / "fast" / "oof-detections.jsonl").read_text().splitlines()) == oof["photos"]
    # the photo setting's searches: the folds' own eval/ reused for NMS, the fused mirror searches run once each
    p = subprocess.run([sys.executable, str(REPO / "tools" / "build_default_model.py"), "--shared", str(SHARED),
                        "--search-folds", str(work)], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    search = json.loads((work / "search" / "folds.json").read_text())
    assert set(search["tried"]) == {"nms", "wbf_mirror"} and len(search["commands"]) == 2
    assert all("--box-merge wbf --mirror-search" in c["command"] for c in search["commands"])
    assert search["tried"]["nms"]["map50"] == r["out_of_fold"]["map50"]  # the folds' own detections, rescored
    best = max(search["tried"], key=lambda k: (search["tried"][k]["map50"], k == "nms"))
    assert search["search"] == best and (search["box_merge"] == "wbf") == (best == "wbf_mirror")
    assert (work / "search" / "shown.json").is_file()
