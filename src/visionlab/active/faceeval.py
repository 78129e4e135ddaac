"""Each round's evaluation on the held-back faces a person labelled (``query --held-out``): per-class recall
with Wilson 95% intervals, for the new model and, on the same faces, the model it was warm-started from.

The held-back faces are chosen by photo (facepool.holdout_groups), never queried and never trained on, so the
figures say how the model does on photos it has not seen from this camera. Predictions are over the project's
classes: the classifier's face classes, and NotAFace where its Background class wins.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..evaluation.slices import wilson
from .facemodel import FaceModel, read_crops


def _recall(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, dict]:
    out = {}
    for i, c in enumerate(classes):
        n = int((y == i).sum())
        if n:
            k = int(((y == i) & (pred == i)).sum())
            r, lo, hi = wilson(k, n)
            out[c] = {"recall": round(r, 4), "low": round(lo, 4), "high": round(hi, 4), "k": k, "n": n}
    return out


def held_out_labels(proj, faces: list[dict]) -> tuple[list[dict], np.ndarray]:
    """The held-back faces with a live label, and their labels as indices into the project's classes."""
    live = proj.store.current()
    rows = [(f, proj.classes.index(live[f["sha256"]].label)) for f in faces
            if f.get("holdout") and f["sha256"] in live and live[f["sha256"]].source in ("human", "oracle")]
    return [f for f, _ in rows], np.asarray([y for _, y in rows], np.int64)


def pool_predictions(probs: np.ndarray, model_classes: list[str], pool_classes: list[str]) -> np.ndarray:
    from .facequery import to_pool_probs

    return to_pool_probs(probs, model_classes, pool_classes).argmax(1)


def evaluate_round(proj, faces: list[dict], model, fm: FaceModel, rnd: int) -> dict:
    """Per-class recall of ``model`` (torch, this round) and of ``fm`` (the round before) on the labelled held-back
    faces."""
    import torch

    held, y = held_out_labels(proj, faces)
    out: dict = {"round": rnd, "n": int(len(y)), "classes": proj.classes}
    if not len(y):
        out["note"] = (f"no held-back face is labelled yet: `visionlab active query {proj.path} --held-out --k 40` "
                       f"then `label` gives this round's evaluation")
        return out
    crops = read_crops([proj.pool / f["path"] for f in held], fm.image_size)
    with torch.no_grad():
        now = torch.softmax(model(torch.from_numpy(crops).float()), 1).numpy()
    before = fm(crops)[0]
    for key, probs, r in (("this", now, rnd), ("previous", before, rnd - 1)):
        pred = pool_predictions(probs, fm.classes, proj.classes)
        acc = int((pred == y).sum())
        a, lo, hi = wilson(acc, len(y))
        out[key] = {"round": r, "accuracy": round(a, 4), "low": round(lo, 4), "high": round(hi, 4),
                    "per_class": _recall(y, pred, proj.classes)}
    out["accuracy"] = out["this"]["accuracy"]
    return out


def table(evaluation: dict) -> list[tuple[str, str, str, Optional[int]]]:
    """Rows (class, this round, previous round, n) for printing: 'recall [low, high]' in %."""
    if not evaluation.get("n"):
        return []
    f = lambda d: f"{100 * d['recall']:.1f} [{100 * d['low']:.1f}, {100 * d['high']:.1f}]"  # noqa: E731
    rows = []
    for c in evaluation["classes"]:
        this, prev = evaluation["this"]["per_class"].get(c), evaluation["previous"]["per_class"].get(c)
        if this:
            rows.append((c, f(this), f(prev) if prev else "", this["n"]))
    t, p = evaluation["this"], evaluation["previous"]
    rows.append(("all (accuracy)", f({"recall": t["accuracy"], "low": t["low"], "high": t["high"]}),
                 f({"recall": p["accuracy"], "low": p["low"], "high": p["high"]}), evaluation["n"]))
    return rows
