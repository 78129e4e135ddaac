"""Likely label errors and near-duplicates in an image folder (``visionlab data issues DATA --run RUN``).

Label errors follow cleanlab's recipe: every image gets class probabilities from a model that never saw it
(out-of-fold: scikit-learn's ``cross_val_predict`` of a logistic regression, k folds, on the run model's
features: a frozen backbone's ``forward_features``, else the input of the last linear layer; see ``embed``), and ``cleanlab.filter.find_label_issues`` flags the images
whose given label the probabilities contradict (confident learning), ranked by self-confidence.
Near-duplicates: 64-bit perceptual hashes (``imagehash.phash``) at most ``max_distance`` bits apart.

The page (``issues.html``, Jinja2 template ``templates/issues.html.j2``) shows thumbnails; ``label_issues.csv``
and ``duplicates.csv`` list every case. Nothing in DATA is moved or changed.
"""
from __future__ import annotations

import base64
import io as _io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import ConfigError, DataError

MAX_SHOWN = 200


@dataclass
class IssuesResult:
    n_images: int
    classes: list[str]
    label_issues: list[dict] = field(default_factory=list)   # path, given, predicted, p_given, p_predicted
    duplicates: list[dict] = field(default_factory=list)     # a, b, distance, label_a, label_b
    oof_accuracy: float = float("nan")
    files: dict = field(default_factory=dict)


def _pooled(data: str, loaded, quiet: bool):
    """Every image of ``data`` (all splits pooled) at the run's input size, with paths and labels."""
    from .. import data as data_mod
    from ..data.checks import check_layout

    if not Path(data).expanduser().is_dir():
        raise ConfigError(f"--data {data}: give an image folder (class folders, or Train/Validation/Test of them)")
    check_layout(data)
    cfg = loaded.config.model_copy(update={"data": str(data), "source": "folder", "split_ratios": None,
                                           "limit_per_class": None, "quiet": quiet,
                                           "image_size": loaded.image_size})
    ds = data_mod.build(cfg, image_size=loaded.image_size)
    if ds.classes != loaded.classes:
        raise ConfigError(f"{data} has classes {ds.classes} but the run was trained on {loaded.classes}; "
                          f"pass a run trained on these classes")
    parts = [s for s in (ds.train, ds.val, ds.test) if s is not None and len(s)]
    x = torch.cat([s.x for s in parts])
    y = torch.cat([s.y for s in parts]).numpy()
    paths = [p for s in parts for p in (s.paths or [])]
    if len(paths) != len(y):
        raise DataError(f"{data}: images without file paths cannot be listed; use an image folder")
    return x, y, paths, ds.classes


@torch.no_grad()
def embed(model, x: torch.Tensor, batch: int = 256) -> np.ndarray:
    """What the images are compared by. A frozen backbone (``net.frozen``): its ``forward_features``, which never
    saw these labels; the head's hidden layer, trained on them, memorises the very labels being checked (with
    it, 0 of 33 flipped face-mask labels were found, 28 without). A network trained whole: the input of its last
    linear layer (``forward_head(pre_logits=True)``), its most abstract representation (on synthetic flips,
    16 of 17 found, against 9 from the raw conv map)."""
    model.eval()
    net, out = model.net, []
    for i in range(0, len(x), batch):
        f = net.forward_features(model.normalize(x[i:i + batch].float()))
        if not net.frozen:
            f = net.forward_head(f, pre_logits=True)
        out.append(f.float().flatten(1).numpy())
    return np.concatenate(out)


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Class probabilities of each image from a logistic regression fitted on the other folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    smallest = int(np.bincount(labels).min())
    if smallest < folds:
        raise DataError(f"a class has only {smallest} images; --folds {folds} needs at least that many per class")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return cross_val_predict(clf, features, labels, cv=cv, method="predict_proba")


def perceptual_hashes(x: torch.Tensor) -> np.ndarray:
    """N x 64 booleans: each image's pHash."""
    import imagehash
    from PIL import Image

    return np.stack([imagehash.phash(Image.fromarray(im.permute(1, 2, 0).numpy())).hash.flatten() for im in x])


