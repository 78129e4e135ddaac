"""The command line: a thin typer layer over the Python API, with the same names."""
from __future__ import annotations

import inspect
import sys
import typing
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from .cli_errors import run_app
from .config import RunConfig
from .errors import ConfigError
from .progress import console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="visionlab: image classification from a folder of images to a deployed model.")
out = Console(width=None if sys.stdout.isatty() else 160)  # tables stay readable when piped to a file


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
    if name == "widths":
        return [int(p) for p in str(value).replace(":", ",").split(",") if p]
    return value


def _cli_type(ann: Any) -> Any:
    args = typing.get_args(ann)
    origin = typing.get_origin(ann)
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)][0]
        return _cli_type(inner)
    if origin is typing.Literal or origin in (tuple, list):
        return str
    return ann


def _warn_each(items, word: str) -> None:
    """One yellow line per (path, reason) a command passed over."""
    for p, why in items:
        console.print(f"[yellow]{word}[/] {p}: {why}", highlight=False)


def config_options(fn):
    """Give ``fn`` one --option per RunConfig field (default None: only what is given overrides)."""
    params = [p for p in inspect.signature(fn).parameters.values() if p.kind != p.VAR_KEYWORD]
    for name, f in RunConfig.model_fields.items():
        typ = _cli_type(f.annotation)
        default = f.default
        extra = ""
        if typing.get_origin(f.annotation) is typing.Literal:
            extra = " [" + "|".join(map(str, typing.get_args(f.annotation))) + "]"
        help_ = f"{f.description or ''}{extra} (default: {default})"
        flag = "--" + name.replace("_", "-")
        decls = [f"{flag}/--no-{name.replace('_', '-')}"] if typ is bool else [flag]
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[typ],
                                        default=typer.Option(None, *decls, help=help_, show_default=False)))
    fn.__signature__ = inspect.Signature(params)
    return fn


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
        f"validation accuracy {m.get('val_acc')}"
    setup = f" (+{m['setup_seconds']:.1f} s setup: data, features)" if m.get("setup_seconds") else ""
    out.print(f"[{colour}]{res.status}[/]: {acc} after {m['epochs_run']} epochs in {m['train_seconds']:.1f} s{setup}")
    report = res.path / "report.html"  # --report metrics writes none: name what was written instead
    out.print(f"run folder: {res.path}   " + (f"report: {report}" if report.exists()
                                              else f"metrics: {res.path / 'metrics.json'}"))


@app.command()
def evaluate(run: Path = typer.Argument(..., help="a run folder"),
             data: Optional[str] = typer.Option(None, "--data", help="data to evaluate on (default: the run's own)"),
             out_dir: Optional[Path] = typer.Option(None, "--out", help="where metrics, plots and report go"),
             positive_class: Optional[str] = typer.Option(None, "--positive-class")) -> None:
    """Evaluate a trained run: accuracy, confusion matrix, precision/recall/F1, ROC-AUC, plots, report."""
    from .api import evaluate as api_evaluate

    m = api_evaluate(run, data=data, out=out_dir, positive_class=positive_class)
    out.print(f"accuracy {m['accuracy']:.4f}  F1 {m['f1']:.4f}  ROC-AUC {m.get('roc_auc', float('nan')):.4f}  "
              f"({m['n']} images)")
    out.print(f"report: {Path(m['out_dir']) / 'report.html'}")


@app.command("runs")
def runs_cmd(root: Path = typer.Argument(Path("runs"), help="folder holding run folders")) -> None:
    """A table of runs with their key metrics."""
    from .api import runs as api_runs

    rows = api_runs(root)
    if not rows:
        out.print(f"no runs under {root}")
        return
    t = Table("run", "model", "optimizer", "lr", "status", "epochs", "val acc", "test acc", "seconds")
    f = lambda v: "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    for r in rows:
        t.add_row(r["run"], r["model"], r["optimizer"], f(r["lr"]), r["status"], f(r["epochs"]),
                  f(r["val_acc"]), f(r["test_acc"]), f(r["seconds"]))
    out.print(t)


