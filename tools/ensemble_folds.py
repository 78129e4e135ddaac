"""Would an ensemble of fold models beat one? Two or more finished `tools/build_default_model.py --folds K` studies of
the same folds (e.g. one recipe trained with two `--train-seed`s), their fold I models averaged, scored on fold I's
own Validation photos, pooled out of fold:

    python tools/ensemble_folds.py FOLDS_A FOLDS_B [...] --out ENS [--shared ../shared]
    python tools/compare_folds.py FOLDS_A/search ENS        # paired against one model

Each face crop goes through every member and the class probabilities are averaged (visionlab's
``AveragedClassifier``, as `visionlab export --average` ships it; the pipeline takes it through the Python API's
``model=``). The photo
setting's search chosen on the first study's folds (FOLDS_A/search/, `--search-folds`) is used for all; ENS/foldI/eval holds each
fold's `detect --truth` output, ENS/oof-detections.jsonl the pooled records and ENS/folds.json the figures.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
FACE_MODEL = "yunet_n_dynamic.onnx"


def main() -> None:
    import visionlab
    from visionlab.inference.average import AveragedClassifier
    from visionlab.inference.load import load_classifier
    from visionlab.io import write_json

    # a study's per-fold figures, pooled records and mean over folds, as the build tool makes them (tools/ is this
    # script's folder, so it is on sys.path when run)
    from build_default_model import fold_result, study_info, summarize_folds, write_jsonl
    from visionlab.errors import VisionlabError
    from visionlab.outdir import claim_out

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("studies", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    a = ap.parse_args()
    if len(a.studies) < 2:
        sys.exit("error: give at least two studies to average")
    infos = [study_info(s) for s in a.studies]
    if len({(i["k"], i.get("limit_photos"), i["seed"]) for i in infos}) != 1:
        sys.exit("error: the studies have different folds (k, --limit-photos or --seed differ)")
    try:  # a folder that holds files, a file, a read-only place: one line, nothing written
        a.out = claim_out(a.out, "ensemble", policy="refuse")
    except VisionlabError as e:
        sys.exit(f"error: {e}")
    data = a.shared / "data" / "facemask_boxes"
    chosen = a.studies[0] / "search" / "folds.json"  # the photo setting's search chosen on the first study's folds
    search = {k: json.loads(chosen.read_text())[k] for k in ("box_merge", "mirror_search")} if chosen.is_file() else {}
    records, folds = [], []
    for i in range(infos[0]["k"]):
        split = a.studies[0] / f"fold{i}" / "crops" / "faces.json"
        if any(json.loads((s / f"fold{i}" / "crops" / "faces.json").read_text())["photos"] !=
               json.loads(split.read_text())["photos"] for s in a.studies[1:]):
            sys.exit(f"error: fold {i} holds other photos in the studies")
        try:  # members of other classes or input sizes: one line
            ens = AveragedClassifier([load_classifier(str(s / f"fold{i}" / "run"), "onnx", 1) for s in a.studies])
        except VisionlabError as e:
            sys.exit(f"error: {e}")
        ev = a.out / f"fold{i}" / "eval"
        m = visionlab.detect(data / "images", model=ens, out=ev, truth=data / "boxes.csv", subset=f"{split}:Validation",
                             face_model=str(a.shared / "models" / FACE_MODEL), save_frames=False, quiet=True,
                             **search)
        entry, recs = fold_result(i, ev)
        folds.append(entry)
        records += recs
        print(f"fold {i}: mAP@0.5 {m['map50']:.3f} {m['ap50_per_class']}", flush=True)
    write_jsonl(a.out / "oof-detections.jsonl", records)
    result = {"k": infos[0]["k"], "limit_photos": infos[0].get("limit_photos"), "seed": infos[0]["seed"],
              "members": [str(s) for s in a.studies], "folds": folds, "mean": summarize_folds(folds)}
    write_json(a.out / "folds.json", result)
    mean = result["mean"]
    print(f"mean over folds: mAP@0.5 {mean['map50']}, incorrectly worn AP "
          f"{mean['ap50_per_class'].get('MaskWornIncorrectly')}; pooled and paired: python tools/compare_folds.py "
          f"{a.studies[0] / 'search'} {a.out}")


if __name__ == "__main__":
    main()
