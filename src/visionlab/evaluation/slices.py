"""Robustness slices: recall and precision per class on tagged kinds of face (beard, dark mask, side face, ...).

A tag file (``--slices FILE``) is a CSV with one row per face and 0/1 tag columns, keyed by

- ``image`` + ``box_id``: the 0-based data row of the face in the ``boxes.csv`` given as ``--truth``
  (``../shared/data/facemask_boxes/special_cases.csv`` is such a file), or
- ``image`` + ``xmin,ymin,xmax,ymax``: the annotated box as the truth writes it, or
- ``crop``: a face-crop file (its name, or its path under the data folder), for ``visionlab evaluate``.

``label``, ``width`` and ``height`` columns are read as information and ignored; every other column is a tag. A key
that names no face of the truth (or no crop of the data), a missing key column and a value other than 0/1 are each
one ``DataError`` line. Faces of photos (or crops) outside what is evaluated are left out, not errors.

``slice_metrics(truth, guess, tags, tag_names, classes)`` then gives, for every tagged face set ("all tagged",
each tag, "no tag"):
- per class, **recall**: the slice's faces of that class found and labelled that class, over its faces of that
  class (a missed face, or one the classifier called Background, counts against it); and **precision**: among the
  slice's faces the model labelled that class, the share that are that class (only faces of the slice are looked at,
  so a false box, which has no face and no tags, is in no slice);
- 95% Wilson intervals for each (SciPy's ``binomtest(...).proportion_ci``), the gap to the whole tagged set, and
  ``short`` where the slice's interval lies wholly below the whole set's (for cells of at least ``MIN_SHORT``
  faces; the interval already widens for small counts, but one or two faces show no pattern);
- overall: the share of the slice's faces found and labelled right, its gap to the whole set's per-class recalls
  weighted by the slice's own class mix (a slice of mostly unmasked faces is compared with how unmasked faces do,
  not with a set that is mostly masked), and a rank by that gap, worst first. A slice with fewer than
  ``min_faces`` faces is marked ``small`` ("too small to rank") and not ranked; its intervals are still shown;
- with ``shown`` (detection: the face's box is shown by default, its face probability at least the model's
  threshold): the share found, labelled right *and* shown, what a user of `visionlab detect` sees. A face labelled
  right whose box the classifier's Background class pushed under the threshold is right but hidden.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from ..errors import DataError

if TYPE_CHECKING:
    from markupsafe import Markup

ALL, NONE = "all tagged", "no tag"
INFO_COLUMNS = ("label", "width", "height")
BOX_COLUMNS = ("xmin", "ymin", "xmax", "ymax")
MIN_FACES = 30  # the shared data's README: slices under ~30 faces are anecdotes
MIN_SHORT = 5  # a cell of fewer faces is never called short: one or two faces show no pattern


@dataclass
class TagFile:
    """A tag file as read: one key and one row of 0/1 tags per face, in file order."""

    path: Path
    kind: str  # "box_id" | "box" | "crop"
    names: list[str]  # tag columns
    keys: list  # box_id: (image, int); box: (image, (xmin, ymin, xmax, ymax)); crop: str
    lines: list[int]  # the CSV line of each row, for messages
    values: np.ndarray  # rows x tags, bool


def read_tag_file(path: str | Path) -> TagFile:
    """The rows of a tag file, checked for key columns, tag columns, 0/1 values and repeated keys."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"--slices {p}: no such file; pass a CSV of 0/1 tags keyed by image,box_id or crop")
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark
            reader = csv.DictReader(f)
            cols = [c.strip() for c in reader.fieldnames or []]
            rows = [(n, {(k or "").strip(): (v or "").strip() for k, v in r.items() if k is not None})
                    for n, r in enumerate(reader, start=2)]
    except UnicodeDecodeError:
        raise DataError(f"--slices {p} is not a UTF-8 text CSV") from None
    except csv.Error as e:
        raise DataError(f"--slices {p}: not a readable CSV ({e})") from None
    if "crop" in cols:
        kind, key_cols = "crop", ["crop"]
    elif "image" in cols and "box_id" in cols:
        kind, key_cols = "box_id", ["image", "box_id"]
    elif "image" in cols and all(c in cols for c in BOX_COLUMNS):
        kind, key_cols = "box", ["image", *BOX_COLUMNS]
    else:
        have = ", ".join(cols) if cols else "no header"
        raise DataError(f"--slices {p}: missing key column(s): needs image and box_id, image and "
                        f"{','.join(BOX_COLUMNS)}, or crop (it has {have})")
    keyish = {"crop", "image", "box_id", *BOX_COLUMNS}  # never tags, whichever of them keys the file
    names = [c for c in cols if c not in keyish and c not in INFO_COLUMNS]
    if not names:
        raise DataError(f"--slices {p}: no tag columns besides the key ({', '.join(key_cols)}); add 0/1 columns "
                        f"such as beard,dark_mask")
    if not rows:
        raise DataError(f"--slices {p} has no rows")
    keys, lines, values, seen = [], [], np.zeros((len(rows), len(names)), bool), {}
    bad = [(n, c, r[c]) for n, r in rows for c in names if r.get(c, "") not in ("0", "1")]
    if bad:
        n, c, v = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataError(f"--slices {p}:{n}: column {c} is {v!r}, not 0 or 1{more}")
    for i, (n, r) in enumerate(rows):
        key = _row_key(kind, r, f"--slices {p}:{n}: ")
        if key in seen:
            raise DataError(f"--slices {p}:{n}: the same face as line {seen[key]}; give each face one row")
        seen[key] = n
        keys.append(key)
        lines.append(n)
        values[i] = [r[c] == "1" for c in names]
    return TagFile(p, kind, names, keys, lines, values)


