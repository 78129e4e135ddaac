"""The active-learning loop as Python functions named like the commands:
``init -> (query -> label -> retrain)* -> status / export``.

Every step is resumable: a killed ``label`` loses at most the key being pressed (each label is fsync'd to
labels.jsonl before the next image shows), a killed ``retrain`` or ``query`` leaves the previous round and
queue in place (their files are replaced atomically, and a round exists only once rounds.jsonl says so).
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..errors import ConfigError, DataError
from . import head as H
from .features import DEFAULT_BACKBONE, default_spec
from .session import (QUEUE, ROUNDS, Item, Project, check_free, class_folders, create, link_model, load_queue,
                      split_folders)
from .store import ChangedImageError, append_jsonl, export_files, now_iso, scan_jsonl, sha256_file, write_atomic
from .strategies import STRATEGIES, select

DEFAULT_STRATEGY = "least_confidence"


# --- init -----------------------------------------------------------------------------------------------
def _featurizer_spec(model: Optional[str]) -> tuple[dict, Optional[str]]:
    """``--model``: a run folder, a RunConfig YAML, a backbone name, 'pixels', or nothing (the default)."""
    if model is None:
        return default_spec()
    if model == "pixels":
        return {"kind": "pixels", "image_size": 32}, None
    p = Path(model)
    if p.is_dir():
        return {"kind": "run", "path": str(p.resolve())}, None
    if p.suffix in (".yaml", ".yml"):
        from ..config import RunConfig
        cfg = RunConfig.load(p)
        return {"kind": "backbone", "model": cfg.model, "weights": cfg.weights, "image_size": cfg.image_size}, None
    from ..models import model_names
    if model in model_names():
        return {"kind": "backbone", "model": model, "weights": "imagenet"}, None
    raise ConfigError(f"--model {model!r} is neither a run folder, a config YAML nor a model name; pass a frozen-"
                      f"backbone run, a config, a backbone such as {DEFAULT_BACKBONE}, or 'pixels'")


def init(pool: Optional[str | Path] = None, out: Optional[str | Path] = None, labelled: Optional[str | Path] = None,
         model: Optional[str] = None, classes: Optional[list[str]] = None, eval_dir: Optional[str | Path] = None,
         strategy: Optional[str] = None, seed: int = 0, cache_dir: Optional[str] = None, train: bool = True,
         quiet: bool = True, photos: Optional[list[str | Path]] = None, per_second: float = 2.0,
         min_change: float = 2.0, min_face_prob: float = 0.2, holdout: float = 0.2,
         project: Optional[str | Path] = None) -> dict:
    """Create a project folder (``out``, or ``project``) for ``pool`` (unlabelled images) next to an optional
    ``labelled`` class-folder set (which may hold train/val/test splits: train is used for training, val or test
    for metrics). Trains round 0 when there are labelled images. Returns the status.

    With ``photos`` (photos, videos or folders of them) instead of ``pool``, the project is a face pool
    (facepool.py): every face the detection pipeline finds, ``per_second`` frames a second of video, with the
    classifier ``model`` (a run folder or .onnx file; default the bundled one) as round 0."""
    if out is not None and project is not None and Path(out) != Path(project):
        raise ConfigError(f"give the project folder once: PROJECT ({project}) or --out ({out}), not both")
    out = out if out is not None else project
    if out is None:
        raise ConfigError("name the new project folder: `visionlab active init PROJECT ...` (or --out PROJECT)")
    if photos:
        if pool is not None or labelled is not None or classes:
            raise ConfigError("--photos makes a face pool: it takes no --pool, --labelled or --classes")
        return init_faces(out, photos, model, strategy, seed, per_second, min_change, min_face_prob, holdout, quiet)
    if pool is None:
        raise ConfigError("give the images to label: --pool DIR (a folder of images) or --photos DIR|VIDEO (faces)")
    strategy = strategy or DEFAULT_STRATEGY
    pool_p, out_p = Path(pool).resolve(), Path(out).resolve()
    if not pool_p.is_dir():
        raise DataError(f"pool folder {pool_p} does not exist")
    lab_p = Path(labelled).resolve() if labelled else None
    ev_p = Path(eval_dir).resolve() if eval_dir else None
    if lab_p is not None:
        if not lab_p.is_dir():
            raise DataError(f"labelled folder {lab_p} does not exist")
        splits = split_folders(lab_p)
        lab_p = splits["train"]
        if ev_p is None:
            ev_p = splits.get("val") or splits.get("test")
    if ev_p is not None and not ev_p.is_dir():
        raise DataError(f"evaluation folder {ev_p} does not exist")
    check_free(out_p, pool_p, lab_p, ev_p)
    STRATEGIES.get(strategy)
    found = [d.name for d in class_folders(lab_p)] if lab_p else []
    if classes and found and sorted(classes) != found:
        raise ConfigError(f"--classes {','.join(classes)} differ from the labelled folder's classes {','.join(found)}")
    names = sorted(classes) if classes else found
    from .store import check_class_names
    check_class_names(names)
    if len(names) < 2:
        raise ConfigError("a project needs at least two classes: pass --labelled DIR with class folders, or "
                          "--classes a,b")
    spec, note = _featurizer_spec(model)
    if spec["kind"] == "run":
        from ..runs import load_run
        run_classes = load_run(spec["path"]).classes
        if run_classes != names:
            raise ConfigError(f"run {spec['path']} was trained on classes {run_classes}, the project has {names}")
    proj = create(out_p, {"pool": str(pool_p), "labelled": str(lab_p) if lab_p else None,
                          "eval": str(ev_p) if ev_p else None, "classes": names, "featurizer": spec,
                          "strategy": strategy, "seed": seed, "cache_dir": cache_dir, "created": now_iso(),
                          "head": vars(H.HeadParams())})
    if note:
        proj.state["note"] = note
        proj.save_state()
    if train and (proj.labelled_items() or spec["kind"] == "run"):
        retrain(proj.path, quiet=quiet)
    return status(proj.path)


def init_faces(out: str | Path, photos: list[str | Path], model: Optional[str] = None, strategy: Optional[str] = None,
               seed: int = 0, per_second: float = 2.0, min_change: float = 2.0, min_face_prob: float = 0.2,
               holdout: float = 0.2, quiet: bool = True) -> dict:
    """A face-pool project: faces/, frames/ and faces.jsonl written first, state.json last (the commit point:
    a killed init leaves a folder that is not a project, and a new init must use another folder)."""
    from ..outdir import make_folder
    from .facemodel import FaceModel
    from .facepool import PoolSettings, build_pool
    from .facequery import DEFAULT_FACE_STRATEGY

    out_p = Path(out).resolve()
    if per_second <= 0:
        raise ConfigError(f"--per-second must be above 0 (frames sampled per second of video), not {per_second}")
    if not 0 <= holdout < 1:
        raise ConfigError(f"--holdout must be in [0, 1) (the share of photos held back for evaluation), not {holdout}")
    check_free(out_p, *[Path(p).resolve() for p in photos])
    strategy = strategy or DEFAULT_FACE_STRATEGY
    STRATEGIES.get(strategy)
    if model is not None:
        model = str(Path(model).resolve())
    classes = FaceModel(model).pool_classes  # a bad --model fails here, before anything is written
    make_folder(out_p, "--out")
    st = PoolSettings(per_second, min_change, min_face_prob, holdout, seed=seed)
    summary = build_pool(out_p, photos, model, st, quiet)
    if summary["faces"] == 0:
        print(f"warning: no faces found in {', '.join(str(p) for p in photos)}", file=sys.stderr, flush=True)
    proj = create(out_p, {"kind": "faces", "pool": "faces", "labelled": None, "eval": None, "classes": classes,
                          "featurizer": {"kind": "faces"}, "model": model, "photos": [str(Path(p).resolve())
                                                                                      for p in photos],
                          "pool_settings": vars(st), "strategy": strategy, "seed": seed, "created": now_iso(),
                          "pool_summary": summary})
    append_jsonl(proj.path / ROUNDS, {"round": 0, "model_version": "r0", "time": now_iso(), "n_train": 0,
                                      "model": model or "bundled", "metrics": {}})
    proj.sync_rounds()
    return status(proj.path)


# --- query ----------------------------------------------------------------------------------------------
def candidates(proj: Project) -> list[Item]:
    """Pool images that have no label anywhere (store or labelled folder), one per distinct content."""
    taken = set(proj.store.current()) | {it.sha256 for it in proj.labelled_items()}
    out, seen = [], set()
    for it in proj.pool_items():
        if it.sha256 not in taken and it.sha256 not in seen:
            seen.add(it.sha256)
            out.append(it)
    return out


def query(project: str | Path, k: int = 20, strategy: Optional[str] = None, seed: Optional[int] = None,
          pseudo_threshold: Optional[float] = None, mc_samples: int = 20, held_out: bool = False) -> dict:
    """Score the unlabelled pool with the current model and write the ``k`` images to label next to
    queue.json. ``pseudo_threshold`` (opt-in) also labels every other image the model predicts with at least
    that confidence, marked ``pseudo`` in the store."""
    if k < 1:
        raise ConfigError("--k must be at least 1")
    if pseudo_threshold is not None and not 0.5 <= pseudo_threshold < 1.0:
        raise ConfigError("--pseudo-threshold must be in [0.5, 1), e.g. 0.95")
    proj = Project(project)
    if proj.is_faces:
        from .facequery import face_query

        if pseudo_threshold is not None:
            raise ConfigError("--pseudo-threshold is for image pools; a face project labels only what a person saw")

        with proj.lock():
            proj = Project(project)
            queue = face_query(proj, k, strategy, seed, held_out)
            write_atomic(proj.path / QUEUE, json.dumps(queue, indent=2) + "\n")
        return dict(queue, problems=proj.store.problems)
    if held_out:
        raise ConfigError("--held-out queues the held-back faces of a face project (`init --photos`); this project "
                          "has an --eval folder instead")
    name = strategy or proj.state.get("strategy", DEFAULT_STRATEGY)
    needs = STRATEGIES.meta(name).get("needs", ())
    if STRATEGIES.meta(name).get("faces_only"):
        raise ConfigError(f"strategy {name!r} is for face pools (`visionlab active init --photos`)")
    with proj.lock():
        proj = Project(project)  # re-read under the lock
        state = proj.head_state()
        if state is None and (set(needs) & {"probs", "mc"} or pseudo_threshold is not None):
            raise ConfigError(f"strategy {name!r} needs a model: run `visionlab active retrain {proj.path}` first "
                              f"(it needs labelled images), or query with --strategy random or kcenter")
        cands = candidates(proj)
        x, ok = proj.features(cands)
        cands = [c for c, good in zip(cands, ok) if good]
        x = x[ok] if len(cands) else x
        probs = H.predict_proba(state, x) if state is not None and len(cands) else None
        dropout = proj.state.get("head", {}).get("dropout", H.HeadParams.dropout)
        mc = H.mc_proba(state, x, mc_samples, proj.round, dropout) if "mc" in needs and len(cands) else None
        lab_x = None
        if "embeddings" in needs:
            lab = proj.training_set()
            lx, lok = proj.features(lab)
            lab_x = lx[lok] if len(lab) else None
        s = proj.state.get("seed", 0) if seed is None else seed
        rng = np.random.default_rng([s, proj.round + 1, len(proj.store.records())])
        idx = select(name, probs, x, k, rng, labelled_embeddings=lab_x, mc_probs=mc) if cands else np.zeros(0, int)
        items = []
        for i in idx:
            c = cands[i]
            row: dict[str, Any] = {"path": c.path.relative_to(proj.pool).as_posix(), "sha256": c.sha256}
            if probs is not None:
                row.update(prediction=proj.classes[int(probs[i].argmax())], confidence=round(float(probs[i].max()), 4),
                           probs={cl: round(float(v), 4) for cl, v in zip(proj.classes, probs[i])})
            items.append(row)
        queue = {"created": now_iso(), "strategy": name, "k": k, "round": proj.round,
                 "model_version": proj.model_version, "pool_unlabelled": len(cands), "items": items}
        write_atomic(proj.path / QUEUE, json.dumps(queue, indent=2) + "\n")
        pseudo = 0
        if pseudo_threshold is not None and probs is not None:
            chosen = set(int(i) for i in idx)
            for i in np.flatnonzero(probs.max(1) >= pseudo_threshold):
                if int(i) not in chosen:
                    try:
                        proj.store.add(cands[i].path, proj.classes[int(probs[i].argmax())], "pseudo",
                                       proj.model_version, sha256=cands[i].sha256)
                    except (ChangedImageError, DataError) as e:  # changed or gone since it was scored
                        proj.skipped.append((str(cands[i].path), str(e)))
                        continue
                    pseudo += 1
        queue["pseudo_labelled"] = pseudo
    return dict(queue, problems=proj.store.problems + [f"{p}: {r}" for p, r in proj.skipped])


# --- labels ---------------------------------------------------------------------------------------------
def add_label(project: str | Path, image: str | Path, label: str, source: str = "human"):
    """Label one pool image (a path inside the pool, or relative to it) without the terminal UI."""
    proj = Project(project)
    return proj.store.add(image, label, source, proj.model_version)


def undo(project: str | Path, entry_id: Optional[int] = None):
    """Cancel a label (default: the last one); the image can then be labelled again."""
    return Project(project).store.undo(entry_id)


def label(project: str | Path, preview: bool = True, width: int = 32, keys=None, console=None) -> dict:
    """The terminal labelling UI over the queue (see ui.py). Returns counts of what was done."""
    from .ui import run_labeller
    return run_labeller(Project(project), preview=preview, width=width, keys=keys, console=console)


# --- retrain --------------------------------------------------------------------------------------------
def _version(round_: int, state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].numpy().tobytes())
    return f"r{round_}-{h.hexdigest()[:8]}"


def _save_model(path: Path, state: dict, meta: dict) -> None:
    from safetensors.torch import save

    from ..io import atomic_write_bytes

    data = save({k: v.contiguous() for k, v in state.items()}, metadata={k: json.dumps(v) for k, v in meta.items()})
    atomic_write_bytes(path, data)


def retrain(project: str | Path, epochs: Optional[int] = None, include_pseudo: bool = True, seed: Optional[int] = None,
            warm_start: bool = True, quiet: bool = True, replay: Optional[str | Path] = None,
            lr: Optional[float] = None, balanced: bool = True, distill: float = 0.0) -> dict:
    """Train the next round's head on the labelled folder plus the store's labels, starting from the previous
    round's weights; records the round (model version, label counts, metrics) in rounds.jsonl.

    A face project (``init --photos``) fine-tunes its classifier instead (faceretrain.py): warm-started from the
    current round, on the labels plus ``replay`` crops (class folders, e.g. the original training crops), and
    exported as the run PROJECT/model that `visionlab detect --model PROJECT` uses."""
    t0 = time.time()
    proj = Project(project)
    if proj.is_faces:
        return _retrain_faces(project, epochs, seed, warm_start, quiet, replay, lr, balanced, distill)
    with proj.lock():
        proj = Project(project)
        train_items = proj.training_set(include_pseudo)
        x, ok = proj.features(train_items)
        train_items = [it for it, good in zip(train_items, ok) if good]
        x = x[ok] if len(train_items) else x
        y = np.array([it.label for it in train_items], np.int64)
        present = sorted(set(y.tolist()))
        init_state = proj.head_state() if warm_start else None
        if init_state is None and warm_start and proj.featurizer.head_state is not None:
            init_state = proj.featurizer.head_state  # round 0 of a project started from a trained run
        if len(train_items) == 0 and init_state is None:
            raise DataError(f"nothing to train on: label some images first (`visionlab active label {proj.path}`) "
                            f"or give the project a --labelled folder")
        params = H.HeadParams(**{**proj.state.get("head", {}), **({"epochs": epochs} if epochs else {})})
        rnd = proj.round + 1
        s = proj.state.get("seed", 0) if seed is None else seed
        if not quiet:
            print(f"training round {rnd} on {len(train_items)} images"
                  f"{' (warm start from ' + str(proj.model_version) + ')' if init_state is not None else ''}",
                  file=sys.stderr, flush=True)
        if len(train_items):
            state = H.train_head(x, y, len(proj.classes), params, seed=s * 1000 + rnd, init=init_state)
        else:
            state = {k: v.clone() for k, v in init_state.items()}
        metrics: dict[str, Any] = {}
        if len(train_items):
            metrics["train_acc"] = float((H.predict_proba(state, x).argmax(1) == y).mean())
        ev = proj.eval_items()
        if ev:
            ex, eok = proj.features(ev)
            ey = np.array([it.label for it in ev])[eok]
            if eok.any():
                metrics["eval_acc"] = float((H.predict_proba(state, ex[eok]).argmax(1) == ey).mean())
                metrics["eval_n"] = int(eok.sum())
        version = _version(rnd, state)
        counts = proj.store.counts()
        n_folder = len(proj.labelled_items())
        _save_model(proj.model_file(rnd), state, {"classes": proj.classes, "featurizer": proj.state["featurizer"],
                                                  "model_version": version, "round": rnd})
        record = {"round": rnd, "model_version": version, "time": now_iso(), "seconds": round(time.time() - t0, 3),
                  "warm_start": proj.model_version if warm_start else None, "n_train": len(train_items),
                  "labelled_folder": n_folder, "store": counts, "include_pseudo": include_pseudo,
                  "classes_present": [proj.classes[i] for i in present], "epochs": params.epochs,
                  "metrics": metrics, "model_file": proj.model_file(rnd).relative_to(proj.path).as_posix()}
        append_jsonl(proj.path / ROUNDS, record)  # the commit point of a round
        proj.state.update(round=rnd, model_version=version)
        proj.save_state()
    return dict(record, problems=proj.store.problems + [f"{p}: {r}" for p, r in proj.skipped])


def _retrain_faces(project, epochs, seed, warm_start, quiet, replay, lr, balanced, distill) -> dict:
    from .faceretrain import retrain_faces

    if not warm_start:
        raise ConfigError("a face project always starts from its current classifier (--cold-start would throw away "
                          "what the bundled model knows); start a new project with --model to change it")
    proj = Project(project)
    with proj.lock():
        proj = Project(project)
        rec = retrain_faces(proj, epochs or 4, lr or 1e-4, replay, seed=seed, quiet=quiet, distill=distill,
                            balanced=balanced)
        rec["time"] = now_iso()
        append_jsonl(proj.path / ROUNDS, rec)  # the commit point; PROJECT/model follows it
        proj.sync_rounds()
        link_model(proj.path, rec["run"])
    return dict(rec, problems=proj.store.problems)


# --- status / export ------------------------------------------------------------------------------------
def status(project: str | Path) -> dict:
    """Where the project stands: labels by source, pool left, queue progress, rounds and their metrics."""
    proj = Project(project)
    cur = proj.store.current()
    pool = proj.pool_items()
    folder = proj.labelled_items()
    taken = set(cur) | {it.sha256 for it in folder}
    problems = list(proj.store.problems)
    queue = {}
    if (proj.path / QUEUE).is_file():
        try:
            q = load_queue(proj)
        except DataError as e:
            problems.append(str(e))
        else:
            done = sum(1 for it in q["items"] if it["sha256"] in cur)
            queue = {"items": len(q["items"]), "labelled": done, "left": len(q["items"]) - done,
                     "strategy": q.get("strategy"), "model_version": q.get("model_version")}
    per_class = {c: 0 for c in proj.classes}
    for lab in cur.values():
        per_class[lab.label] = per_class.get(lab.label, 0) + 1
    problems += [f"{p}: {r}" for p, r in proj.skipped]
    faces = None
    if proj.is_faces:
        from .facepool import load_faces

        fl = load_faces(proj.path)
        held = [f for f in fl if f.get("holdout")]
        faces = {"faces": len(fl), "held_out": len(held), "held_out_labelled": sum(f["sha256"] in cur for f in held),
                 "sources": len({f["source"] for f in fl}), "model": str(proj.path / "model")
                 if proj.model_run() else (proj.state.get("model") or "bundled")}
    return {"project": str(proj.path), "pool": str(proj.pool), "pool_images": len(pool), "face_pool": faces,
            "pool_unlabelled": len({it.sha256 for it in pool} - taken), "labelled_folder": len(folder),
            "store": proj.store.counts(), "store_per_class": per_class, "classes": proj.classes,
            "round": proj.round, "model_version": proj.model_version, "queue": queue,
            "featurizer": proj.state["featurizer"], "note": proj.state.get("note"),
            "rounds": [{"round": r["round"], "model_version": r.get("model_version"), "n_train": r.get("n_train"),
                        **(r.get("metrics") if isinstance(r.get("metrics"), dict) else {})} for r in proj.rounds()],
            "problems": problems}


def export(project: str | Path, dest: str | Path, mode: str = "copy", include_labelled: bool = True,
           include_pseudo: bool = False) -> dict[str, int]:
    """A class-folder copy (or symlinks) of everything labelled: the labelled folder's images (unless
    ``include_labelled`` is off) and the store's labels. Originals are only read."""
    proj = Project(project)
    items = []
    if include_labelled:
        items += [(it.path, proj.classes[it.label], it.sha256) for it in proj.labelled_items()]
    items += [(it.path, proj.classes[it.label], it.sha256) for it in proj.store_items(include_pseudo)]
    forbid = [proj.pool, proj.path] + ([proj.labelled] if proj.labelled else [])
    return export_files(items, dest, mode, forbid=forbid)


def check_integrity(project: str | Path) -> dict:
    """Facts a test (or a worried user) can assert on: duplicate live labels, labels whose image is gone or
    changed, and unreadable lines in the logs."""
    proj = Project(project)
    live = proj.store.current()
    problems = []
    for lab in live.values():
        p = proj.pool / lab.path
        if not p.is_file():
            problems.append(f"{lab.path}: labelled but missing")
        elif sha256_file(p) != lab.sha256:
            problems.append(f"{lab.path}: content changed since it was labelled")
    torn = sum(1 for r in scan_jsonl(proj.path / "labels.jsonl").records if "_torn" in r)
    return {"live": len(live), "problems": problems, "torn_lines": torn, "round": proj.round,
            "store_problems": list(proj.store.problems)}


__all__ = ["init", "query", "label", "add_label", "undo", "retrain", "status", "export", "check_integrity",
           "load_queue"]
