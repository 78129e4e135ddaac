"""Does choosing faces beat random on annotated photos? The face loop replayed with an oracle from boxes.csv.

``simulate_faces(photos=facemask_boxes, ...)``: one face pool is made from the photos (``init --photos``, the
starting ``model``; for a fair test one that never saw these photos, e.g. a run trained on facemask/ crops only),
its held-back photos (chosen by photo) are the yardstick. Per seed, every strategy starts from the same
``init`` random oracle labels in its own copy of the pool, then ``rounds`` times: retrain (warm-started, as a user
would), measure, query ``k`` faces, label them from the oracle. Measured per round: per-class recall and accuracy
on the held-back faces (oracle labels) and, with ``map=True``, the box-level mAP@0.5 of `detect --truth` on the
held-back photos (every box, as `detect --truth` scores it, and the boxes shown by default). Written:
results.csv (strategy, seed, round, labels, accuracy, map50, map50_shown), summary.json with 95%
Student-t intervals over seeds per label count, and map_vs_labels.png.

This is the skeleton the long runs use; tests run it on a handful of photos with one epoch.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..io import atomic_write_text, write_csv, write_json
from .faceoracle import BoxOracle
from .facepool import load_faces
from .strategies import STRATEGIES


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _inputs(photos: Path, max_photos: Optional[int], seed: int) -> tuple[list[Path], Path, Path]:
    images, boxes = photos / "images", photos / "boxes.csv"
    if not images.is_dir() or not boxes.is_file():
        raise DataError(f"--photos {photos} needs images/ and boxes.csv (the facemask_boxes layout)")
    from .store import list_images

    files = list_images(images)
    if max_photos is not None and max_photos < len(files):
        pick = np.random.default_rng(seed).choice(len(files), max_photos, replace=False)
        files = [files[i] for i in sorted(pick)]
    return files, images, boxes


def _label(proj_path: Path, faces: list[dict], idx, truth: list[Optional[str]]) -> int:
    from .session import Project

    store = Project(proj_path).store
    live = set(store.current())
    n = 0
    for i in idx:
        if truth[i] is not None and faces[i]["sha256"] not in live:  # two identical crops are one image
            store.add(proj_path / "faces" / faces[i]["path"], truth[i], "oracle", sha256=faces[i]["sha256"])
            live.add(faces[i]["sha256"])
            n += 1
    return n


def _map50(proj: Path, images: Path, boxes: Path, subset: Path, out: Path) -> dict:
    """mAP@0.5 of the project's model on the held-back photos (``subset``: their names), as `visionlab detect
    --truth` scores it (every box down to face probability 0.05, ranked; ``map50``) and of the boxes it shows by
    default (``map50_shown``)."""
    from ..detect.verb import detect
    from .session import Project

    # the project's current round, else the model it started from (None: the bundled one)
    model = str(proj) if (proj / "model").exists() else Project(proj).state.get("model")
    m = detect(images, out=out, truth=boxes, subset=str(subset), model=model, quiet=True, save_frames=False)
    return {k: (float(m[k]) if m.get(k) is not None else None) for k in ("map50", "map50_shown")}


def simulate_faces(photos: str | Path, strategies: Optional[Sequence[str]] = None, rounds: int = 4, k: int = 20,
                   seeds: int = 3, init: int = 20, out: str | Path = "active-face-sim", model: Optional[str] = None,
                   epochs: int = 2, replay: Optional[str | Path] = None, holdout: float = 0.2,
                   max_photos: Optional[int] = None, map: bool = True, full_supervised: bool = True,
                   quiet: bool = True, budgets: Optional[Sequence[int]] = None) -> dict:
    """Replay the face loop with a boxes.csv oracle (see the module doc). Returns the summary.

    ``budgets`` (e.g. 50, 100, 200, 400): the label counts to measure at, in place of ``init`` + ``rounds`` x ``k``
    (the first is the random start, each later round queries the difference)."""
    from . import loop

    t_start = time.time()
    strategies = list(strategies or ["random", "margin", "hybrid"])
    for s in strategies:
        STRATEGIES.get(s)
    budgets = [int(b) for b in budgets] if budgets else None
    init, rounds, k, steps = _schedule(budgets, init, rounds, k)
    if min(rounds, seeds, init, k) < 1:
        raise ConfigError("--rounds, --k, --seeds and --init must be at least 1")
    out_p = Path(out).resolve()
    files, images, boxes = _inputs(Path(photos), max_photos, 0)
    out_p = _study_folder(out_p, quiet, {
        "photos": str(Path(photos).resolve()), "max_photos": max_photos, "model": model, "holdout": holdout,
        "epochs": epochs, "replay": str(Path(replay).resolve()) if replay else None, "init": init, "steps": steps,
        "map": map, "full_supervised": full_supervised})
    base = out_p / "pool"
    if not (base / "state.json").is_file():
        loop.init(photos=files, project=base, model=model, holdout=holdout, seed=0)
    faces = load_faces(base)
    oracle = BoxOracle(boxes)
    truth = [oracle.face(f) for f in faces]
    held = [i for i, f in enumerate(faces) if f.get("holdout")]
    free = [i for i, f in enumerate(faces) if not f.get("holdout") and truth[i] is not None]
    held_photos = {Path(faces[i]["source"]).name for i in held}
    if init + sum(steps) > len(free) or not held:
        raise ConfigError(f"{len(free)} faces to query and {len(held)} held back: too few for {init} + "
                          f"{sum(steps)} labels; use more photos or fewer labels")
    _label(base, faces, held, truth)  # the held-back faces' labels, once: every run's copy of the pool has them
    held_list = out_p / "held-back-photos.txt"  # the photos every mAP is measured on
    atomic_write_text(held_list, "".join(n + "\n" for n in sorted(held_photos)))
    start_m = _once(out_p / "start.json", lambda: _map50(base, images, boxes, held_list, out_p / "start-detect")
                    if map else {"map50": None, "map50_shown": None})
    start_map = start_m["map50"]
    _log(quiet, f"starting model: mAP@0.5 {start_map} on {len(held_photos)} held-back photos")
    scoring = (images, boxes, held_list) if map else None
    full = _once(out_p / "full.json", lambda: _full(base, out_p, faces, free, truth, epochs, replay, scoring)) \
        if full_supervised else None
    rows: list[dict] = []
    for seed in range(seeds):
        start = np.random.default_rng([seed, 1]).choice(free, init, replace=False)
        for name in strategies:
            proj = out_p / "runs" / f"{name}-s{seed}"
            done = out_p / "runs" / f"{name}-s{seed}.json"  # a finished run's rows: a killed study resumes here
            if done.is_file():
                rows += json.loads(done.read_text())["rows"]
                _log(quiet, f"seed {seed} {name:>10}: finished before, {done.name} read")
                continue
            if proj.exists():  # a run killed part-way (the study's own folder): started again
                shutil.rmtree(proj)
            shutil.copytree(base, proj, symlinks=True)
            run_rows = _one_run(proj, name, seed, start, steps, faces, truth, epochs, replay,
                                scoring, quiet)
            write_json(done, {"rows": run_rows})
            rows += run_rows
    out_p.mkdir(parents=True, exist_ok=True)
    write_csv(out_p / "results.csv", rows)
    summary = {"out": str(out_p), "photos": str(photos), "n_photos": len(files), "faces": len(faces), "held_back_faces": len(held),
               "held_back_photos": len(held_photos), "strategies": strategies, "rounds": rounds, "k": k,
               "init": init, "budgets": budgets or None, "seeds": seeds, "epochs": epochs, "replay": str(replay) if replay else None,
               "model": model or "bundled", "start_map50": start_map,
               "start_map50_shown": start_m.get("map50_shown"), "full": full,
               "curves": _curves(rows, strategies), "vs_random": _vs_random(rows, strategies),
               "wall_seconds": round(time.time() - t_start, 1)}
    write_json(out_p / "summary.json", summary)
    summary["plot"] = str(_plot(summary, out_p / "map_vs_labels.png"))
    return summary


def _schedule(budgets: Optional[list[int]], init: int, rounds: int, k: int) -> tuple[int, int, int, list[int]]:
    """(init, rounds, k, labels queried after each round but the last): from ``budgets`` where given."""
    if not budgets:
        return init, rounds, k, [k] * (rounds - 1)
    if any(b < 1 for b in budgets) or any(b2 <= b1 for b1, b2 in pairwise(budgets)):
        raise ConfigError(f"--budgets must be increasing label counts of at least 1, not {budgets}")
    steps = [b2 - b1 for b1, b2 in pairwise(budgets)]
    return budgets[0], len(budgets), max(steps or [1]), steps


def _one_run(proj: Path, name: str, seed: int, start, steps: list[int], faces: list[dict], truth: list, epochs: int,
             replay, scoring: Optional[tuple], quiet: bool) -> list[dict]:
    """One strategy and seed in its own copy of the pool: the start labels, then per round retrain, measure
    (``scoring``: images, boxes.csv and the held-back photo list for mAP, None for none), query ``steps[r]`` and label."""
    from . import loop

    rows: list[dict] = []
    labels = _label(proj, faces, start, truth)
    idx = {f["sha256"]: i for i, f in enumerate(faces)}
    for r in range(1, len(steps) + 2):
        rec = loop.retrain(proj, epochs=epochs, replay=replay, seed=seed)
        row = {"strategy": name, "seed": seed, "round": r, "labels": labels,
               "accuracy": rec["evaluation"].get("accuracy"), "map50": None, "map50_shown": None}
        if scoring is not None:
            row.update(_map50(proj, *scoring, proj / f"detect-r{r:02d}"))
        rows.append(row)
        _log(quiet, f"seed {seed} {name:>10} round {r}: {labels} labels, held-back accuracy "
                    f"{row['accuracy']}, mAP@0.5 {row['map50']} (shown boxes {row['map50_shown']})")
        if r <= len(steps):
            q = loop.query(proj, k=steps[r - 1], strategy=name, seed=seed)
            labels += _label(proj, faces, [idx[it["sha256"]] for it in q["items"]], truth)
    return rows


def _full(base: Path, out_p: Path, faces, free, truth, epochs, replay, scoring: Optional[tuple]) -> dict:
    """The fully supervised reference: every queryable face labelled by the oracle, one retrain."""
    from . import loop

    proj = out_p / "runs" / "all"
    if proj.exists():
        shutil.rmtree(proj)
    shutil.copytree(base, proj, symlinks=True)
    n = _label(proj, faces, free, truth)
    rec = loop.retrain(proj, epochs=epochs, replay=replay, seed=0)
    return {"labels": n, "accuracy": rec["evaluation"].get("accuracy"),
            **(_map50(proj, *scoring, proj / "detect") if scoring is not None else {"map50": None})}


def _study_folder(out_p: Path, quiet: bool, settings: dict) -> Path:
    """The study's folder: ``out_p`` itself where it holds a study of ours to resume (asked for the same
    settings), else a folder ``claim_out`` gives (a folder of the user's files is left as it is)."""
    if not (out_p / "pool" / "state.json").is_file():
        from ..outdir import claim_out

        out_p = claim_out(out_p, "simulate", quiet=quiet)
    _check_settings(out_p / "settings.json", settings)
    return out_p


def _check_settings(path: Path, settings: dict) -> None:
    """A resumed study must be asked for what it was run with (finished runs are read back, not redone): the
    settings that shape every run are kept in ``path``; a call that differs in any of them stops with one line.
    More strategies or seeds are fine: they are new runs."""
    if path.is_file():
        kept = json.loads(path.read_text())
        diff = [k for k in settings if k in kept and kept[k] != settings[k]]
        if diff:
            raise ConfigError(f"{path.parent} is a study run with " + ", ".join(f"{k}={kept[k]}" for k in diff) +
                              "; this call asks " + ", ".join(f"{k}={settings[k]}" for k in diff) +
                              ": resume it with the same settings, or give another --out")
    else:
        write_json(path, settings)


def _once(path: Path, make) -> dict:
    """``make()``'s result, kept in ``path``: a resumed study does not redo it."""
    if path.is_file():
        return json.loads(path.read_text())
    res = make()
    write_json(path, res)
    return res


def _curves(rows: list[dict], strategies: list[str]) -> dict:
    """strategy -> metric -> [{labels, mean, low, high}] over seeds (95% Student-t)."""
    from .simulate import t_interval

    out: dict = {}
    for s in strategies:
        out[s] = {}
        for metric in ("accuracy", "map50", "map50_shown"):
            pts = []
            for n in sorted({r["labels"] for r in rows if r["strategy"] == s}):
                vals = [r.get(metric) for r in rows if r["strategy"] == s and r["labels"] == n and r.get(metric) is not None]
                if vals:
                    m, lo, hi = t_interval(vals)
                    pts.append({"labels": n, "mean": m, "low": lo, "high": hi, "seeds": len(vals)})
            out[s][metric] = pts
    return out


def _vs_random(rows: list[dict], strategies: list[str]) -> dict:
    """strategy -> [{round, labels, diff, low, high, seeds}]: its mAP@0.5 (else accuracy) minus random's, paired by
    seed and round (both started from the same labels), mean and 95% Student-t interval over seeds."""
    from .simulate import t_interval

    if "random" not in strategies:
        return {}
    metric = "map50" if any(r["map50"] is not None for r in rows) else "accuracy"
    base = {(r["seed"], r["round"]): r for r in rows if r["strategy"] == "random"}
    out: dict = {}
    for s in strategies:
        if s == "random":
            continue
        pts = []
        for rnd in sorted({r["round"] for r in rows if r["strategy"] == s}):
            pairs = [(r, base[(r["seed"], rnd)]) for r in rows if r["strategy"] == s and r["round"] == rnd
                     and (r["seed"], rnd) in base and r[metric] is not None and base[(r["seed"], rnd)][metric]
                     is not None]
            if pairs:
                m, lo, hi = t_interval([a[metric] - b[metric] for a, b in pairs])
                pts.append({"round": rnd, "labels": pairs[0][0]["labels"], "metric": metric, "diff": m, "low": lo,
                            "high": hi, "seeds": len(pairs)})
        out[s] = pts
    return out


def _plot(summary: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = "map50" if any(c["map50"] for c in summary["curves"].values()) else "accuracy"
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for s, c in summary["curves"].items():
        pts = c[metric]
        if not pts:
            continue
        x = [p["labels"] for p in pts]
        ax.plot(x, [p["mean"] for p in pts], marker="o", label=s)
        lo = [p["low"] if p["low"] == p["low"] else p["mean"] for p in pts]  # NaN (one seed): no band
        hi = [p["high"] if p["high"] == p["high"] else p["mean"] for p in pts]
        ax.fill_between(x, lo, hi, alpha=0.2)
    ref = (summary.get("full") or {}).get(metric)
    if ref is not None:
        ax.axhline(ref, color="k", ls="--", lw=1, label=f"all {summary['full']['labels']} labels")
    if metric == "map50" and summary.get("start_map50") is not None:
        ax.axhline(summary["start_map50"], color="grey", ls=":", lw=1, label="starting model")
    ax.set_xlabel("labelled faces")
    ax.set_ylabel("box-level mAP@0.5, held-back photos" if metric == "map50" else "held-back face accuracy")
    ax.set_title(f"{summary['seeds']} seed(s), mean and 95% band")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