def _row_key(kind: str, r: dict, where: str):
    if kind == "crop":
        if not r["crop"]:
            raise DataError(f"{where}empty crop name")
        return r["crop"].replace("\\", "/")
    image = Path(r["image"]).name
    if not image:
        raise DataError(f"{where}empty image name")
    try:
        if kind == "box_id":
            return image, int(r["box_id"])
        return image, tuple(float(r[c]) for c in BOX_COLUMNS)
    except ValueError:
        col = "box_id" if kind == "box_id" else ",".join(BOX_COLUMNS)
        raise DataError(f"{where}{col} is not a number") from None


def _truth_rows(truth: str | Path) -> list[str]:
    """The image name of each data row of a boxes.csv (what ``box_id`` counts)."""
    p = Path(truth)
    if p.is_dir() and (p / "boxes.csv").is_file():
        p = p / "boxes.csv"
    if not (p.is_file() and p.suffix.lower() == ".csv"):
        raise DataError(f"--slices keyed by box_id needs a boxes.csv as --truth ({truth} is not one); key the tag "
                        f"file by image,{','.join(BOX_COLUMNS)} instead")
    with open(p, newline="", encoding="utf-8") as f:
        return [(r.get("image") or "").strip() for r in csv.DictReader(f)]


def box_tags(tf: TagFile, truths: Sequence, truth: str | Path) -> dict[tuple[str, int], np.ndarray]:
    """Tags by annotated face ``(image name, index of the box in its photo)``, for ``truths`` (``data.boxes``
    records); a key naming no face of ``truth``, or the same face as another row, is a ``DataError``."""
    return dict(zip(face_keys(tf, truths, truth), tf.values))


def face_keys(tf: TagFile, truths: Sequence, truth: str | Path) -> list[tuple[str, int]]:
    """``(image name, index of the box in its photo)`` of each row of a box-keyed tag file, in file order."""
    if tf.kind == "crop":
        raise DataError(f"--slices {tf.path} is keyed by crop; with --truth key it by image,box_id or "
                        f"image,{','.join(BOX_COLUMNS)}")
    keys: list = []
    unknown: list[str] = []
    if tf.kind == "box_id":
        rows = _truth_rows(truth)
        index, count = [], {}
        for name in rows:  # box j of a photo is its j-th row, as data.boxes reads them
            index.append(count.get(name, 0))
            count[name] = index[-1] + 1
        for (image, b), n in zip(tf.keys, tf.lines):
            ok = 0 <= b < len(rows) and Path(rows[b]).name == image
            keys.append((image, index[b]) if ok else None)
            if not ok:
                unknown.append(f"line {n} ({image}, box_id {b})")
    else:
        by_name = {Path(t.path).name: t for t in truths}
        for (image, (x0, y0, x1, y1)), n in zip(tf.keys, tf.lines):
            t = by_name.get(image)
            # data.boxes keeps x0, y0 and makes the inclusive max exclusive, clipped to the photo
            j = None if t is None else next(
                (j for j, b in enumerate(t.boxes) if abs(b.x0 - max(0.0, x0)) <= 1 and abs(b.y0 - max(0.0, y0)) <= 1
                 and abs(b.x1 - min(t.width, x1 + 1)) <= 1 and abs(b.y1 - min(t.height, y1 + 1)) <= 1), None)
            keys.append(None if j is None else (image, j))
            if j is None:
                unknown.append(f"line {n} ({image}, box {x0:g},{y0:g},{x1:g},{y1:g})")
    if unknown:
        more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
        raise DataError(f"--slices {tf.path}: {unknown[0]}{more} name no annotated face of {truth}; "
                        f"tag only faces of the truth")
    seen: dict = {}
    for k, n in zip(keys, tf.lines):
        if k in seen:
            raise DataError(f"--slices {tf.path}:{n}: the same face as line {seen[k]}; give each face one row")
        seen[k] = n
    return keys