@app.command()
def demo(data: Optional[str] = typer.Option(None, "--data", help="a real image folder instead of synthetic data"),
         out_dir: Optional[str] = typer.Option(None, "--out"),
         epochs: int = typer.Option(6, "--epochs"), quiet: bool = typer.Option(False, "--quiet")) -> None:
    """The flagship job, offline: masks detected in bundled real photos with the bundled model (annotated photos and
    a page), then a small CNN trained and evaluated (synthetic data when none is given)."""
    from .api import demo as api_demo

    out.print(_model_line(None), soft_wrap=True)
    res = api_demo(data=data, out=out_dir, epochs=epochs, quiet=quiet)
    m, d = res.metrics, res.detection
    if d:
        labels = ", ".join(f"{k} {v}" for k, v in sorted(d["labels"].items()))
        out.print(f"[green]detection[/]: {d['processed']} bundled photos, {d['faces']} faces ({labels}) in "
                  f"{d['seconds']:.1f} s; annotated photos in {res.root / 'detections'}")
    out.print(f"[green]training[/]: test accuracy {m.get('test_acc') or 0:.4f}, {m['epochs_run']} epochs, "
              f"{m['train_seconds']:.1f} s of training; report: {res.path / 'report.html'}")
    if res.report is not None:
        out.print(f"[green]demo finished[/]: open {res.report}")


