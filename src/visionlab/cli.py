"""The command line: a thin typer layer over the Python API, with the same names."""
from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .boxes import BOX_FEATURES, DEFAULT_BOX_FEATURES, BoxMerge
from .cli_errors import run_app
from .cli_options import options_from
from .config import RunConfig
from .detect.config import DetectConfig
from .detect.pipeline import DEFAULT_MARGIN
from .errors import ConfigError
from .progress import say

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="visionlab: image classification from a folder of images to a deployed model.")
# tables stay readable when piped to a file; markup off: the lines carry users' paths, and a "[" in a folder's name
# is part of the name (the few coloured words are styled through ``headed``)
out = Console(width=None if sys.stdout.isatty() else 160, markup=False)


def headed(word: str, style: str, text: str) -> Text:
    """``word`` in ``style``, then ``text`` as it is."""
    return Text.assemble((word, style), text)


def _parse_field(name: str, value: Any) -> Any:
    if value is None:
        return None
    three = {"split_ratios": "such as 70:15:15", "input_mean": "(R,G,B on the 0..1 scale) such as 0.49,0.48,0.45",
             "input_std": "(R,G,B on the 0..1 scale) such as 0.25,0.24,0.26"}
    if name in three:
        parts = [float(p) for p in str(value).replace(",", ":").split(":") if p.strip()]
        if len(parts) != 3:
            raise ConfigError(f"--{name.replace('_', '-')} takes three numbers {three[name]}")
        return tuple(parts)
    if name == "track":  # repeatable and/or comma lists; none given leaves the config's own
        return list(value) or None
    if name == "widths":
        return [int(p) for p in str(value).replace(":", ",").split(",") if p]
    return value


def num(v: Any) -> str:
    """A number as a table or line shows it: 4 decimals for scores in 0..1, 3 significant digits for small or
    large ones (lr 3e-05, not 0.0000), one decimal for other floats; '' for None."""
    if v is None:
        return ""
    if isinstance(v, bool) or not isinstance(v, float):
        return str(v)
    if v != v:
        return "nan"
    if v == 0 or 1e-3 <= abs(v) < 1:
        return f"{v:.4f}"
    if abs(v) < 1e-3 or abs(v) >= 1e5:
        return f"{v:.3g}"
    return f"{v:.1f}"


def times_line(m: dict) -> str:
    """A run's wall time by phase (metrics.json), e.g. '41.3 s in all: setup 2.1 (data, features), training
    30.0, evaluation/report 9.2'."""
    if m.get("total_seconds") is None:  # runs written before the phases were timed
        return f"{m.get('train_seconds', 0):.1f} s of training"
    return (f"{m['total_seconds']:.1f} s in all: setup {m['setup_seconds']:.1f} (data, features), training "
            f"{m['train_seconds']:.1f}, evaluation/report {m['evaluation_seconds']:.1f}")


def _warn_each(items, word: str) -> None:
    """One yellow line per (path, reason) a command passed over."""
    for p, why in items:
        say(word, f"{p}: {why}")


config_options = options_from(RunConfig)  # train's and lr-find's flags: one per RunConfig field (cli_options.py)


def _fields(kwargs: dict) -> dict:
    return {k: _parse_field(k, v) for k, v in kwargs.items() if k in RunConfig.model_fields and v is not None}


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@config_options
def train(config: Optional[Path] = typer.Option(None, "--config", help="a YAML RunConfig; flags override it"),
          resume: bool = typer.Option(False, "--resume", help="continue the run in --out from its last checkpoint"),
          **kwargs: Any) -> None:
    """Train a model and evaluate it; writes a run folder with config, history, metrics, model and report."""
    from .api import train as api_train

    res = api_train(config, resume=resume, **_fields(kwargs))
    m = res.metrics
    if not m:  # a torchrun rank other than 0: rank 0 reports
        return
    colour = "green" if res.status != "diverged" else "red"
    acc = f"test accuracy {m['test_acc']:.4f}" if m.get("test_acc") is not None else \
        f"validation accuracy {num(m.get('val_acc'))}"
    out.print(headed(res.status, colour, f": {acc} after {m['epochs_run']} epochs; {times_line(m)}"))
    report = res.path / "report.html"  # --report metrics writes none: name what was written instead
    out.print(f"run folder: {res.path}   " + (f"report: {report}" if report.exists()
                                              else f"metrics: {res.path / 'metrics.json'}"), soft_wrap=True)