def crop_tags(tf: TagFile, paths: Sequence[str], every: Sequence[str],
              root: str | Path = "") -> list[Optional[np.ndarray]]:
    """Tags per crop of ``paths`` (None for untagged ones). ``every`` is every crop of the data (all splits): a
    key matching none of them is a ``DataError``. A tag file keyed by image and box is mapped to crop names
    through the data folder's ``faces.json`` (``visionlab data faces`` names a face's crop ``<photo>_<j>.jpg``)."""
    keys = list(tf.keys)
    if tf.kind != "crop":
        keys = _boxes_to_crops(tf, Path(root))
    norm = [str(p).replace("\\", "/") for p in every]
    by_name: dict[str, list[str]] = {}
    for p in norm:
        by_name.setdefault(p.rsplit("/", 1)[-1], []).append(p)
    found: dict[str, np.ndarray] = {}
    unknown = []
    for k, n, v in zip(keys, tf.lines, tf.values):
        hits = [p for p in by_name.get(k.rsplit("/", 1)[-1], []) if p == k or p.endswith("/" + k)]
        if not hits:
            unknown.append(f"line {n} ({k})")
        for p in hits:
            found[p] = v
    if unknown:
        more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
        raise DataError(f"--slices {tf.path}: {unknown[0]}{more} name no image of the data; tag only its crops")
    return [found.get(str(p).replace("\\", "/")) for p in paths]


def _boxes_to_crops(tf: TagFile, root: Path) -> list[str]:
    """Crop names for a box-keyed tag file, through ``root/faces.json``'s box-annotation source."""
    import json

    from ..data.boxes import read_annotations

    manifest = root / "faces.json"
    if not manifest.is_file():
        raise DataError(f"--slices {tf.path} is keyed by image and box, but {root} has no faces.json (from "
                        f"`visionlab data faces`) to find their crops; key the tag file by crop instead")
    sources = json.loads(manifest.read_text(encoding="utf-8")).get("sources", [])
    for s in sources:  # the box-annotated source that holds every tagged face
        try:
            keys = face_keys(tf, read_annotations(s, check_images=False), s)
        except DataError:
            continue
        return [f"{Path(image).stem}_{j:03d}.jpg" for image, j in keys]
    raise DataError(f"--slices {tf.path}: no box-annotation source of {manifest} holds all its faces; key the tag "
                    f"file by crop instead")


def wilson(k: int, n: int, level: float = 0.95) -> tuple[Optional[float], Optional[float], Optional[float]]:
    """(k/n, low, high) with the Wilson interval (SciPy); (None, None, None) when n is 0."""
    from scipy.stats import binomtest

    if n <= 0:
        return None, None, None
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return k / n, float(ci.low), float(ci.high)


def wilson_rate(k: int, n: int) -> dict:
    """``{k, n, rate, ci}``: k of n with its 95% Wilson interval, rounded to 4 places (None where n is 0)."""
    r, lo, hi = wilson(k, n)
    return {"k": int(k), "n": int(n), "rate": None if r is None else round(r, 4),
            "ci": None if r is None else [round(lo, 4), round(hi, 4)]}


def _cells(truth: np.ndarray, guess: np.ndarray, classes: Sequence[str]) -> dict:
    out = {}
    for c in classes:
        is_c, said_c = truth == c, guess == c
        out[c] = {"recall": wilson_rate(int((is_c & said_c).sum()), int(is_c.sum())),
                  "precision": wilson_rate(int((is_c & said_c).sum()), int(said_c.sum()))}
    return out