@app.command("predict")
def predict_cmd(args: list[Path] = typer.Argument(..., help="[RUN] then image files and/or folders; without a run "
                                                             "folder or .onnx file first, the bundled classifier"),
                out_dir: Optional[Path] = typer.Option(None, "--out", help="where predictions.csv/json and annotated "
                                                                          "copies go (default: predictions-<time>)"),
                annotate: bool = typer.Option(True, "--annotate/--no-annotate"),
                backend: str = typer.Option("onnx", "--backend", help="onnx (ONNX Runtime) or torch")) -> None:
    """Label unseen images (any format or size); unreadable files are reported, not fatal."""
    import time as _time

    from .predict import predict
    from .runs import RunFolder

    first = args[0]
    is_model = first.suffix.lower() == ".onnx" or (first.is_dir() and RunFolder(first).info.is_file())
    model, inputs = (first, args[1:]) if is_model else (None, args)
    if not inputs:
        raise ConfigError(f"no images given after the model {first}; pass image files or folders")
    out_dir = out_dir or Path(f"predictions-{_time.strftime('%Y%m%d-%H%M%S')}")
    out.print(_model_line(model), soft_wrap=True)
    if model is None:
        out.print("the bundled model labels face crops; for photos with people in them use `visionlab detect`")
    res = predict(model, inputs, out_dir, annotate=annotate, backend=backend)
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
def detect_cmd(input: Optional[str] = typer.Argument(None, help="an image, a folder of images or a video file"),
               model: Optional[Path] = typer.Option(None, "--model",
                                                    help="a run folder or an .onnx file (default: the bundled "
                                                         "three-class face-mask classifier)"),
               out_dir: Optional[Path] = typer.Option(None, "--out",
                                                      help="annotated images/video and detections.jsonl go here "
                                                           "(default: a new detections-<time> folder here)"),
               camera: Optional[int] = typer.Option(None, "--camera", help="read camera N instead of INPUT"),
               detector: str = typer.Option("yunet", "--detector", help="yunet (needs its ONNX file) or haar"),
               backend: str = typer.Option("onnx", "--backend", help="onnx (ONNX Runtime) or torch"),
               face_model: Optional[Path] = typer.Option(None, "--face-model", help="YuNet ONNX file"),
               quality: str = typer.Option("auto", "--quality",
                                           help="accurate (upscaled photo, low threshold + background rejection), "
                                                "fast, or auto: accurate for photos, fast for video"),
               score_threshold: Optional[float] = typer.Option(None, "--score-threshold",
                                                               help="detector score threshold (default: the model's "
                                                                    "detection profile, else 0.7)"),
               detect_side: Optional[int] = typer.Option(None, "--detect-side",
                                                         help="run the detector at this longer side (e.g. 320: faster)"),
               min_face: int = typer.Option(10, "--min-face", help="faces smaller than this (px) are 'unsure'"),
               min_face_prob: Optional[float] = typer.Option(
                   None, "--min-face-prob", help="drop boxes whose face probability (1 - P(Background)) is below "
                                                 "this (default 0.5; 0.05 with --truth, as mAP is computed)"),
               truth: Optional[Path] = typer.Option(None, "--truth",
                                                    help="boxes.csv or a PASCAL VOC folder: score the boxes (mAP, "
                                                         "recall by size, confusion, report.html)"),
               subset: Optional[str] = typer.Option(None, "--subset",
                                                    help="with --truth: only these photos, e.g. crops/faces.json:"
                                                         "Validation or a text file of names"),
               bin_seconds: Optional[float] = typer.Option(None, "--bin-seconds",
                                                           help="video summary time bins (default 10 s; 1 s for "
                                                                "clips under a minute)"),
               zone: Optional[str] = typer.Option(None, "--zone", help="count only faces whose centre is inside "
                                                                       "x1,y1,x2,y2 or a polygon x1,y1;x2,y2;..."),
               track: bool = typer.Option(True, "--track/--no-track",
                                          help="also count people by IoU tracks (one person standing still once)"),
               blur: bool = typer.Option(False, "--blur", help="blur every face in the saved images and video"),
               pixelate: bool = typer.Option(False, "--pixelate", help="pixelate every face instead of blurring"),
               save_frames: bool = typer.Option(True, "--save-frames/--no-save-frames",
                                                help="--no-save-frames writes only JSON lines and the summary"),
               threads: int = typer.Option(1, "--threads")) -> None:
    """Find every face in photos, a folder, a video or a camera and label each (mask / no mask / worn
    incorrectly / unsure). Video and cameras also get summary.csv/png (counts and mask rate over time). With
    --truth, also score the boxes against annotations."""
    from .detect.privacy import storage_notice

    from .detect import run_detection

    if (input is None) == (camera is None):
        raise ConfigError("give INPUT (image, folder or video) or --camera N, not both")
    if out_dir is None:
        out_dir = _new_detections_dir()
    mode = "pixelate" if pixelate else ("blur" if blur else None)
    out.print(f"{_model_line(model)}; {storage_notice(mode, save_frames)}", soft_wrap=True)  # first line: both
    opts = dict(detector=detector, backend=backend, threads=threads, face_model=face_model,
                score_threshold=score_threshold, detect_side=detect_side, min_face=min_face, quality=quality,
                blur=mode, save_frames=save_frames, zone=zone)
    if truth is not None:
        from .detect.evaluate import detect_and_evaluate

        if input is None:
            raise ConfigError("--truth scores photos: give INPUT, not --camera")
        m = detect_and_evaluate(input, model, out_dir, truth, subset=subset,
                                min_face_prob=0.05 if min_face_prob is None else min_face_prob, **opts)
        _print_box_scores(m, Path(m["out_dir"]))
        return
    if subset is not None:
        raise ConfigError("--subset goes with --truth")
    s = run_detection(int(camera) if camera is not None else input, model, out_dir,
                      min_face_prob=0.5 if min_face_prob is None else min_face_prob, bin_seconds=bin_seconds,
                      track=track, **opts)
    _print_detections(s, Path(s["out_dir"]))


def _new_detections_dir() -> Path:
    """``detect``'s default output folder: detections-<time> here, with .2, .3, ... if that exists."""
    import time as _time

    out_dir = Path(f"detections-{_time.strftime('%Y%m%d-%H%M%S')}")
    k = 1
    while out_dir.exists():
        k += 1
        out_dir = Path(f"{out_dir.name.split('.')[0]}.{k}")
    return out_dir


def _print_box_scores(m: dict, out_dir: Path) -> None:
    """``detect --truth``'s lines: mAP, per-class AP, recall and false boxes, then where the report went."""
    per = ", ".join(f"{c} {v:.3f}" for c, v in m["ap50_per_class"].items())
    out.print(f"{m['photos']} photos, {m['faces']} annotated faces: mAP@0.5 {m['map50']:.3f} ({per}); "
              f"mAP@[.5:.95] {m['map']:.3f}; faces found {100 * m['face_recall']:.1f}%; "
              f"false boxes {m['false_boxes']}")
    out.print(f"report: {m['report']}  metrics: {Path(out_dir) / 'metrics.json'}")