@app.command("lr-find", context_settings={"help_option_names": ["-h", "--help"]})
@config_options
def lr_find_cmd(config: Optional[Path] = typer.Option(None, "--config", help="a YAML RunConfig; flags override it"),
                start_lr: float = typer.Option(1e-7, "--start-lr", help="first rate of the exponential ramp"),
                end_lr: float = typer.Option(10.0, "--end-lr", help="last rate of the ramp"),
                steps: int = typer.Option(100, "--steps", help="mini-batches (one optimizer step each) over the ramp"),
                **kwargs: Any) -> None:
    """Learning-rate range test (fastai's lr_find): the loss-vs-lr curve as a PNG and a suggested --lr for `train`
    with the same options; --out is the folder for lr_find.png/.csv/.json."""
    from .api import lr_find

    res = lr_find(config, start_lr=start_lr, end_lr=end_lr, steps=steps, **_fields(kwargs))
    out.print(f"suggested --lr {res.suggested:.2g} (steepest descent {res.steep:.2g}, minimum/10 {res.min_div10:.2g}; "
              f"{len(res.lrs)} steps{', stopped when the loss passed 4x its minimum' if res.stopped_early else ''})")
    out.print(f"curve: {res.files['png']}")


@app.command()
def evaluate(run: Path = typer.Argument(..., help="a run folder"),
             data: Optional[str] = typer.Option(None, "--data", help="data to evaluate on (default: the run's own)"),
             out_dir: Optional[Path] = typer.Option(None, "--out", help="where metrics, plots and report go "
                                                                       "(default: RUN/eval, RUN/eval-SPLIT)"),
             split: typing.Literal["train", "val", "test"] = typer.Option(
                 "test", "--split", help="which split of the data to evaluate (a folder without splits: all of it)"),
             tta: bool = typer.Option(False, "--tta", help="test-time augmentation: average each image with its "
                                                           "mirror image"),
             positive_class: Optional[str] = typer.Option(None, "--positive-class"),
             quiet: bool = typer.Option(False, "--quiet", help="no progress output"),
             slices: Optional[Path] = typer.Option(None, "--slices",
                                                   help="a CSV of 0/1 tags per image (a crop column, or image,box_id "
                                                        "for crops from `visionlab data faces`): recall and "
                                                        "precision per class on each tagged kind of face")) -> None:
    """Evaluate a trained run: accuracy, confusion matrix, precision/recall/F1, ROC-AUC, plots, report."""
    from .api import evaluate as api_evaluate

    m = api_evaluate(run, data=data, out=out_dir, split=split, tta=tta, positive_class=positive_class, quiet=quiet,
                     slices=slices)
    which = f"{m['positive_class']}" if "positive_class" in m else "macro"
    out.print(f"{split}: accuracy {m['accuracy']:.4f}  precision ({which}) {m['precision']:.4f}  recall ({which}) "
              f"{m['recall']:.4f}  F1 ({which}) {m['f1']:.4f}  ROC-AUC {m.get('roc_auc', float('nan')):.4f}  "
              f"({m['n']} images{', flip TTA' if tta else ''})")
    if m.get("threshold") is not None:
        out.print(f"at the threshold chosen on validation (P({m['positive_class']}) >= {m['threshold']:.3f}): "
                  f"accuracy {m['at_threshold']['accuracy']:.4f}")
    if "slices" in m:
        _print_slices(m["slices"])
    out.print(f"report: {Path(m['out_dir']) / 'report.html'}")