def slice_metrics(truth: Sequence[str], guess: Sequence[Optional[str]], tags: np.ndarray, tag_names: Sequence[str],
                  classes: Sequence[str], min_faces: int = MIN_FACES,
                  shown: Optional[Sequence[bool]] = None) -> dict:
    """The module docstring's figures for faces of true class ``truth[i]``, labelled ``guess[i]`` (None: missed),
    with ``tags[i, t]`` set where face i has tag ``tag_names[t]``; ``shown[i]``: face i's box is shown by default
    (detection), for each slice's ``shown`` rate (None: not counted)."""
    truth = np.asarray(truth, dtype=object)
    guess = np.asarray([g if g is not None else "" for g in guess], dtype=object)
    tags = np.asarray(tags, bool).reshape(len(truth), len(tag_names))
    shown = None if shown is None else np.asarray(shown, bool)
    right = truth == guess
    classes = list(classes)
    whole = _cells(truth, guess, classes)
    sets = [(ALL, np.ones(len(truth), bool))] + [(t, tags[:, i]) for i, t in enumerate(tag_names)]
    sets.append((NONE, ~tags.any(1)))
    rows = []
    for name, sel in sets:
        cells = _cells(truth[sel], guess[sel], classes)
        for c in classes:
            for what in ("recall", "precision"):
                mine, ref = cells[c][what], whole[c][what]
                mine["gap"] = (None if mine["rate"] is None or ref["rate"] is None
                               else round(mine["k"] / mine["n"] - ref["k"] / ref["n"], 4))
                mine["short"] = bool(mine["ci"] and ref["ci"] and mine["n"] >= MIN_SHORT
                                     and mine["ci"][1] < ref["ci"][0])
        n = int(sel.sum())
        overall = wilson_rate(int(right[sel].sum()), n)
        # the whole set's recall of each class, weighted by this slice's class mix
        mix = [(int((truth[sel] == c).sum()), whole[c]["recall"]) for c in classes]
        expected = sum(k * r["k"] / r["n"] for k, r in mix if k) / n if n else None
        overall["expected"] = None if expected is None else round(expected, 4)
        overall["gap"] = None if expected is None else round(overall["k"] / n - expected, 4)
        seen = None if shown is None else wilson_rate(int((right & shown)[sel].sum()), n)
        rows.append({"slice": name, "faces": n, "small": n < min_faces and name != ALL, "shown": seen,
                     "short": [f"{c} {w}" for c in classes for w in ("recall", "precision") if cells[c][w]["short"]],
                     "overall": overall, "per_class": cells, "rank": None,
                     "by_class": {c: int((truth[sel] == c).sum()) for c in classes}})
    ranked = sorted((r for r in rows if r["slice"] != ALL and not r["small"] and r["overall"]["gap"] is not None),
                    key=lambda r: r["overall"]["gap"])
    for k, r in enumerate(ranked, start=1):
        r["rank"] = k
    return {"classes": classes, "faces": int(len(truth)), "min_faces": min_faces, "level": 0.95,
            "tags": list(tag_names), "rows": rows}


def slice_members(tags: np.ndarray, tag_names: Sequence[str]) -> dict[str, np.ndarray]:
    """Row selection of every slice of ``slice_metrics``, by name."""
    tags = np.asarray(tags, bool).reshape(-1, len(tag_names))
    out = {ALL: np.ones(len(tags), bool)}
    out.update({t: tags[:, i] for i, t in enumerate(tag_names)})
    out[NONE] = ~tags.any(1)
    return out


def _pct(r: dict) -> str:
    if r["rate"] is None:
        return "-"
    lo, hi = r["ci"]
    return f"{100 * r['rate']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] of {r['n']}"


def _gap(v: Optional[float]) -> str:
    return "" if v is None else f"{100 * v:+.1f}"