def _print_detections(s: dict, out_dir: Path) -> None:
    """``detect``'s lines after ``run_detection``: faces by label and speed, skipped files, the video summary
    (mask rate, people) and where the output went."""
    labels = ", ".join(f"{k} {v}" for k, v in sorted(s["labels"].items())) or "none"
    unit = ("frame" if s["kind"] in ("video", "camera") else "image") + ("" if s["processed"] == 1 else "s")
    out.print(f"{s['processed']} {unit}: {s['faces']} faces "
              f"({labels}) at {s['fps']:.1f} FPS{' (interrupted, output finalised)' if s['interrupted'] else ''}")
    _warn_each(s["skipped"], "skipped")
    if s.get("summary"):
        t = s["summary"]
        rate = "no faces" if t["mask_rate"] is None else (
            f"mask rate {100 * t['mask_rate']:.1f}% [{100 * t['mask_rate_ci'][0]:.1f}, "
            f"{100 * t['mask_rate_ci'][1]:.1f}]")
        people = f", {t['people']['count']} people by track" if t.get("people") else ""
        out.print(f"summary: {rate} over {t['faces']} face sightings{people}; {t['csv']}, {t['png']}")
    out.print(f"output: {out_dir}  (JSON lines: {s['jsonl']})")


def _model_line(model: Optional[Path]) -> str:
    """The first output line of detect/predict/serve/demo: which classifier labels the faces."""
    if model is None:
        from .assets import card, default_classifier

        c = card()
        path = default_classifier()
        return (f"model: bundled face-mask classifier {path.name} ({c.get('architecture', '?').split(' (')[0]}, "
                f"{c.get('image_size', '?')} px, card: {path.parent / 'MODEL_CARD.md'})")
    return f"model: {model}"


@app.command("export")
def export_cmd(run: Path = typer.Argument(..., help="a run folder"),
               fmt: str = typer.Option("onnx", "--format", help="onnx"),
               out_file: Optional[Path] = typer.Option(None, "--out", help="default RUN/model.onnx")) -> None:
    """Export a trained model (dynamic batch, raw-pixel input, preprocessing in the file's metadata)."""
    from .inference.export import export_run

    out.print(f"exported: {export_run(run, out_file, format=fmt)} (checked against torch with ONNX Runtime)")


@app.command("models")
def models_cmd() -> None:
    """The registered models."""
    from .models import MODELS, model_names

    t = Table("model", "family", "default input")
    for n in model_names():
        meta = MODELS.meta(n)
        t.add_row(n, str(meta.get("family", "")), str(meta.get("image_size", "")))
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
               upscale: float = typer.Option(3.0, "--upscale", help="enlarge photos this much for the detector"),
               score_threshold: float = typer.Option(0.15, "--score-threshold",
                                                     help="detector threshold (the Background class rejects the "
                                                          "extra boxes)"),
               margin: float = typer.Option(0.2, "--margin", help="crop margin, as the detection pipeline uses"),
               size: int = typer.Option(128, "--size", help="side of the saved crops (px)"),
               ratios: str = typer.Option("70:15:15", "--split-ratios", help="train:validation:test, by photo"),
               seed: int = typer.Option(0, "--seed"),
               balance: bool = typer.Option(True, "--balance/--no-balance",
                                            help="jittered extra training crops for rare classes"),
               background: bool = typer.Option(True, "--background/--no-background",
                                               help="a Background class from the detector's false boxes"),
               label_map: Optional[str] = typer.Option(None, "--label-map", help="NAME=CLASS,... for other labels")) -> None:
    """Cut a face-crop ImageFolder (Train/Validation/Test, split by photo) with the detection pipeline's crop
    geometry, plus detect.json (detector settings and a learned box correction) for the trained model."""
    from .data.boxes import parse_label_map
    from .data.facecrops import cut_faces

    r = _parse_field("split_ratios", ratios)
    s = cut_faces(sources, out_dir, images=images, face_model=face_model, upscale=upscale,
                  score_threshold=score_threshold, margin=margin, size=size, split_ratios=r, seed=seed,
                  balance=balance, background=background, label_map=parse_label_map(label_map) or None)
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


def main(argv: Optional[list[str]] = None) -> None:
    run_app(app, argv)


if __name__ == "__main__":
    main()
