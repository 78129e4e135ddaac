"""Queries over a face pool: which faces a person should label next.

Every strategy of ``strategies.STRATEGIES`` runs on the faces' probabilities over the project's classes (the
classifier's face classes, then NotAFace = its Background) and on the classifier's embeddings; ``face_doubt``
asks about boxes whose face probability is nearest the threshold the pipeline drops boxes at.

A batch is then made diverse: the strategy ranks ``OVERSAMPLE * k`` faces, and they are taken in that order
skipping a face whose video track already has one in the batch, or whose embedding is within ``min_distance``
(cosine) of one already taken (the same face in the next frame, a burst of near-identical photos). Only if the
batch would be short are skipped faces taken after all (track duplicates first, then near-copies).

Held-back faces (``facepool.holdout_groups``) are never queried this way; ``held_out=True`` queues them
instead, in a seeded random order, for the person to label as the evaluation set.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import ConfigError
from .facemodel import FaceModel, read_crops
from .facepool import load_faces, load_scores, save_scores
from .store import now_iso
from .strategies import STRATEGIES, select

OVERSAMPLE = 5
MIN_DISTANCE = 0.15  # cosine distance; the same face shifted 2 px is ~0.1 away, two people >= ~0.2 (measured)
DEFAULT_FACE_STRATEGY = "hybrid"


def _unit(e: np.ndarray) -> np.ndarray:
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def diversify(ranked: np.ndarray, tracks: list[str], emb: np.ndarray, k: int,
              min_distance: float = MIN_DISTANCE) -> np.ndarray:
    """At most ``k`` of ``ranked`` (indices, best first): one per track and none within ``min_distance`` of one
    already taken, unless that leaves the batch short (then track duplicates, then near-copies, in rank order)."""
    u = _unit(emb.astype(np.float64))
    taken: list[int] = []

    def far(i: int) -> bool:
        return not taken or float((1.0 - u[taken] @ u[i]).min()) >= min_distance

    for pass_ in range(3):
        for i in ranked:
            i = int(i)
            if len(taken) >= k:
                break
            if i in taken:
                continue
            seen_track = any(tracks[j] == tracks[i] for j in taken)
            if pass_ == 0 and (seen_track or not far(i)):
                continue
            if pass_ == 1 and not far(i):
                continue
            taken.append(i)
    return np.asarray(taken, np.int64)


def model_source(proj) -> Optional[str]:
    """The classifier of the project's current round: round 0 is the starting model (None: bundled)."""
    run = proj.model_run()
    if run:
        return str(proj.path / run)
    return proj.state.get("model")


def scores(proj, faces: list[dict]) -> tuple[np.ndarray, np.ndarray, FaceModel | None]:
    """Probabilities over the project's classes and embeddings of every face under the current model (cached in
    scores/<model version>.npz)."""
    version = proj.model_version or "r0"
    got = load_scores(proj.path, version)
    fm = None
    if got is None or len(got[0]) != len(faces):
        fm = FaceModel(model_source(proj))
        crops = read_crops([proj.pool / f["path"] for f in faces], fm.image_size)
        p, e = fm(crops)
        save_scores(proj.path, version, p, e, fm.classes)
        got = (p, e, fm.classes)
    probs, emb, classes = got
    return to_pool_probs(probs, classes, proj.classes), emb, fm


def to_pool_probs(probs: np.ndarray, classes: list[str], pool_classes: list[str]) -> np.ndarray:
    """Columns reordered to the project's classes; the classifier's background class becomes the last one."""
    from ..detect.pipeline import is_background

    cols = []
    for c in pool_classes[:-1]:
        cols.append(probs[:, classes.index(c)] if c in classes else np.zeros(len(probs), np.float32))
    bg = [i for i, c in enumerate(classes) if is_background(c)]
    cols.append(probs[:, bg[0]] if bg else np.zeros(len(probs), np.float32))
    return np.stack(cols, 1)


def face_query(proj, k: int, strategy: Optional[str], seed: Optional[int], held_out: bool = False,
               min_distance: float = MIN_DISTANCE) -> dict:
    """The queue for a face project (written by the caller): ``k`` faces by ``strategy`` with diversity, or
    ``k`` held-back faces at random."""
    name = strategy or proj.state.get("strategy") or DEFAULT_FACE_STRATEGY
    STRATEGIES.get(name)
    if "mc" in STRATEGIES.meta(name).get("needs", ()):
        raise ConfigError(f"strategy {name!r} needs MC-dropout samples, which a face pool's classifier does not "
                          f"give; use hybrid, margin, entropy, least_confidence, face_doubt, kcenter or random")
    faces = load_faces(proj.path)
    probs, emb, _ = scores(proj, faces)
    live = proj.store.current()
    seen: set[str] = set()  # identical crops (a photo given twice) are one image to the store: asked once
    cand = [i for i, f in enumerate(faces) if f["sha256"] not in live and bool(f.get("holdout")) == held_out
            and not (f["sha256"] in seen or seen.add(f["sha256"]))]
    s = proj.state.get("seed", 0) if seed is None else seed
    rng = np.random.default_rng([s, max(proj.round, 0) + 1, len(proj.store.records()), int(held_out)])
    if not cand:
        chosen = np.zeros(0, np.int64)
    elif held_out:
        chosen = rng.permutation(len(cand))[:k]
        name = "held_out"
    else:
        labelled = [i for i, f in enumerate(faces) if f["sha256"] in live and not f.get("holdout")]
        lab_x = emb[labelled] if labelled else None
        ranked = select(name, probs[cand], emb[cand], min(len(cand), OVERSAMPLE * k), rng, labelled_embeddings=lab_x)
        chosen = diversify(ranked, [faces[i]["track"] for i in cand], emb[cand], k, min_distance)
    items = []
    for j in chosen:
        i = cand[int(j)]
        f, p = faces[i], probs[i]
        scale = float(f.get("frame_scale", 1.0))
        items.append({
            "path": f["path"], "sha256": f["sha256"], "face_id": f["id"],
            "prediction": proj.classes[int(p.argmax())], "confidence": round(float(p.max()), 4),
            "probs": {c: round(float(v), 4) for c, v in zip(proj.classes, p)},
            "face_prob": round(float(1.0 - p[-1]), 4),
            "context": {"frame": f["frame_image"], "box": [round(v * scale) for v in f["box"]],
                        "source": Path(f["source"]).name, "time_s": f.get("time_s"), "track": f["track"]}})
    out: dict[str, Any] = {"created": now_iso(), "strategy": name, "k": k, "round": proj.round,
                           "model_version": proj.model_version, "pool_unlabelled": len(cand), "faces": True,
                           "held_out": held_out, "items": items}
    return out