def table_rows(sm: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the slice table (one row per slice), as text."""
    classes = sm["classes"]
    with_shown = any(r.get("shown") is not None for r in sm["rows"])
    head = ["slice", "faces", "right [95% CI]", "gap (mix-matched)", "rank"] + \
        (["right and shown [95% CI]"] if with_shown else [])
    for c in classes:
        head += [f"{c} recall", "gap", f"{c} precision", "gap"]
    rows = []
    for r in sm["rows"]:
        whole = r["slice"] == ALL  # the reference: no gap, no rank
        gap = (lambda v: "") if whole else _gap
        status = (f"under {sm['min_faces']} faces: not ranked" if r["small"] else str(r["rank"] or "")) + \
            (f"; below the whole set: {', '.join(r['short'])}" if r["short"] else "")
        row = [r["slice"], str(r["faces"]), _pct(r["overall"]), gap(r["overall"]["gap"]), status] + \
            ([_pct(r["shown"]) if r.get("shown") else "-"] if with_shown else [])
        for c in classes:
            cell = r["per_class"][c]
            row += [_pct(cell["recall"]), gap(cell["recall"]["gap"]),
                    _pct(cell["precision"]), gap(cell["precision"]["gap"])]
        rows.append(row)
    return head, rows


def table_html(sm: dict) -> "Markup":
    """The slice table as HTML (every cell escaped here, so it is returned as safe ``Markup`` that composes with
    the report's template pieces), with a line saying how to read it."""
    import html

    from markupsafe import Markup

    head, rows = table_rows(sm)
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    note = (f"<p>{sm['faces']} tagged faces. Recall: the slice's faces of a class found and labelled that class; "
            f"precision: of the slice's faces labelled a class, the share that are. 95% Wilson intervals; gaps in "
            f"points against all tagged faces (the overall gap against the whole set's per-class recall weighted by "
            f"the slice's class mix). Ranked worst first; a slice of fewer than {sm['min_faces']} faces is too small "
            f"to rank (its intervals show how little it says); a cell is marked below the whole set when its "
            f"interval lies wholly below the whole set's (cells of {MIN_SHORT}+ faces). Right and shown: labelled "
            f"right with a box shown at the default settings (a face the Background class pushed under the "
            f"threshold is right but hidden). Tags set by eye are noisy.</p>")
    return Markup(f"{note}<table><tr>{th}</tr>{body}</table>")


def plot_slices(sm: dict, path: Path) -> Path:
    """Recall (top) and precision (bottom) per class and slice with their 95% intervals; small slices pale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plots import _save as save_figure

    classes, rows = sm["classes"], sm["rows"]
    colors = {"WithMask": "tab:green", "WithoutMask": "tab:red", "MaskWornIncorrectly": "tab:orange"}
    x = np.arange(len(rows))
    width = 0.8 / max(len(classes), 1)
    fig, axes = plt.subplots(2, 1, figsize=(max(7.0, 1.0 * len(rows) + 2), 7.5), sharex=True)
    for ax, what in zip(axes, ("recall", "precision")):
        for k, c in enumerate(classes):
            base = rows[0]["per_class"][c][what]
            for i, r in enumerate(rows):
                cell = r["per_class"][c][what]
                if cell["rate"] is None:
                    continue
                v, (lo, hi) = 100 * cell["rate"], cell["ci"]
                xi = x[i] - 0.4 + width * (k + 0.5)
                ax.bar(xi, v, width, color=colors.get(c, f"C{k}"), alpha=0.35 if r["small"] else 0.9,
                       label=c if i == 0 else None, edgecolor="black" if cell["short"] else "none",
                       linewidth=1.6)
                ax.errorbar(xi, v, yerr=[[v - 100 * lo], [100 * hi - v]], color="black", capsize=2, lw=0.8)
            if base["rate"] is not None:
                ax.axhline(100 * base["rate"], color=colors.get(c, f"C{k}"), ls="--", lw=0.8)
        ax.set(ylim=(0, 105), ylabel=f"{what} (%)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(classes), frameon=False)
    fig.suptitle(f"Recall and precision per slice, 95% Wilson intervals (dashed: all tagged faces; "
                 f"pale: under {sm['min_faces']} faces, not ranked; black edge: interval below the whole set's)",
                 fontsize=9)
    axes[1].set_xticks(x, [f"{r['slice']}\n{r['faces']} face{'' if r['faces'] == 1 else 's'}" for r in rows],
                       rotation=30, ha="right", fontsize=8)
    return save_figure(fig, path)


def plot_misses(rows: Sequence[tuple[str, Sequence[tuple[np.ndarray, str, Optional[tuple]]]]], path: Path,
                per_row: int = 8) -> Optional[Path]:
    """A gallery, one row per slice, of the slice's faces that were missed or mislabelled: each item an RGB image,
    a caption and an optional (x, y, w, h) rectangle to draw (the annotated face in a context crop)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plots import _save as save_figure

    rows = [(name, list(items)[:per_row]) for name, items in rows if items]
    if not rows:
        return None
    fig, axes = plt.subplots(len(rows), per_row, figsize=(per_row * 1.5, len(rows) * 1.85), squeeze=False)
    for r, (name, items) in enumerate(rows):
        for k in range(per_row):
            ax = axes[r, k]
            ax.axis("off")
            if k < len(items):
                img, caption, rect = items[k]
                ax.imshow(img, interpolation="nearest")
                if rect is not None:
                    ax.add_patch(plt.Rectangle(rect[:2], rect[2], rect[3], fill=False, color="yellow", lw=1))
                ax.set_title(caption, fontsize=6)
        axes[r, 0].text(-0.1, 0.5, name, transform=axes[r, 0].transAxes, rotation=90, ha="right", va="center",
                        fontsize=8, fontweight="bold")
    fig.suptitle("Missed or mislabelled faces per slice", fontsize=10)
    return save_figure(fig, path)