def near_duplicates(hashes: np.ndarray, max_distance: int) -> list[tuple[int, int, int]]:
    """(i, j, Hamming distance) for every pair at most ``max_distance`` bits apart, i < j."""
    h = hashes.astype(np.uint8)
    pairs = []
    for i in range(len(h) - 1):  # a row at a time: N x 64 stays small where N x N x 64 would not
        d = (h[i + 1:] != h[i]).sum(1)
        for j in np.flatnonzero(d <= max_distance):
            pairs.append((i, i + 1 + int(j), int(d[j])))
    return pairs


def _thumb(im: torch.Tensor, side: int = 160) -> str:
    from PIL import Image

    pic = Image.fromarray(im.permute(1, 2, 0).numpy())
    pic.thumbnail((side, side))  # only ever shrinks
    buf = _io.BytesIO()
    pic.save(buf, format="JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode()


def find_issues(data: str | Path, run: str | Path, out: Optional[str | Path] = None, folds: int = 5, seed: int = 0,
                max_distance: int = 4, quiet: bool = False) -> IssuesResult:
    """Likely label errors and near-duplicates in ``data``, seen through the run's model; writes issues.html,
    label_issues.csv, duplicates.csv and issues.json into ``out`` (default RUN/issues)."""
    try:
        from cleanlab.filter import find_label_issues
        import imagehash  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"data issues needs {e.name}: pip install 'visionlab[issues]'") from None

    from ..io import atomic_write_text, write_csv, write_json
    from ..runs import load_run
    from .report import render

    loaded = load_run(run)
    if loaded.config.framework == "keras":
        raise ConfigError(f"{run}: data issues needs a torch run (its model's frozen features); this one is Keras")
    x, y, paths, classes = _pooled(str(data), loaded, quiet)
    feats = embed(loaded.model, x)
    probs = out_of_fold_probabilities(feats, y, folds, seed)
    ranked = find_label_issues(y, probs, return_indices_ranked_by="self_confidence")
    issues = [{"path": paths[i], "given": classes[y[i]], "predicted": classes[int(probs[i].argmax())],
               "p_given": float(probs[i, y[i]]), "p_predicted": float(probs[i].max())} for i in ranked]
    dup = [{"a": paths[i], "b": paths[j], "distance": d, "label_a": classes[y[i]], "label_b": classes[y[j]]}
           for i, j, d in near_duplicates(perceptual_hashes(x), max_distance)]
    res = IssuesResult(len(y), classes, issues, dup, float((probs.argmax(1) == y).mean()))

    folder = Path(out) if out is not None else loaded.path / "issues"
    folder.mkdir(parents=True, exist_ok=True)
    index = {p: k for k, p in enumerate(paths)}
    shown_issues = [{**r, "thumb": _thumb(x[index[r["path"]]])} for r in issues[:MAX_SHOWN]]
    shown_dup = [{**d, "thumb_a": _thumb(x[index[d["a"]]], 120), "thumb_b": _thumb(x[index[d["b"]]], 120)}
                 for d in dup[:MAX_SHOWN]]
    summary = [("images", len(y)), ("classes", ", ".join(classes)), ("run", str(loaded.path)),
               ("out-of-fold accuracy", f"{res.oof_accuracy:.3f}"),
               ("likely label errors", f"{len(issues)} ({100 * len(issues) / max(len(y), 1):.1f}%)"),
               ("near-duplicate pairs", len(dup))]
    files = {"html": folder / "issues.html", "label_issues": folder / "label_issues.csv",
             "duplicates": folder / "duplicates.csv", "json": folder / "issues.json"}
    atomic_write_text(files["html"], render(
        "issues.html.j2", title=f"Data issues in {Path(str(data)).name}", subtitle=f"seen through {loaded.path}",
        summary=summary, folds=folds, feature_dim=feats.shape[1], max_distance=max_distance, issues=issues,
        shown_issues=shown_issues, duplicates=dup, shown_duplicates=shown_dup))
    write_csv(files["label_issues"], issues)
    write_csv(files["duplicates"], dup)
    write_json(files["json"], {"images": len(y), "classes": classes, "oof_accuracy": res.oof_accuracy,
                               "label_issues": len(issues), "duplicate_pairs": len(dup), "folds": folds,
                               "max_distance": max_distance, "run": str(loaded.path), "data": str(data)})
    res.files = files
    return res
