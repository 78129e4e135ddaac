"""Retrain a face project's classifier: warm-started from the current round's model, on the person's labels
plus a replay of original training crops, exported as a run folder that ``visionlab detect --model PROJECT``
and ``visionlab serve PROJECT`` use.

What trains, and why (``TRAINED``): the classifier head (Linear 1280-256-C) and the last two units of the body (the
last MBConv block and the 1x1 convolution to 1280 features), at a tenth of the head's learning rate; everything
before stays frozen and BatchNorm keeps its statistics. A user labels tens to hundreds of faces: enough to move
the decision (head) and the most task-specific features, far too few to retrain generic early features without
overfitting them to one camera, and too few per batch for meaningful BatchNorm statistics (the bundled ONNX
file has them folded into the convolutions anyway). Replayed original crops in every epoch keep the model
from forgetting what it knew (catastrophic forgetting is what a few hundred one-camera labels would cause).

The bundled classifier exists only as ONNX: its weights are read back into the visionlab EfficientNet-Lite variant
whose convolutions have its shapes (Lite0, Lite1 or Lite2; convolutions in graph order, each folded BatchNorm
becoming an identity with the convolution's bias) and the result is checked against ONNX Runtime on random crops
before training starts.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import RunConfig
from ..errors import ConfigError, DataError, ModelError
from .facemodel import NOT_A_FACE, FaceModel, read_crops
from .store import list_images

ARCH = "efficientnet_lite0"  # a face project's architecture where nothing says otherwise (the tools' start models)
FINETUNE_UNITS = 2  # the last MBConv block and the 1x1 conv to 1280 (models/backbones.py _split_lite units)
TRAINED = ("the head (Linear 1280-256-C) and the last two units of the body (the last MBConv block and the 1x1 "
           "convolution to 1280 features) at 0.1x the head's learning rate; earlier layers and BatchNorm "
           "statistics frozen: a few hundred labels move the decision and the last features, not generic ones")
ROUNDS_DIR = "rounds"
MAX_WEIGHT = 3.0  # a class's largest loss weight with --balanced


def _run_config(arch: str, image_size: int, epochs: int, lr: float, seed: int) -> RunConfig:
    return RunConfig.build(model=arch, weights="none", mode="finetune", finetune_blocks=FINETUNE_UNITS,
                           finetune_lr_scale=0.1, image_size=image_size, epochs=epochs, lr=lr, seed=seed,
                           optimizer="adam", data="active-faces")


def from_onnx(fm: FaceModel) -> tuple[torch.nn.Module, str]:
    """visionlab's EfficientNet-Lite (the variant whose convolutions fit) holding the weights of the ONNX
    classifier ``fm`` (see the module doc), and the variant's name."""
    import onnx
    from onnx import numpy_helper

    from ..models import build
    from ..models.backbones import LITE_VARIANTS

    g = onnx.load(str(fm.path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    convs = [n for n in g.node if n.op_type == "Conv"]
    shapes = [tuple(init[n.input[1]].shape) if n.input[1] in init else None for n in convs]
    for arch in LITE_VARIANTS:
        model = build(_run_config(arch, fm.image_size, 1, 1e-3, 0), len(fm.classes), fm.image_size)
        mods = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        if len(bns) == len(mods) and shapes == [tuple(m.weight.shape) for m in mods]:
            break
    else:
        raise ModelError(f"{fm.path} is not an EfficientNet-Lite ({', '.join(LITE_VARIANTS)}) exported by visionlab "
                         f"({len(convs)} convolutions); retrain from a run folder with --model RUN")
    with torch.no_grad():
        for node, conv, bn in zip(convs, mods, bns):
            w = init.get(node.input[1])
            b = init.get(node.input[2]) if len(node.input) > 2 else None
            conv.weight.copy_(torch.from_numpy(w.copy()))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b.copy()) if b is not None else torch.zeros_like(bn.bias))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)  # (x - 0) / sqrt(1 - eps + eps) * 1 + bias: the folded conv exactly
        for k, v in model.state_dict().items():
            if k in init:
                v.copy_(torch.from_numpy(init[k].copy()))
    model.eval()
    check = np.random.default_rng(0).integers(0, 256, (4, 3, fm.image_size, fm.image_size), dtype=np.uint8)
    with torch.no_grad():
        mine = torch.softmax(model(torch.from_numpy(check).float()), 1).numpy()
    diff = float(np.abs(mine - fm.first_network(check)[0]).max())  # the file read back, not an average
    if diff > 1e-3:
        raise ModelError(f"{fm.path} read back into {arch} differs from ONNX Runtime by {diff:.2g}; retrain from a "
                         f"run folder with --model RUN")
    return model, arch