@app.command("runs")
def runs_cmd(root: Path = typer.Argument(Path("runs"), help="folder holding run folders")) -> None:
    """A table of runs with their key metrics."""
    from .api import runs as api_runs

    rows = api_runs(root)
    if not rows:
        out.print(f"no runs under {root}")
        return
    t = Table("run", "model", "optimizer", "lr", "status", "epochs", "val acc", "test acc", "setup s", "train s",
              "eval s", "total s")
    t.columns[0].no_wrap = True
    t.title = f"runs under {root}"
    for r in rows:
        t.add_row(str(Path(r["run"]).relative_to(root)), r["model"], r["optimizer"], num(r["lr"]), r["status"], num(r["epochs"]),
                  num(r["val_acc"]), num(r["test_acc"]), *["" if r.get(k) is None else f"{r[k]:.1f}" for k in
                                                           ("setup_seconds", "train_seconds", "evaluation_seconds",
                                                            "total_seconds")])
    out.print(t)


@app.command()
def demo(data: Optional[str] = typer.Option(None, "--data", help="a real image folder instead of synthetic data"),
         out_dir: Optional[str] = typer.Option(None, "--out"),
         epochs: int = typer.Option(6, "--epochs"), quiet: bool = typer.Option(False, "--quiet")) -> None:
    """The flagship job, offline: masks detected in bundled real photos with the bundled model (annotated photos and
    a page), then a small CNN trained and evaluated (synthetic data when none is given)."""
    from .flagship import demo as api_demo

    out.print(_model_line(None), soft_wrap=True)
    res = api_demo(data=data, out=out_dir, epochs=epochs, quiet=quiet)
    m, d = res.metrics, res.detection
    if d:
        labels = ", ".join(f"{k} {v}" for k, v in sorted(d["labels"].items()))
        out.print(headed("detection", "green", f": {d['processed']} bundled photos, {d['faces']} faces ({labels}) in "
                         f"{d['seconds']:.1f} s; annotated photos in {res.root / 'detections'}"))
    out.print(headed("training", "green", f": test accuracy {m.get('test_acc') or 0:.4f}, {m['epochs_run']} epochs, "
                     f"{times_line(m)}; report: {res.path / 'report.html'}"))
    if res.report is not None:
        out.print(headed("demo finished", "green", f": open {res.report}"))


