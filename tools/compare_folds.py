"""Two recipes' out-of-fold detections side by side, paired: is B better than A, by how much, with 95% intervals?

    python tools/compare_folds.py FOLDS_A FOLDS_B [--shared ../shared] [--out compare.json]

FOLDS_A and FOLDS_B are `tools/build_default_model.py --folds K` work folders of the same photos and folds (their
fold split is checked to be the same). Every photo outside the held-out Test part was scored by a model of each
recipe that never trained on it, so the two sets of predictions are of the same photos and faces, and the
difference is measured paired:

- mAP@0.5, each class's AP, face recall, faces under 16 px found: B - A with a percentile bootstrap over photos
  (the same draws for both);
- the tagged faces of special_cases.csv: per slice, the share labelled right by A and by B (Wilson intervals) and
  B - A with a bootstrap over the slice's faces (the same faces for both), and how many faces changed each way;
- the same slices counting only the faces a user sees: labelled right and shown (face probability at least the
  recipe's shown threshold, `shown.json` of its `--calibrate`, else detect's default 0.5);
- incorrectly-worn recall of matched faces: A and B with Wilson intervals, paired as above.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from visionlab.data.boxes import read_annotations
from visionlab.evaluation.bootstrap import draw_counts, map50
from visionlab.evaluation.detection import SHOWN_FACE_PROB, evaluate_detections
from visionlab.evaluation.slices import box_tags, read_tag_file, slice_members, wilson_rate
from visionlab.io import write_json

REPO = Path(__file__).resolve().parents[1]
DRAWS = 1000
MWI = "MaskWornIncorrectly"


def _records(folds: Path) -> list[dict]:
    f = folds / "oof-detections.jsonl"
    if not f.is_file():
        sys.exit(f"error: {folds} holds no finished --folds run (oof-detections.jsonl)")
    return [json.loads(ln) for ln in f.read_text().splitlines() if ln.strip()]


def _ci(values: np.ndarray) -> list[float]:
    v = values[np.isfinite(values)]
    return [round(float(np.percentile(v, 2.5)), 4), round(float(np.percentile(v, 97.5)), 4)] if len(v) else [None] * 2


def paired_photos(ma: dict, mb: dict, classes: list[str]) -> dict:
    """B - A on mAP@0.5, per-class AP and face recall, bootstrap over photos (same draws)."""
    pa, pb = ma["_photo_matches"], mb["_photo_matches"]
    found_a = np.array([p.found for p in pa], float)
    found_b = np.array([p.found for p in pb], float)
    faces = np.array([p.truths.sum() for p in pa], float)
    small_a = np.array([p.small_found for p in pa], float)
    small_b = np.array([p.small_found for p in pb], float)
    small = np.array([p.small for p in pa], float)
    rows = []
    for counts in draw_counts(len(pa), DRAWS, seed=0):
        a, aa = map50(pa, counts)
        b, ab = map50(pb, counts)
        rows.append([b - a, *(ab - aa), (small_b @ counts - small_a @ counts) / max(small @ counts, 1.0),
                     (found_b @ counts - found_a @ counts) / (faces @ counts)])
    d = np.array(rows)
    ra, rb = (m["recall_by_size"]["<16"]["recall"] for m in (ma, mb))
    out = {"map50": {"a": ma["map50"], "b": mb["map50"], "diff": round(mb["map50"] - ma["map50"], 4),
                     "ci": _ci(d[:, 0])},
           "face_recall": {"a": ma["face_recall"], "b": mb["face_recall"],
                           "diff": round(mb["face_recall"] - ma["face_recall"], 4), "ci": _ci(d[:, -1])},
           "found under 16 px": {"a": ra, "b": rb, "diff": round(rb - ra, 4), "ci": _ci(d[:, -2])}}
    for i, c in enumerate(classes):
        a, b = ma["ap50_per_class"][c], mb["ap50_per_class"][c]
        out[f"ap50 {c}"] = {"a": a, "b": b, "diff": round(b - a, 4), "ci": _ci(d[:, 1 + i])}
    return out


def _faces_by_key(m: dict) -> dict:
    return {(Path(f["source"]).name, f["index"]): f for f in m["_faces"]}


def paired_faces(ra: np.ndarray, rb: np.ndarray) -> dict:
    """Right/wrong of the same faces under A and B: rates, B - A with a bootstrap over the faces, changes."""
    n = len(ra)
    rng = np.random.default_rng(0)
    diffs = np.array([(rb[i].mean() - ra[i].mean()) for i in (rng.integers(0, n, n) for _ in range(DRAWS))]) \
        if n else np.zeros(0)
    return {"n": n, "a": wilson_rate(int(ra.sum()), n), "b": wilson_rate(int(rb.sum()), n),
            "diff": round(float(rb.mean() - ra.mean()), 4) if n else None, "ci": _ci(diffs) if n else None,
            "fixed": int((rb & ~ra).sum()), "broken": int((ra & ~rb).sum())}


def plot_slices(result: dict, path: Path, names: tuple[str, str]) -> Path:
    """Per slice, the share labelled right by A and by B with their Wilson intervals, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(k, v) for k, v in result["slices"].items() if v["n"]]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    for j, (key, off, colour) in enumerate((("a", -0.18, "#8c8c8c"), ("b", 0.18, "#1f77b4"))):
        y = np.arange(len(rows)) + off
        r = [v[key]["rate"] * 100 for _, v in rows]
        lo = [(v[key]["rate"] - v[key]["ci"][0]) * 100 for _, v in rows]
        hi = [(v[key]["ci"][1] - v[key]["rate"]) * 100 for _, v in rows]
        ax.barh(y, r, height=0.34, color=colour, label=names[j])
        ax.errorbar(r, y, xerr=[lo, hi], fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels([f"{k} (n={v['n']})" for k, v in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("tagged faces labelled right, % (95% Wilson interval)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def shown_threshold(folds: Path) -> float:
    """The face probability from which the recipe's boxes are shown: its calibrated `shown.json`, else 0.5."""
    f = folds / "shown.json"
    return float(json.loads(f.read_text())["min_face_prob"]) if f.is_file() else SHOWN_FACE_PROB


def _print_slices(title: str, slices: dict) -> None:
    print(title)
    for name, v in slices.items():
        if v["n"]:
            print(f"  {name:<16} n={v['n']:>3}  {v['a']['rate']:.1%} -> {v['b']['rate']:.1%}  {v['diff']:+.3f} "
                  f"[{v['ci'][0]:+.3f}, {v['ci'][1]:+.3f}]  ({v['fixed']}/{v['broken']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--names", default="A,B", help="the two recipes' names for the plot, e.g. 'before,after'")
    args = ap.parse_args()
    fa, fb = (json.loads((f / "folds.json").read_text()) for f in (args.a, args.b))
    if fa["k"] != fb["k"] or fa.get("limit_photos") != fb.get("limit_photos"):
        sys.exit("error: the two runs have different folds (k or --limit-photos differ)")
    data = args.shared / "data" / "facemask_boxes"
    rec_a, rec_b = _records(args.a), _records(args.b)
    names = {Path(r["source"]).name for r in rec_a}
    if names != {Path(r["source"]).name for r in rec_b}:
        sys.exit("error: the two runs scored different photos")
    truths = [t for t in read_annotations(data / "boxes.csv", data / "images", None) if t.path.name in names]
    classes = sorted({b.label for t in truths for b in t.boxes})
    ta, tb = shown_threshold(args.a), shown_threshold(args.b)
    ma = evaluate_detections(rec_a, truths, classes, draws=0, shown_face_prob=ta)
    mb = evaluate_detections(rec_b, truths, classes, draws=0, shown_face_prob=tb)
    result = {"a": str(args.a), "b": str(args.b), "photos": len(names), "photo_level": paired_photos(ma, mb, classes)}
    fa_, fb_ = _faces_by_key(ma), _faces_by_key(mb)
    keys = sorted(fa_)
    # incorrectly worn: of the faces both found (matched), the share called MaskWornIncorrectly
    mwi = [k for k in keys if fa_[k]["truth"] == MWI and fa_[k]["guess"] is not None and fb_[k]["guess"] is not None]
    result["mwi_recall_matched"] = paired_faces(np.array([fa_[k]["guess"] == MWI for k in mwi], bool),
                                                np.array([fb_[k]["guess"] == MWI for k in mwi], bool))
    tf = read_tag_file(data / "special_cases.csv")
    tags = box_tags(tf, truths, data / "boxes.csv")
    tagged = [k for k in keys if k in tags]
    values = np.array([tags[k] for k in tagged], bool).reshape(len(tagged), -1)
    right_a = np.array([fa_[k]["guess"] == fa_[k]["truth"] for k in tagged], bool)
    right_b = np.array([fb_[k]["guess"] == fb_[k]["truth"] for k in tagged], bool)
    members = slice_members(values, tf.names)
    result["slices"] = {name: paired_faces(right_a[sel], right_b[sel]) for name, sel in members.items()}
    seen_a = right_a & np.array([fa_[k]["shown"] for k in tagged], bool)
    seen_b = right_b & np.array([fb_[k]["shown"] for k in tagged], bool)
    result["shown_thresholds"] = {"a": ta, "b": tb}
    result["slices_shown"] = {name: paired_faces(seen_a[sel], seen_b[sel]) for name, sel in members.items()}
    out = args.out or args.b / "compare.json"
    write_json(out, result)
    png = plot_slices(result, out.with_suffix(".png"), tuple(args.names.split(",", 1)))
    p = result["photo_level"]
    print(f"{len(names)} photos; B - A, 95% bootstrap intervals (paired):")
    for k, v in p.items():
        print(f"  {k:<28} {v['a']:.3f} -> {v['b']:.3f}  {v['diff']:+.3f} [{v['ci'][0]:+.3f}, {v['ci'][1]:+.3f}]")
    w = result["mwi_recall_matched"]
    print(f"  MaskWornIncorrectly recall of matched faces: {w['a']['k']}/{w['n']} -> {w['b']['k']}/{w['n']}, "
          f"{w['diff']:+.3f} [{w['ci'][0]:+.3f}, {w['ci'][1]:+.3f}]")
    _print_slices("tagged faces labelled right, A -> B, B - A [95%] (fixed/broken):", result["slices"])
    _print_slices(f"tagged faces labelled right and shown (face probability >= {ta} / {tb}), A -> B:",
                  result["slices_shown"])
    print(out, png)


if __name__ == "__main__":
    main()