def starting_model(source: Optional[str]) -> tuple[torch.nn.Module, str, FaceModel]:
    """The torch model of a round's classifier (a run folder's own weights, or the ONNX file read back), its
    architecture's name and the classifier as ONNX Runtime runs it."""
    from ..models.backbones import LITE_VARIANTS

    fm = FaceModel(source)
    if source is not None and Path(source).is_dir():
        from ..runs import load_run

        run = load_run(source)
        if run.config.model not in LITE_VARIANTS:
            raise ModelError(f"{source} is a {run.config.model!r} run; face projects retrain EfficientNet-Lite runs "
                             f"({', '.join(LITE_VARIANTS)}: the bundled classifier's family)")
        return run.model, run.config.model, fm
    return (*from_onnx(fm), fm)


def replay_crops(folder: Optional[Path], classes: list[str], n: int, size: int, seed: int
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Up to ``n`` crops from ``folder``'s class folders whose names are model classes (a split folder such as
    Train/ is looked into), spread evenly over the classes found, drawn with ``seed``."""
    empty = (np.zeros((0, 3, size, size), np.uint8), np.zeros(0, np.int64), {})
    if folder is None or n <= 0:
        return empty
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--replay {folder} does not exist; give a folder of class folders of face crops "
                        f"(e.g. ../shared/data/facemask/Train)")
    subs = {d.name: d for d in folder.iterdir() if d.is_dir()}
    if "Train" in subs and not set(subs) & set(classes):
        subs = {d.name: d for d in subs["Train"].iterdir() if d.is_dir()}
    found = {c: list_images(subs[c]) for c in classes if c in subs}
    found = {c: v for c, v in found.items() if v}
    if not found:
        raise DataError(f"--replay {folder} has no class folder named like the model's classes "
                        f"({', '.join(classes)})")
    rng = np.random.default_rng(seed)
    per = max(1, n // len(found))
    paths, ys = [], []
    for c, files in sorted(found.items()):
        pick = rng.choice(len(files), min(per, len(files)), replace=False)
        paths += [files[i] for i in sorted(pick)]
        ys += [classes.index(c)] * len(pick)
    return read_crops(paths, size), np.asarray(ys, np.int64), {c: ys.count(classes.index(c)) for c in found}


def train(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int,
          batch_size: int = 32, teacher: Optional[np.ndarray] = None, distill: float = 0.0,
          balanced: bool = False) -> list[dict]:
    """Fine-tune ``model`` in place (its own param groups: frozen parts excluded); mirrored crops as
    augmentation. ``teacher``: the starting model's probabilities of ``x``; ``distill`` > 0 adds that weight
    times KL(teacher || model) to the loss (learning without forgetting, Li & Hoiem 2016). ``balanced``: class
    weights by inverse frequency. Returns the loss per epoch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.net.param_groups(lr), lr=lr)
    weight = None
    if balanced:  # square root of inverse frequency, at most MAX_WEIGHT: 2 labels of a rare class must not
        # outweigh everything (plain inverse frequency gave them 15x and collapsed WithMask recall by round 3)
        counts = np.bincount(y, minlength=int(model.net.head[-1].out_features)).astype(np.float32)
        inv = np.where(counts > 0, len(y) / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
        weight = torch.from_numpy(np.minimum(np.sqrt(inv), MAX_WEIGHT).astype(np.float32))
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1)  # as the bundled model was trained
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    tt = torch.from_numpy(teacher.astype(np.float32)) if teacher is not None and distill > 0 else None
    history = []
    model.train()
    for ep in range(epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = torch.from_numpy(order[i:i + batch_size])
            xb = xt[idx].float()
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            xb[flip] = xb[flip].flip(-1)
            logits = model(xb)
            loss = loss_fn(logits, yt[idx])
            if tt is not None:
                loss = loss + distill * torch.nn.functional.kl_div(torch.log_softmax(logits, 1), tt[idx],
                                                                   reduction="batchmean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        history.append({"epoch": ep + 1, "loss": round(total / max(len(x), 1), 5)})
    model.eval()
    return history


def write_run(folder: Path, model: torch.nn.Module, fm: FaceModel, cfg: RunConfig, metrics: dict,
              history: list[dict]) -> Path:
    """A run folder (config.yaml, model.json, model.safetensors, detect.json, metrics.json, model.onnx)."""
    from ..inference.export import export_run
    from ..io import write_json
    from ..runs import RunFolder

    run = RunFolder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    run.write_config(cfg)
    run.write_info(cfg.model, fm.classes, fm.image_size)
    run.save_weights(model.state_dict())
    if fm.profile is not None:
        write_json(run.profile, fm.profile.to_dict())
    run.write_history(history)
    run.write_metrics(metrics)
    export_run(folder, quiet=True)
    return folder


def training_set(proj, faces: list[dict], classes: list[str]) -> tuple[list[Path], np.ndarray, dict[str, int]]:
    """The person's live labels of faces not held back, as (crop files, model-class indices): NotAFace is the
    model's background class."""
    from ..detect.pipeline import is_background

    bg = next((i for i, c in enumerate(classes) if is_background(c)), None)
    by_hash = {f["sha256"]: f for f in faces}
    paths, ys, counts = [], [], {}
    for lab in proj.store.labels(("human", "oracle")):
        f = by_hash.get(lab.sha256)
        if f is None or f.get("holdout"):
            continue
        if lab.label == NOT_A_FACE:
            if bg is None:
                continue
            y = bg
        elif lab.label in classes:
            y = classes.index(lab.label)
        else:
            continue
        paths.append(proj.pool / f["path"])
        ys.append(y)
        counts[lab.label] = counts.get(lab.label, 0) + 1
    return paths, np.asarray(ys, np.int64), counts


def retrain_faces(proj, epochs: int = 4, lr: float = 1e-4, replay: Optional[str | Path] = None,
                  replay_per_label: float = 2.0, max_replay: int = 600, seed: Optional[int] = None,
                  quiet: bool = True, distill: float = 0.0, balanced: bool = True) -> dict:
    """One round (the caller holds the project lock and records it). Returns the round's record."""
    from .faceeval import evaluate_round
    from .facepool import load_faces
    from .facequery import model_source

    t0 = time.time()
    if epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, not {epochs}")
    if distill < 0 or lr <= 0:
        raise ConfigError(f"--distill must be 0 or more and --lr above 0 (got {distill} and {lr})")
    faces = load_faces(proj.path)
    source = model_source(proj)
    model, arch, fm = starting_model(source)
    paths, y, counts = training_set(proj, faces, fm.classes)
    if not len(y):
        raise DataError(f"nothing to train on: label some faces first (`visionlab active label {proj.path}`); "
                        f"held-back faces are only evaluated on")
    s = proj.state.get("seed", 0) if seed is None else seed
    rnd = proj.round + 1
    replay = replay if replay is not None else proj.state.get("replay")
    n_replay = min(max_replay, int(round(replay_per_label * len(y))))
    rx, ry, rcounts = replay_crops(Path(replay) if replay else None, fm.classes, n_replay, fm.image_size, s + rnd)
    x = np.concatenate([read_crops(paths, fm.image_size), rx])
    yy = np.concatenate([y, ry])
    if not quiet:
        print(f"round {rnd}: fine-tuning {source or 'the bundled classifier'} on {len(y)} labelled faces + "
              f"{len(ry)} replayed crops ({', '.join(f'{k} {v}' for k, v in rcounts.items()) or 'no --replay'}) "
              f"for {epochs} epochs; training {TRAINED}", file=sys.stderr, flush=True)
    cfg = _run_config(arch, fm.image_size, epochs, lr, s * 1000 + rnd)
    with torch.random.fork_rng(devices=[]):
        teacher = fm(x)[0] if distill > 0 else None
        history = train(model, x, yy, epochs, lr, s * 1000 + rnd, teacher=teacher, distill=distill,
                        balanced=balanced)
    folder = proj.path / ROUNDS_DIR / f"round-{rnd:03d}"
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().numpy().tobytes())
    version = f"r{rnd}-{h.hexdigest()[:8]}"
    evaluation = evaluate_round(proj, faces, model, fm, rnd)
    metrics = {"round": rnd, "model_version": version, "labels": counts, "replay": rcounts,
               "trained": TRAINED, "evaluation": evaluation}
    write_run(folder, model, fm, cfg, metrics, history)
    rel = folder.relative_to(proj.path).as_posix()
    return {"round": rnd, "model_version": version, "n_train": int(len(y)), "n_replay": int(len(ry)),
            "labels": counts, "replay": rcounts, "replay_dir": str(replay) if replay else None,
            "epochs": epochs, "lr": lr, "balanced": balanced, "distill": distill, "trained": TRAINED, "warm_start": proj.model_version, "run": rel,
            "history": history, "evaluation": evaluation, "seconds": round(time.time() - t0, 3),
            "metrics": {"loss": history[-1]["loss"], **_summary(evaluation)}}


def _summary(evaluation: dict) -> dict:
    """The few numbers `status` shows: held-back accuracy of this round and of the one before."""
    out = {}
    if evaluation.get("n"):
        out["eval_acc"] = evaluation["accuracy"]
        out["eval_n"] = evaluation["n"]
    return out