@app.command("predict")
def predict_cmd(inputs: list[Path] = typer.Argument(..., help="[RUN] then image files and/or folders; without a run "
                                                             "folder or .onnx file first, the bundled classifier"),
                out_dir: Optional[Path] = typer.Option(None, "--out", help="where predictions.csv/json and annotated "
                                                                          "copies go (default: predictions-<time>)"),
                annotate: bool = typer.Option(True, "--annotate/--no-annotate"),
                backend: str = typer.Option("onnx", "--backend", help="onnx (ONNX Runtime; a run folder's model is "
                                                                     "exported to RUN/model.onnx on first use) or torch"),
                threshold: str = typer.Option("validation", "--threshold",
                                              help="two-class runs: validation = the threshold the run chose on its "
                                                   "validation split (else the top class); argmax = the top class; "
                                                   "or a probability for the positive class"),
                tta: bool = typer.Option(False, "--tta", help="test-time augmentation: average each image with its "
                                                              "mirror image"),
                quiet: bool = typer.Option(False, "--quiet", help="no progress output")) -> None:
    """Label unseen images (any format or size); unreadable files are reported, not fatal."""
    import time as _time

    from .predict import predict
    from .runs import RunFolder

    first = inputs[0]
    is_model = first.suffix.lower() == ".onnx" or (first.is_dir() and RunFolder(first).info.is_file())
    model, inputs = (first, inputs[1:]) if is_model else (None, inputs)
    if not inputs:
        raise ConfigError(f"no images given after the model {first}; pass image files or folders")
    out_dir = out_dir or Path(f"predictions-{_time.strftime('%Y%m%d-%H%M%S')}")
    out.print(_model_line(model), soft_wrap=True)
    if model is None:
        out.print("the bundled model labels face crops; for photos with people in them use `visionlab detect`")
    res = predict(model, inputs, out_dir, annotate=annotate, backend=backend, threshold=threshold, tta=tta,
                  quiet=quiet)
    out.print(f"labels: {res['labels_by']}{'; flip TTA' if tta else ''}", soft_wrap=True)
    counts: dict[str, int] = {}
    for r in res["predictions"]:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    out.print(f"{len(res['predictions'])} images predicted: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    _warn_each(res["unreadable"], "skipped")
    out.print(f"results: {Path(res['out_dir']) / 'predictions.csv'}")


@app.command("compare")
def compare_cmd(runs: list[Path] = typer.Argument(..., help="run folders"),
                out_dir: Path = typer.Option(Path("comparison"), "--out")) -> None:
    """One report comparing runs: table, overlaid ROC curves, metric bars, confusion matrices."""
    from .compare import compare

    out.print(f"report: {compare(runs, out_dir)}")


@app.command("detect")
@options_from(DetectConfig)
def detect_cmd(input: Optional[str] = typer.Argument(None, help="an image, a folder of images, a video file or a "
                                                                  "stream URL (rtsp://, http(s)://)"),
               out_dir: Optional[Path] = typer.Option(None, "--out",
                                                      help="annotated images/video and detections.jsonl go here "
                                                           "(default: a new detections-<time> folder here)"),
               camera: Optional[int] = typer.Option(None, "--camera", help="read camera N instead of INPUT"),
               truth: Optional[Path] = typer.Option(None, "--truth",
                                                    help="boxes.csv or a PASCAL VOC folder: score the boxes (mAP, "
                                                         "recall by size, confusion, report.html)"),
               subset: Optional[str] = typer.Option(None, "--subset",
                                                    help="with --truth: only these photos, e.g. crops/faces.json:"
                                                         "Validation or a text file of names"),
               slices: Optional[Path] = typer.Option(None, "--slices",
                                                     help="with --truth: a CSV of 0/1 tags per face (image,box_id or "
                                                          "image,xmin,ymin,xmax,ymax, then tag columns): recall and "
                                                          "precision per class on each tagged kind of face"),
               **fields: Any) -> None:
    """Find every face in photos, a folder, a video, a stream (rtsp://, http(s)://) or a camera and label each
    (mask / no mask / worn incorrectly / unsure). Video, streams and cameras also get summary.csv/png (counts and mask rate over time). With
    --truth, also score the boxes against annotations. Every option but --out, --camera, --truth and --subset is
    a field of visionlab.detect.DetectConfig."""
    from .detect.config import make_config
    from .detect.privacy import storage_notice

    if (input is None) == (camera is None):
        raise ConfigError("give INPUT (image, folder, video or stream URL) or --camera N, not both")
    cfg = make_config(None, **fields)
    if cfg.blur and cfg.pixelate:
        raise ConfigError("--blur and --pixelate exclude each other: pick one")
    if out_dir is None:
        from .detect.run import default_out_dir

        out_dir = default_out_dir()
    model = Path(cfg.model) if cfg.model is not None else None
    out.print(f"{_model_line(model)}; {storage_notice(cfg.privacy, cfg.save_frames)}", soft_wrap=True)
    if truth is not None:
        from .detect.evaluate import detect_and_evaluate, scoring_config

        if input is None:
            raise ConfigError("--truth scores photos: give INPUT, not --camera")
        m = detect_and_evaluate(input, scoring_config(cfg),
                                out_dir, truth, subset=subset, slices=slices)
        _print_box_scores(m, Path(m["out_dir"]))
        return
    if subset is not None or slices is not None:
        raise ConfigError(f"{'--subset' if subset is not None else '--slices'} goes with --truth")
    from .detect import run_detection

    s = run_detection(int(camera) if camera is not None else input, cfg, out_dir)
    _print_detections(s, Path(s["out_dir"]))


def _print_box_scores(m: dict, out_dir: Path) -> None:
    """``detect --truth``'s lines: mAP, per-class AP, recall and false boxes, then where the report went."""
    ci = m.get("intervals") or {}

    def iv(v, c, scale=1.0, f=".3f", unit="") -> str:  # the figure and its bootstrap interval, where there is one
        return f"{scale * v:{f}}{unit}" + (f" [{scale * c[0]:{f}}, {scale * c[1]:{f}}]" if c else "")

    per = ", ".join(f"{c} {iv(v, ci.get('ap50_per_class', {}).get(c))}" for c, v in m["ap50_per_class"].items())
    small = m["recall_by_size"].get("<16", {})
    out.print(f"{m['photos']} photos, {m['faces']} annotated faces: mAP@0.5 {iv(m['map50'], ci.get('map50'))} ({per}); "
              f"boxes shown (face probability >= {m['shown_face_prob']:g}) {iv(m['map50_shown'], ci.get('map50_shown'))}; "
              f"mAP@[.5:.95] {m['map']:.3f}; faces found {iv(m['face_recall'], ci.get('face_recall'), 100, '.1f', '%')}"
              + (f", under 16 px {iv(small['recall'], ci.get('recall_under_16'), 100, '.1f', '%')}"
                 if small.get("recall") is not None else "")
              + f"; false boxes {m['false_boxes']}", soft_wrap=True, markup=False)
    if ci:
        out.print(f"in brackets: 95% intervals, {ci['method']}")
    if "slices" in m:
        _print_slices(m["slices"])
    out.print(f"report: {m['report']}  metrics: {Path(out_dir) / 'metrics.json'}")


def _print_slices(sm: dict) -> None:
    """One line for the slices: each ranked slice's share labelled right with its interval and mix-matched gap (and,
    for detection, the share right and shown by default), worst first, then the slices too small to rank."""
    rows = sorted((r for r in sm["rows"] if r["rank"]), key=lambda r: r["rank"])
    ranked = "; ".join(f"{r['slice']} {100 * r['overall']['rate']:.1f}% [{100 * r['overall']['ci'][0]:.1f}, "
                       f"{100 * r['overall']['ci'][1]:.1f}] of {r['faces']} ({100 * r['overall']['gap']:+.1f}"
                       + (f", shown {100 * r['shown']['rate']:.1f}%" if r.get("shown") else "") + ")"
                       + (f" below the whole set for {', '.join(r['short'])}" if r["short"] else "") for r in rows)
    small = ", ".join(f"{r['slice']} ({r['faces']})" for r in sm["rows"] if r["small"])
    out.print(f"slices of {sm['faces']} tagged faces, labelled right, worst first: {ranked or 'none ranked'}"
              + (f"; under {sm['min_faces']} faces, not ranked: {small}" if small else ""), soft_wrap=True)


def _print_detections(s: dict, out_dir: Path) -> None:
    """``detect``'s lines after ``run_detection``: faces by label and speed, skipped files, the video summary
    (mask rate, people) and where the output went."""
    labels = ", ".join(f"{k} {v}" for k, v in sorted(s["labels"].items())) or "none"
    unit = ("frame" if s["kind"] in ("video", "camera", "stream") else "image") + ("" if s["processed"] == 1 else "s")
    speed = f"in {s['seconds']:.2f} s" if s["fps"] is None else f"at {s['fps']:.1f} FPS"  # one photo: its time
    live = (f"; {s['dropped']} dropped (no time for them), {s['reconnects']} reconnect"
            f"{'' if s['reconnects'] == 1 else 's'}" if "dropped" in s else "")
    out.print(f"{s['processed']} {unit}: {s['faces']} faces "
              f"({labels}) {speed}{live}{' (interrupted, output finalised)' if s['interrupted'] else ''}")
    _warn_each(s["skipped"], "skipped")
    if s.get("summary"):
        t = s["summary"]
        rate = "no faces" if t["mask_rate"] is None else (
            f"mask rate {100 * t['mask_rate']:.1f}% [{100 * t['mask_rate_ci'][0]:.1f}, "
            f"{100 * t['mask_rate_ci'][1]:.1f}]")
        people = f", {t['people']['count']} people by track" if t.get("people") else ""
        files = f"{t['csv']}, {t['png']}" if t.get("png") else f"{t['csv']} ({t['png_missing']})"
        out.print(f"summary: {rate} over {t['faces']} face sightings{people}; {files}", markup=False,
                  soft_wrap=True)
    if s.get("alerts"):
        a = s["alerts"]
        rules = ", ".join(f"{r} {n}" for r, n in a["by_rule"].items())
        out.print(f"alerts: {a['events']} event{'' if a['events'] == 1 else 's'} ({rules}); {a['sent']} sent, "
                  f"{a['failed']} failed, {a['dropped']} dropped (queue full)", markup=False, soft_wrap=True)
    out.print(f"output: {out_dir}  (JSON lines: {s['jsonl']})", soft_wrap=True)
    if s.get("periods", 1) > 1:  # a camera or stream that rolled its files over (--rollover-seconds)
        out.print(f"rolled over: {s['periods']} periods; the plain names hold the last, each earlier one is in "
                  f"detections-<start>.jsonl, summary-<start>.csv" + (" and a video of its own" if s["video"] else ""),
                  markup=False, soft_wrap=True)


def _model_line(model: Optional[Path]) -> str:
    """The first output line of detect/predict/serve/demo: which classifier labels the faces."""
    if model is None:
        from .assets import card, default_classifier

        c = card()
        path = default_classifier()
        n = c.get("members", 1)
        return (f"model: bundled face-mask classifier {path.name} ({c.get('architecture', '?').split(' (')[0]}"
                f"{f' x {n} averaged on photos' if n > 1 else ''}, {c.get('image_size', '?')} px, card: "
                f"{path.parent / 'MODEL_CARD.md'})")
    return f"model: {model}"


@app.command("export")
def export_cmd(run: Path = typer.Argument(..., help="a run folder"),
               fmt: str = typer.Option("onnx", "--format", help="onnx"),
               out_file: Optional[Path] = typer.Option(None, "--out", help="default RUN/model.onnx (with --average: "
                                                       "RUN/averaged/model.onnx, then model-2.onnx, ...)"),
               average: Optional[list[Path]] = typer.Option(None, "--average", help="another run (same classes and "
                                                            "input size) averaged with RUN; repeat for more"),
               quiet: bool = typer.Option(False, "--quiet", help="no progress output")) -> None:
    """Export a trained model (dynamic batch, raw-pixel input, preprocessing in the file's metadata)."""
    from .inference.export import export_run

    path = export_run(run, out_file, format=fmt, quiet=quiet, average=average or ())
    what = f" averaged with {len(average)} more beside it; load it to average all" if average else ""
    out.print(f"exported: {path}{what} (checked against torch with ONNX Runtime)")


@app.command("models")
def models_cmd() -> None:
    """The registered models."""
    from .models import list_models

    t = Table("model", "family", "default input")
    for m in list_models():
        t.add_row(m["model"], str(m["family"]), str(m["image_size"] or ""))
    out.print(t)


data_app = typer.Typer(no_args_is_help=True, help="Look at a data folder before training on it.")
app.add_typer(data_app, name="data")


@data_app.command("inspect")
def data_inspect(root: Path = typer.Argument(..., help="an image folder"),
                 out_dir: Path = typer.Option(Path("inspect"), "--out")) -> None:
    """Counts per split and class, image sizes, unreadable files, a distribution and a sample-grid PNG."""
    from .data.inspect import inspect

    s = inspect(root, out_dir)
    t = Table("split", *s["classes"], "total")
    for split, cs in s["splits"].items():
        t.add_row(split, *[str(cs.get(c, 0)) for c in s["classes"]], str(sum(cs.values())))
    out.print(t)
    z = s["size"]
    out.print(f"sizes: width {z['min_w']}-{z['max_w']} (median {z['median_w']:.0f}), height {z['min_h']}-{z['max_h']} "
              f"(median {z['median_h']:.0f}); modes {s['modes']}")
    _warn_each(s["unreadable"], "unreadable")
    out.print(f"plots: {out_dir / 'class_distribution.png'}, {out_dir / 'samples.png'}")


@data_app.command("issues")
def data_issues(root: Path = typer.Argument(..., help="an image folder (class folders, or Train/Validation/Test of them)"),
                run: Path = typer.Option(..., "--run", help="a finished run trained on these classes: its model's "
                                                            "features are what the images are compared by"),
                out_dir: Optional[Path] = typer.Option(None, "--out", help="where issues.html and the CSVs go "
                                                                          "(default: RUN/issues)"),
                folds: int = typer.Option(5, "--folds", help="cross-validation folds for out-of-fold probabilities"),
                max_distance: int = typer.Option(4, "--max-distance",
                                                 help="near-duplicates: perceptual hashes at most this many bits "
                                                      "apart (of 64)"),
                seed: int = typer.Option(0, "--seed"), quiet: bool = typer.Option(False, "--quiet")) -> None:
    """Likely label errors (cleanlab on out-of-fold probabilities) and near-duplicate images, as a page with the
    images; nothing in the folder is changed."""
    from .evaluation.issues import find_issues

    r = find_issues(root, run, out_dir, folds=folds, seed=seed, max_distance=max_distance, quiet=quiet)
    out.print(f"{r.n_images} images: {len(r.label_issues)} likely label errors, {len(r.duplicates)} near-duplicate "
              f"pairs (out-of-fold accuracy {r.oof_accuracy:.3f})")
    out.print(f"page: {r.files['html']}  lists: {r.files['label_issues']}, {r.files['duplicates']}")


@data_app.command("split")
def data_split(root: Path = typer.Argument(..., help="one folder of class folders"),
               ratios: str = typer.Option("70:15:15", "--ratios"), seed: int = typer.Option(0, "--seed"),
               out_file: Optional[Path] = typer.Option(None, "--out", help="manifest CSV path")) -> None:
    """Write a seeded, stratified split manifest (path, class, split); no image is copied or moved."""
    from .data.inspect import split_manifest

    r = _parse_field("split_ratios", ratios)
    out.print(f"manifest: {split_manifest(root, r, seed, out_file)}")


@data_app.command("faces")
def data_faces(sources: list[Path] = typer.Argument(..., help="boxes.csv / PASCAL VOC folders, and ImageFolders of "
                                                              "one-face photos (their face is found by the detector)"),
               out_dir: Path = typer.Option(..., "--out", help="a new folder for the face-crop ImageFolder"),
               images: Optional[Path] = typer.Option(None, "--images", help="folder of the annotated photos "
                                                                          "(default: images/ beside the annotations)"),
               face_model: Optional[Path] = typer.Option(None, "--face-model", help="YuNet ONNX file"),
               detector: str = typer.Option("yunet", "--detector", help="yunet (OpenCV) or yunet_ort (ONNX "
                                                                         "Runtime); detect.json records it"),
               upscale: float = typer.Option(3.0, "--upscale", help="enlarge photos this much for the detector"),
               score_threshold: float = typer.Option(0.15, "--score-threshold",
                                                     help="detector threshold (the Background class rejects the "
                                                          "extra boxes)"),
               margin: float = typer.Option(DEFAULT_MARGIN, "--margin",
                                            help="crop margin, as the detection pipeline uses"),
               size: int = typer.Option(128, "--size", help="side of the saved crops (px)"),
               ratios: str = typer.Option("70:15:15", "--split-ratios", help="train:validation:test, by photo"),
               seed: int = typer.Option(0, "--seed"),
               balance: bool = typer.Option(True, "--balance/--no-balance",
                                            help="jittered extra training crops for rare classes"),
               background: bool = typer.Option(True, "--background/--no-background",
                                               help="a Background class from the detector's false boxes"),
               background_max_score: Optional[float] = typer.Option(
                   None, "--background-max-score", help="a detector box on no annotated face that scores this or "
                   "more is taken for a face the annotators left out: no crop, not Background (default: all are "
                   "Background)"),
               label_map: Optional[str] = typer.Option(None, "--label-map", help="NAME=CLASS,... for other labels"),
               folds: Optional[int] = typer.Option(None, "--folds", help="K folds over the photos outside the "
                                                                         "held-out Test part (with --fold)"),
               fold: Optional[int] = typer.Option(None, "--fold", help="the fold (0..K-1) that is Validation; the "
                                                                       "other folds are Train"),
               dhash_bits: int = typer.Option(4, "--dhash-bits", help="near-duplicate photos: difference hashes "
                                                                      "at most this many bits apart"),
               phash_bits: int = typer.Option(6, "--phash-bits", help="... or DCT hashes at most this many bits "
                                                                      "apart (-1: difference hash only)"),
               synthetic_incorrect: int = typer.Option(0, "--synthetic-incorrect", help="add this many Train crops "
                                                       "of masks moved below the nose, made from Train's unmasked "
                                                       "and masked faces by their landmarks"),
               turned_copies: int = typer.Option(0, "--turned-copies", help="write each Train face that YuNet's "
                                                 "landmarks show turned aside this many more times (hard examples "
                                                 "of side faces)"),
               box_merge: BoxMerge = typer.Option("nms", "--box-merge", help="how the detector's searches (scales, "
                                             "mirror) become one box per face: nms or wbf (as `detect --box-merge`; "
                                             "the crops and box correction are then those of the fused boxes)"),
               mirror_search: bool = typer.Option(False, "--mirror-search/--no-mirror-search",
                                                  help="also search each photo mirrored (as `detect`)"),
               box_correction: str = typer.Option(DEFAULT_BOX_FEATURES, "--box-correction",
                                                  help=f"inputs of the box correction fitted on the Train photos: "
                                                       f"{' or '.join(BOX_FEATURES.names())} (quadratic also bends "
                                                       f"with face size and pose)")) -> None:
    """Cut a face-crop ImageFolder (Train/Validation/Test, split by photo group) with the detection pipeline's crop
    geometry, plus detect.json (detector settings and a learned box correction) for the trained model.
    --folds K --fold I: Validation = fold I of the photos outside the held-out Test part."""
    from .data.boxes import parse_label_map
    from .detect.facecrops import cut_faces

    r = _parse_field("split_ratios", ratios)
    s = cut_faces(sources, out_dir, images=images, face_model=face_model, upscale=upscale,
                  score_threshold=score_threshold, margin=margin, size=size, split_ratios=r, seed=seed,
                  balance=balance, background=background, label_map=parse_label_map(label_map) or None,
                  detector=detector, folds=folds, fold=fold, dhash_bits=dhash_bits, phash_bits=phash_bits,
                  synthetic_incorrect=synthetic_incorrect, turned_copies=turned_copies,
                  box_merge=box_merge, mirror_search=mirror_search, background_max_score=background_max_score,
                  box_correction=box_correction)
    out.print(str(s))
    out.print(f"split and settings: {out_dir / 'faces.json'}; detector profile: {out_dir / 'detect.json'}")


# The sub-apps' modules import only typer and rich at the top (FastAPI, torch and the study runner's work wait
# for their commands), so mounting them here costs `visionlab --help` nothing it did not cost before.
from .active.cli import app as active_app  # noqa: E402
from .serve.cli import serve_command  # noqa: E402
from .studies.cli import app as study_app  # noqa: E402

app.command("serve")(serve_command)
app.add_typer(study_app, name="study")
app.add_typer(active_app, name="active", help="Active learning: query, label, retrain, simulate.")


def _flowed_help(group: typer.Typer) -> None:
    """Each command's help from its docstring with the source's line breaks joined: typer's rich mode keeps single
    line breaks, which broke the command lists mid-sentence at the docstrings' 119-column source width (typer's
    other modes join them, but rich_markup_mode=None drops the panels and "markdown" reads <time> as HTML)."""
    import inspect

    for c in group.registered_commands:
        doc = c.help if c.help is not None else inspect.getdoc(c.callback)
        if doc:
            c.help = "\n\n".join(" ".join(p.split()) for p in doc.split("\n\n"))
    for g in group.registered_groups:
        if g.typer_instance is not None:
            _flowed_help(g.typer_instance)


_flowed_help(app)


def main(argv: Optional[list[str]] = None) -> None:
    from .timing import mark_entry

    mark_entry()  # `visionlab train`'s setup time starts here, with the imports it needs
    try:
        run_app(app, argv)
    finally:
        mark_entry(False)  # main() called in-process (tests, notebooks): no later run starts from this mark


if __name__ == "__main__":
    main()
