"""``visionlab active ...``: the loop's commands, each a few lines over the functions in loop.py/simulate.py.

The main CLI mounts this with ``app.add_typer(active_app, name="active")``; ``python -m visionlab.active.cli``
runs it alone (with the same one-line error messages).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ..cli_errors import run_app
from .store import warn

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Active learning: label the images the model is least sure about, retrain, repeat.")
out = Console(highlight=False)
PROJECT = typer.Argument(Path("."), help="the project folder (default: the current folder)")


def _split(v: Optional[str]) -> Optional[list[str]]:
    return [p.strip() for p in v.split(",") if p.strip()] if v else None


@app.command()
def init(project: Optional[Path] = typer.Argument(None, help="the new project folder (or --out)"),
         pool: Optional[Path] = typer.Option(None, "--pool", help="folder of unlabelled images (only ever read)"),
         photos: Optional[list[Path]] = typer.Option(None, "--photos", help="photos, videos or folders of them "
                                                     "(repeatable): label the faces found in them (only ever read)"),
         out_dir: Optional[Path] = typer.Option(None, "--out", help="new project folder"),
         labelled: Optional[Path] = typer.Option(None, "--labelled", help="class-folder training set (may hold "
                                                 "train/val/test splits; val or test then give metrics)"),
         model: Optional[str] = typer.Option(None, "--model", help="with --pool: frozen-backbone run folder, config "
                                             "YAML, backbone name or 'pixels' (default: efficientnet_lite0 ImageNet "
                                             "features); with --photos: the starting classifier, a run folder or "
                                             ".onnx file (default: the bundled one)"),
         classes: Optional[str] = typer.Option(None, "--classes", help="comma-separated, when there is no --labelled"),
         eval_dir: Optional[Path] = typer.Option(None, "--eval", help="class-folder set for per-round accuracy"),
         strategy: Optional[str] = typer.Option(None, "--strategy", help="default query strategy (least_confidence; "
                                                "hybrid for faces)"),
         seed: int = typer.Option(0, "--seed"),
         cache_dir: Optional[str] = typer.Option(None, "--cache-dir", help="feature cache (default $VISIONLAB_CACHE "
                                                 "or ~/.cache/visionlab)"),
         train: bool = typer.Option(True, "--train/--no-train",
                                    help="train round 0 on the labelled folder now"),
         per_second: float = typer.Option(2.0, "--per-second", help="--photos: video frames sampled per second"),
         min_change: float = typer.Option(2.0, "--min-change", help="--photos: a sampled frame differing from the "
                                          "last kept one by less than this (mean grey levels, 0-255) is skipped"),
         min_face_prob: float = typer.Option(0.2, "--min-face-prob", help="--photos: boxes with a lower face "
                                             "probability are not kept (those near 0.5 are what face_doubt asks)"),
         holdout: float = typer.Option(0.2, "--holdout", help="--photos: share of photos (10 s stretches of video) "
                                       "held back for evaluation, never queried")) -> None:
    """Create a project: pool + labelled set + model (trains round 0 when labelled images exist), or with --photos
    a face pool from your own photos and video with the bundled classifier (or --model RUN) as round 0."""
    from .loop import init as api_init

    s = api_init(pool, out_dir, labelled, model, _split(classes), eval_dir, strategy, seed, cache_dir, train,
                 quiet=False, photos=photos, per_second=per_second, min_change=min_change,
                 min_face_prob=min_face_prob, holdout=holdout, project=project)
    _print_status(s)
    out.print(f"next: visionlab active query {s['project']} --k 20")


@app.command()
def query(project: Path = PROJECT, k: int = typer.Option(20, "--k", help="how many images to queue"),
          strategy: Optional[str] = typer.Option(None, "--strategy", help="random, least_confidence, margin, entropy, "
                                                 "bald, kcenter, hybrid or (faces) face_doubt (default: the "
                                                 "project's)"),
          seed: Optional[int] = typer.Option(None, "--seed"),
          pseudo_threshold: Optional[float] = typer.Option(
              None, "--pseudo-threshold",
              help="opt-in: also label images predicted with at least this confidence, as 'pseudo'"),
          mc_samples: int = typer.Option(20, "--mc-samples", help="dropout samples for bald"),
          held_out: bool = typer.Option(False, "--held-out", help="face projects: queue held-back faces (at random) "
                                        "to label for evaluation; they are never trained on")) -> None:
    """Score the unlabelled pool with the current model and write queue.json."""
    from .loop import query as api_query

    q = api_query(project, k, strategy, seed, pseudo_threshold, mc_samples, held_out)
    warn(q.get("problems", []))
    out.print(f"queued {len(q['items'])} of {q['pool_unlabelled']} unlabelled images by {q['strategy']} "
              f"(model {q['model_version']})")
    if q.get("pseudo_labelled"):
        out.print(f"[yellow]{q['pseudo_labelled']} images pseudo-labelled[/] at confidence >= {pseudo_threshold}")
    out.print(f"next: visionlab active label {project}")


@app.command()
def label(project: Path = PROJECT, preview: bool = typer.Option(True, "--preview/--no-preview"),
          width: int = typer.Option(32, "--width", help="preview width in characters")) -> None:
    """Label the queue in the terminal: class keys 1-9, u undo, s skip, q quit. Each label is saved at once."""
    from .session import Project  # not via loop.py: labelling never needs torch, so it starts at once
    from .ui import run_labeller

    run_labeller(Project(project), preview, width)


@app.command()
def retrain(project: Path = PROJECT, epochs: Optional[int] = typer.Option(None, "--epochs", help="head steps (image "
                                                                          "pools, 200) or epochs (face pools, 4)"),
            pseudo: bool = typer.Option(True, "--pseudo/--no-pseudo", help="train on pseudo labels too"),
            warm_start: bool = typer.Option(True, "--warm-start/--cold-start"),
            seed: Optional[int] = typer.Option(None, "--seed"),
            replay: Optional[Path] = typer.Option(None, "--replay", help="face pools: class folders of original "
                                                  "training crops replayed with the labels so the model does not "
                                                  "forget (e.g. ../shared/data/facemask/Train)"),
            lr: Optional[float] = typer.Option(None, "--lr", help="face pools: the head's learning rate (1e-4; the "
                                               "last block trains at a tenth of it)"),
            balanced: bool = typer.Option(True, "--balanced/--no-balanced", help="face pools: weight classes by "
                                          "inverse frequency (labels + replay are rarely balanced)"),
            distill: float = typer.Option(0.0, "--distill", help="face pools: weight of a KL term keeping the "
                                          "starting model's outputs on the training crops (learning without "
                                          "forgetting; 0: off)")) -> None:
    """Train the next round on the labelled folder + the store's labels (warm start from the last round); a face
    pool fine-tunes its classifier and exports it as PROJECT/model."""
    from .loop import retrain as api_retrain

    r = api_retrain(project, epochs, pseudo, seed, warm_start, quiet=False, replay=replay, lr=lr, balanced=balanced,
                    distill=distill)
    warn(r.get("problems", []))
    if "run" in r:
        _print_face_round(project, r)
        return
    m = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in r["metrics"].items())
    out.print(f"round {r['round']}: model {r['model_version']} on {r['n_train']} images ({m}) in {r['seconds']:.1f} s")


def _print_face_round(project: Path, r: dict) -> None:
    from .faceeval import table

    out.print(f"round {r['round']}: model {r['model_version']} fine-tuned from {r['warm_start']} on {r['n_train']} "
              f"labelled faces + {r['n_replay']} replayed crops, {r['epochs']} epochs, in {r['seconds']:.1f} s")
    out.print(f"trained: {r['trained']}", markup=False)
    ev = r["evaluation"]
    rows = table(ev)
    if rows:
        t = Table("held-back faces", f"round {ev['this']['round']} recall % [95% CI]",
                  f"round {ev['previous']['round']}", "n", title="evaluation on labelled held-back faces")
        for c, a, b, n in rows:
            t.add_row(c, a, b, str(n))
        out.print(t)
    else:
        out.print(f"[yellow]{ev.get('note', '')}[/]", markup=True)
    out.print(f"run: {Path(project) / r['run']} (PROJECT/model); use it: visionlab detect VIDEO --model {project}")


def _print_status(s: dict) -> None:
    st = s["store"]
    out.print(f"project {s['project']}: round {s['round']} (model {s['model_version']}), "
              f"classes {', '.join(s['classes'])}")
    out.print(f"pool {s['pool_images']} images, {s['pool_unlabelled']} unlabelled; labelled folder "
              f"{s['labelled_folder']}; store: {st['human']} human, {st['oracle']} oracle, {st['pseudo']} pseudo")
    if s.get("face_pool"):
        f = s["face_pool"]
        out.print(f"faces: {f['faces']} from {f['sources']} photos/videos; held back for evaluation {f['held_out']} "
                  f"({f['held_out_labelled']} labelled: `query --held-out`); current model {f['model']}")
    if s["queue"]:
        q = s["queue"]
        out.print(f"queue: {q['labelled']}/{q['items']} labelled ({q['strategy']}, model {q['model_version']})")
    if s.get("note"):
        out.print(f"[yellow]{s['note']}[/]")
    if s["rounds"]:
        t = Table("round", "model", "train images", "train acc", "eval acc")
        f = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
        for r in s["rounds"]:
            t.add_row(str(r["round"]), r["model_version"], str(r["n_train"]), f(r.get("train_acc")),
                      f(r.get("eval_acc")))
        out.print(t)


@app.command()
def status(project: Path = PROJECT, as_json: bool = typer.Option(False, "--json")) -> None:
    """Labels by source, pool left, queue progress, rounds with their metrics."""
    from .loop import status as api_status

    s = api_status(project)
    warn(s.get("problems", []))
    if as_json:
        print(json.dumps(s, indent=2))
    else:
        _print_status(s)


@app.command()
def undo(project: Path = PROJECT,
         entry: Optional[int] = typer.Option(None, "--id", help="entry id (default: the last label)")) -> None:
    """Cancel a label (recorded as an undo entry; nothing is erased)."""
    from .loop import undo as api_undo

    lab = api_undo(project, entry)
    out.print(f"undone #{lab.id}: {lab.path} (was {lab.label})" if lab else "nothing to undo")


@app.command()
def export(project: Path = PROJECT, dest: Path = typer.Option(..., "--dest", help="new class-folder tree"),
           mode: str = typer.Option("copy", "--mode", help="copy or link (symlinks)"),
           labelled: bool = typer.Option(True, "--labelled/--no-labelled", help="include the labelled folder"),
           pseudo: bool = typer.Option(False, "--pseudo/--no-pseudo", help="include pseudo labels")) -> None:
    """Write everything labelled as class folders (copies or links); originals are never touched."""
    from .loop import export as api_export

    counts = api_export(project, dest, mode, labelled, pseudo)
    per_class = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    out.print(f"exported {sum(counts.values())} images to {dest}: {per_class}")


@app.command()
def simulate(data: Optional[Path] = typer.Option(None, "--data", help="class folders with Train and Test splits "
                                                 "(the oracle)"),
             photos: Optional[Path] = typer.Option(None, "--photos", help="annotated photos (images/ + boxes.csv, "
                                                   "e.g. ../shared/data/facemask_boxes): replay the face loop"),
             strategies: Optional[str] = typer.Option(None, "--strategies", help="default: random, least_confidence, "
                                                      "margin, entropy, kcenter, hybrid (faces: random, margin, "
                                                      "hybrid)"),
             rounds: int = typer.Option(10, "--rounds"), k: int = typer.Option(20, "--k", help="labels per round"),
             seeds: int = typer.Option(3, "--seeds"),
             init_labels: int = typer.Option(20, "--init", help="random labels to start from"),
             budgets: Optional[str] = typer.Option(None, "--budgets", help="--photos: label counts to measure at, "
                                                   "e.g. 50,100,200,400 (instead of --init, --rounds, --k)"),
             out_dir: Path = typer.Option(Path("active-sim"), "--out"),
             targets: str = typer.Option("0.9,0.95", "--target", help="accuracies to report labels-needed for"),
             model: Optional[str] = typer.Option(None, "--model", help="backbone name or 'pixels'; with --photos the "
                                                 "starting classifier (a run that never saw these photos)"),
             cache_dir: Optional[str] = typer.Option(None, "--cache-dir"),
             epochs: Optional[int] = typer.Option(None, "--epochs", help="head training steps per round (200); "
                                                  "with --photos fine-tuning epochs per round (2)"),
             mc_samples: int = typer.Option(20, "--mc-samples"),
             replay: Optional[Path] = typer.Option(None, "--replay", help="--photos: replayed crops (class folders)"),
             holdout: float = typer.Option(0.2, "--holdout", help="--photos: share of photos held back (the "
                                           "yardstick)"),
             max_photos: Optional[int] = typer.Option(None, "--max-photos", help="--photos: use a seeded sample of "
                                                      "this many photos"),
             box_map: bool = typer.Option(True, "--map/--no-map", help="--photos: box-level mAP@0.5 of detect "
                                          "--truth on the held-back photos each round"),
             full: bool = typer.Option(True, "--full/--no-full", help="--photos: also train on every queryable face "
                                       "once (the fully supervised reference)")) -> None:
    """Replay active learning with an oracle: accuracy (or, with --photos, box-level mAP) vs labels per strategy,
    with 95% bands."""
    if (data is None) == (photos is None):
        from ..errors import ConfigError

        raise ConfigError("give --data (class folders: image pools) or --photos (annotated photos: face pools)")
    if photos is not None:
        from .facesimulate import simulate_faces

        res = simulate_faces(photos, _split(strategies), rounds, k, seeds, init_labels, out_dir, model,
                             epochs or 2, replay, holdout, max_photos, box_map, full, quiet=False,
                             budgets=_budgets(budgets))
        where = Path(res["out"])  # a new sub-folder where --out already held other files
        out.print(f"results: {where / 'results.csv'}  summary: {where / 'summary.json'}  plot: {res['plot']}")
        return
    from .simulate import simulate as api_simulate

    res = api_simulate(data, _split(strategies) or ["random", "least_confidence", "margin", "entropy", "kcenter",
                                                     "hybrid"], rounds, k, seeds, init_labels, out_dir,
                       targets=[float(t) for t in _split(targets)], model=model, cache_dir=cache_dir,
                       epochs=epochs or 200, mc_samples=mc_samples, quiet=False)
    out.print(f"report: {res['report']}  plot: {res['plot']}  results: {res['results']}")


def _budgets(text: Optional[str]) -> Optional[list[int]]:
    """--budgets 50,100,200,400 as label counts (a word that is not a whole number: one line)."""
    if not text:
        return None
    try:
        return [int(b) for b in _split(text)]
    except ValueError:
        from ..errors import ConfigError

        raise ConfigError(f"--budgets takes whole label counts separated by commas, e.g. 50,100,200,400; not "
                          f"{text!r}") from None


def main(argv: Optional[list[str]] = None) -> None:
    run_app(app, argv)


if __name__ == "__main__":
    main()
