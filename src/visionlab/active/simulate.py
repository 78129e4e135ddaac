"""Does active learning pay off here? Replay the loop with an oracle and measure.

A labelled folder plays the human: its Train split is the pool (labels hidden until a strategy asks), its
Test split the yardstick. Features come from the frozen backbone once (cached on disk, see features.py), so
a round is training a small head and scoring the pool: seconds on a CPU. Every strategy starts a seed from
the same random labelled set and trains with the same per-round seed, so strategies are compared paired,
seed by seed; intervals are 95% Student-t intervals over seeds.
"""
from __future__ import annotations

import csv
import json
import math
import sys
import time
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from . import head as H
from .features import FeatureCache, load_featurizer
from .loop import _featurizer_spec
from .session import class_folders, folder_items, split_folders
from .strategies import STRATEGIES, select

UNCERTAINTY = ("least_confidence", "margin", "entropy", "bald")


def t_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval; the interval is NaN for a single value."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], float)
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if len(v) < 2:
        return m, math.nan, math.nan
    from scipy import stats
    sd = float(v.std(ddof=1))
    if sd == 0:  # scipy's interval needs a positive scale
        return m, m, m
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=m, scale=sd / math.sqrt(len(v)))
    return m, float(lo), float(hi)


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def load_oracle(data: Path, classes: Optional[list[str]] = None):
    splits = split_folders(data)
    test = splits.get("test") or splits.get("val")
    if "train" not in splits or test is None or splits["train"] == data:
        raise DataError(f"{data} needs a Train split (the pool) and a Test (or Validation) split of class folders, "
                        f"e.g. {data}/Train/<class>/*.jpg and {data}/Test/<class>/*.jpg")
    names = classes or [d.name for d in class_folders(splits["train"])]
    return names, folder_items(splits["train"], names), folder_items(test, names)


def simulate(data: str | Path, strategies: Optional[Sequence[str]] = None, rounds: int = 10, k: int = 20,
             seeds: int = 3, init: int = 20, out: str | Path = "active-sim", targets: Sequence[float] = (0.9, 0.95),
             model: Optional[str] = None, cache_dir: Optional[str] = None, epochs: int = 200, mc_samples: int = 20,
             quiet: bool = True) -> dict:
    """Run every strategy for ``rounds`` rounds of ``k`` oracle labels after ``init`` random ones, ``seeds``
    times; write results.csv, summary.json, accuracy_vs_labels.png, report.md and report.html to ``out``."""
    t_start = time.time()
    strategies = list(strategies or ["random", "least_confidence", "margin", "entropy", "kcenter", "hybrid"])
    for s in strategies:
        STRATEGIES.get(s)
    if min(rounds, seeds, init) < 1 or k < 1:
        raise ConfigError("--rounds, --k, --seeds and --init must be at least 1")
    out_p = Path(out)
    data_p = Path(data)
    if not data_p.is_dir():
        raise DataError(f"data folder {data_p} does not exist")
    classes, pool, test = load_oracle(data_p)
    if init + rounds * k > len(pool):
        raise ConfigError(f"{init} + {rounds} x {k} labels exceed the pool of {len(pool)} images")
    spec, feat, xp, yp, xt, yt, feature_seconds = _oracle_features(pool, test, model, cache_dir, quiet)
    params = H.HeadParams(epochs=epochs)
    C = len(classes)

    def fit_eval(idx: np.ndarray, seed: int) -> tuple[dict, float]:
        state = H.train_head(xp[idx], yp[idx], C, params, seed=seed)
        return state, float((H.predict_proba(state, xt).argmax(1) == yt).mean())

    t0 = time.time()
    _, full_acc = fit_eval(np.arange(len(xp)), 0)
    _log(quiet, f"all {len(xp)} pool labels: test accuracy {full_acc:.4f} ({time.time() - t0:.1f} s)")
    rows, timing = [], {s: 0.0 for s in strategies}
    for seed in range(seeds):
        start = _random_start(yp, seed, init, C)
        for name in strategies:
            t0 = time.time()
            rows += _replay(name, start, seed, rounds, k, fit_eval, xp, params, mc_samples)
            timing[name] += time.time() - t0
            _log(quiet, f"seed {seed} {name:>16}: {rows[-1]['test_acc']:.4f} at {rows[-1]['labels']} labels "
                        f"({time.time() - t0:.1f} s)")
    out_p.mkdir(parents=True, exist_ok=True)
    with open(out_p / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["strategy", "seed", "round", "labels", "test_acc"])
        w.writeheader()
        w.writerows(rows)
    summary = summarise(rows, strategies, seeds, targets)
    summary.update(data=str(data_p), classes=classes, pool=int(len(xp)), test=int(len(xt)), featurizer=spec,
                   featurizer_id=feat.id, rounds=rounds, k=k, init=init, seeds=seeds, epochs=epochs,
                   full_pool_acc=full_acc, feature_seconds=round(feature_seconds, 1),
                   strategy_seconds={s: round(v, 1) for s, v in timing.items()},
                   wall_seconds=round(time.time() - t_start, 1))
    return _write_report(out_p, summary)


def _oracle_features(pool: list, test: list, model: Optional[str], cache_dir: Optional[str], quiet: bool):
    """The frozen backbone's features of the pool and the test images (through the on-disk cache), images
    that failed to give features dropped: ``(spec, featurizer, xp, yp, xt, yt, seconds spent)``."""
    spec, note = _featurizer_spec(model)
    if note:
        _log(quiet, note)
    feat = load_featurizer(spec)
    cache = FeatureCache(feat, cache_dir)
    t0 = time.time()
    prog = (lambda d, n: _log(quiet, f"  features {d}/{n}")) if not quiet else None
    _log(quiet, f"features ({feat.id}) of {len(pool)} pool + {len(test)} test images, cached under {cache.dir}")
    xp, _ = cache.get([it.path for it in pool], [it.sha256 for it in pool], progress=prog)
    xt, _ = cache.get([it.path for it in test], [it.sha256 for it in test], progress=prog)
    feature_seconds = time.time() - t0
    okp, okt = ~np.isnan(xp).any(1), ~np.isnan(xt).any(1)
    xp, yp = xp[okp], np.array([it.label for it in pool])[okp]
    xt, yt = xt[okt], np.array([it.label for it in test])[okt]
    return spec, feat, xp, yp, xt, yt, feature_seconds


def _random_start(yp: np.ndarray, seed: int, init: int, n_classes: int) -> np.ndarray:
    """Seed ``seed``'s random labelled start, shared by every strategy: redrawn (up to 1000 times) until it
    has every class, where ``init`` allows."""
    rng0 = np.random.default_rng([seed, 7919])
    for _ in range(1000):  # a random start that has every class
        start = rng0.choice(len(yp), init, replace=False)
        if len(set(yp[start].tolist())) == n_classes or init < n_classes:
            break
    return start


def _replay(name: str, start: np.ndarray, seed: int, rounds: int, k: int, fit_eval, xp: np.ndarray,
            params: H.HeadParams, mc_samples: int) -> list[dict]:
    """One strategy, one seed: train and score on the labelled set, let the strategy pick ``k`` more from the
    rest, ``rounds`` times. One row per round (round 0 is the start)."""
    rows = []
    labelled = list(start)
    needs = STRATEGIES.meta(name).get("needs", ())
    for r in range(rounds + 1):
        idx = np.asarray(labelled)
        state, acc = fit_eval(idx, seed * 1000 + r)
        rows.append({"strategy": name, "seed": seed, "round": r, "labels": len(labelled), "test_acc": acc})
        if r == rounds:
            break
        mask = np.ones(len(xp), bool)
        mask[idx] = False
        unl = np.flatnonzero(mask)
        probs = H.predict_proba(state, xp[unl]) if set(needs) & {"probs"} else None
        mc = H.mc_proba(state, xp[unl], mc_samples, seed * 1000 + r, params.dropout) if "mc" in needs else None
        rng = np.random.default_rng([seed, r, zlib.crc32(name.encode())])
        pick = select(name, probs, xp[unl], k, rng, labelled_embeddings=xp[idx], mc_probs=mc)
        labelled += unl[pick].tolist()
    return rows


def _write_report(out_p: Path, summary: dict) -> dict:
    """summary.json, the plot, report.md and report.html into ``out_p``; the paths and the summary."""
    (out_p / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot = plot_curves(summary, out_p / "accuracy_vs_labels.png")
    md, page = report(summary, plot.name)
    (out_p / "report.md").write_text(md)
    (out_p / "report.html").write_text(page)
    return {"results": out_p / "results.csv", "plot": plot, "report": out_p / "report.md",
            "html": out_p / "report.html", "summary": summary}


# --- analysis -------------------------------------------------------------------------------------------
def summarise(rows: list[dict], strategies: list[str], seeds: int, targets: Sequence[float]) -> dict:
    acc: dict[str, dict[int, dict[int, float]]] = {s: {} for s in strategies}  # strategy -> labels -> seed -> acc
    for r in rows:
        acc[r["strategy"]].setdefault(r["labels"], {})[r["seed"]] = r["test_acc"]
    curves = {}
    for s in strategies:
        curves[s] = [{"labels": n, "values": [by_seed[i] for i in sorted(by_seed)],
                      **dict(zip(("mean", "lo", "hi"), t_interval(list(by_seed.values()))))}
                     for n, by_seed in sorted(acc[s].items())]
    need = {}
    for s in strategies:
        need[s] = {}
        for tgt in targets:
            per_seed = []
            for seed in range(seeds):
                hit = [n for n, by_seed in sorted(acc[s].items()) if by_seed.get(seed, -1) >= tgt]
                per_seed.append(hit[0] if hit else None)
            reached = [v for v in per_seed if v is not None]
            m, lo, hi = t_interval(reached) if len(reached) == seeds else (math.nan,) * 3
            first = min(acc[s])
            lo = max(lo, first) if not math.isnan(lo) else lo  # no strategy can need fewer than the start
            need[s][str(tgt)] = {"per_seed": per_seed, "mean": m, "lo": lo, "hi": hi,
                                 "reached": len(reached)}
    vs_random = {}
    if "random" in strategies:
        base = acc["random"]
        for s in strategies:
            if s == "random":
                continue
            counts = [n for n in sorted(acc[s]) if n in base][1:]  # after the shared start
            per_seed_mean = [float(np.mean([acc[s][n][seed] - base[n][seed] for n in counts])) for seed in range(seeds)]
            at = {}
            for n in counts:
                d = [acc[s][n][seed] - base[n][seed] for seed in range(seeds)]
                at[n] = dict(zip(("mean", "lo", "hi"), t_interval(d)), per_seed=d)
            vs_random[s] = {"mean_over_rounds": dict(zip(("mean", "lo", "hi"), t_interval(per_seed_mean)),
                                                     per_seed=per_seed_mean), "at": at}
    return {"strategies": strategies, "curves": curves, "labels_to_target": need, "vs_random": vs_random,
            "targets": list(targets)}


def identical_groups(summary: dict) -> list[list[str]]:
    """Strategies whose accuracy was the same in every round of every seed: they chose the same images
    (with two classes least_confidence, margin and entropy all rank by |p - 0.5|). Drawn as one line."""
    groups: list[list[str]] = []
    for s in summary["strategies"]:
        key = [p["values"] for p in summary["curves"][s]]
        for g in groups:
            if [p["values"] for p in summary["curves"][g[0]]] == key:
                g.append(s)
                break
        else:
            groups.append([s])
    return groups


def plot_curves(summary: dict, path: Path) -> Path:
    """Top: test accuracy vs labels, mean and 95% band per strategy. Bottom: the paired difference to random
    (seed by seed, so the start's luck cancels), which is where a real gain shows."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = identical_groups(summary)
    diff = bool(summary["vs_random"])
    fig, axes = plt.subplots(2 if diff else 1, 1, figsize=(8.5, 8.6 if diff else 5.2), dpi=120, sharex=True,
                             gridspec_kw={"height_ratios": [3, 2]} if diff else None, squeeze=False)
    ax = axes[0, 0]
    colours = plt.get_cmap("tab10")
    for i, g in enumerate(groups):
        c = summary["curves"][g[0]]
        n = [p["labels"] for p in c]
        m = 100 * np.array([p["mean"] for p in c])
        lo = np.clip(100 * np.array([p["lo"] for p in c]), 0, 100)
        hi = np.clip(100 * np.array([p["hi"] for p in c]), 0, 100)
        rnd = "random" in g
        ax.plot(n, m, "--" if rnd else "-", marker="o", ms=3, lw=2 if rnd else 1.5, color=colours(i),
                label=" = ".join(g))
        if not np.isnan(lo).all():
            ax.fill_between(n, lo, hi, color=colours(i), alpha=0.10, lw=0)
        if diff and not rnd:
            d = summary["vs_random"][g[0]]["at"]
            dn = sorted(d)
            axes[1, 0].plot(dn, [100 * d[k]["mean"] for k in dn], marker="o", ms=3, lw=1.5, color=colours(i),
                            label=" = ".join(g))
            axes[1, 0].fill_between(dn, [100 * d[k]["lo"] for k in dn], [100 * d[k]["hi"] for k in dn],
                                    color=colours(i), alpha=0.10, lw=0)
    ax.axhline(100 * summary["full_pool_acc"], color="grey", ls=":", lw=1,
               label=f"all {summary['pool']} pool labels ({100 * summary['full_pool_acc']:.1f}%)")
    name = summary["featurizer"].get("model") or summary["featurizer"]["kind"]
    ax.set_title(f"Active learning on {Path(summary['data']).name}: test accuracy vs labels\n"
                 f"{name} features, MLP head; mean and 95% CI over {summary['seeds']} seeds", fontsize=11)
    ax.set_ylabel(f"test accuracy, % ({summary['test']} images)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8.5)
    if diff:
        b = axes[1, 0]
        b.axhline(0, color=colours(0), ls="--", lw=1.5)
        b.set_ylabel("minus random, points\n(paired by seed, 95% CI)")
        b.grid(alpha=0.3)
        b.set_title(f"one test image = {100 / summary['test']:.2f} points", fontsize=9, loc="right")
    axes[-1, 0].set_xlabel("labelled images")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _pct(v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{100 * v:.1f}"


def _ci(d: dict, scale: float = 100.0, digits: int = 1, unit: str = "", bounds=(-math.inf, math.inf)) -> str:
    if math.isnan(d["mean"]):
        return "n/a"
    if math.isnan(d["lo"]):
        return f"{d['mean'] * scale:.{digits}f}{unit}"
    lo, hi = max(d["lo"], bounds[0]), min(d["hi"], bounds[1])  # an accuracy interval stops at 100%
    return f"{d['mean'] * scale:.{digits}f}{unit} [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]"


def report(summary: dict, plot_name: str) -> tuple[str, str]:
    """The report as Markdown and as a self-contained-enough HTML page (the plot beside it)."""
    S = summary["strategies"]
    counts = [p["labels"] for p in summary["curves"][S[0]]]
    show = sorted(set(counts[::2]) | {counts[-1]})
    blocks: list[tuple[str, object]] = []
    name = summary["featurizer"].get("model") or summary["featurizer"]["kind"]
    blocks.append(("h1", f"Active learning simulation: {Path(summary['data']).name}"))
    blocks.append(("p", f"Pool: {summary['pool']} training images with hidden labels (the oracle), test: "
                        f"{summary['test']} images, classes {', '.join(summary['classes'])}. Frozen {name} features "
                        f"({summary['featurizer_id']}), an MLP head ({summary['epochs']} full-batch Adam steps) "
                        f"retrained from scratch each round. Start: {summary['init']} random labels (the same for "
                        f"every strategy within a seed), then {summary['rounds']} rounds of {summary['k']} labels; "
                        f"{summary['seeds']} seeds. Intervals are 95% Student-t intervals over seeds"
                        f"{_t_note(summary['seeds'])}. Training on all {summary['pool']} pool labels "
                        f"gives {_pct(summary['full_pool_acc'])}% test accuracy."))
    blocks.append(("img", plot_name))
    same = [g for g in identical_groups(summary) if len(g) > 1]
    if same:
        why = " (with two classes they all rank images by |p - 0.5|)" if len(summary["classes"]) == 2 else ""
        blocks.append(("p", "; ".join(" = ".join(g) for g in same) + f": identical choices in every round and "
                            f"seed{why}, so their rows below are the same and the plot draws them as one line."))
    blocks.append(("h2", "Test accuracy (%) by number of labels"))
    blocks.append(("p", "Mean over seeds [95% interval, cut at 100%]."))
    rows = [["strategy"] + [str(n) for n in show]]
    for s in S:
        by_n = {p["labels"]: p for p in summary["curves"][s]}
        rows.append([s] + [_ci(by_n[n], bounds=(0.0, 1.0)) for n in show])
    blocks.append(("table", rows))
    blocks.append(("h2", "Labels needed to reach a target test accuracy"))
    blocks.append(("p", f"The first label count (of {counts[0]}, {counts[1] if len(counts) > 1 else ''}, ...) "
                        f"at which a seed's test accuracy reaches the target; mean and t interval over seeds (its "
                        f"lower end clipped at {counts[0]}, the start), then each seed's count."))
    rows = [["strategy"] + [f"{100 * t:g}%" for t in summary["targets"]]]
    for s in S:
        cells = []
        for t in summary["targets"]:
            d = summary["labels_to_target"][s][str(t)]
            if d["reached"] == summary["seeds"]:
                cells.append(_ci(d, 1, 0) + f" (seeds: {', '.join(str(v) for v in d['per_seed'])})")
            else:
                got = ", ".join("-" if v is None else str(v) for v in d["per_seed"])
                cells.append(f"not within {counts[-1]} labels in {summary['seeds'] - d['reached']} of "
                             f"{summary['seeds']} seeds (seeds: {got})")
        rows.append([s] + cells)
    blocks.append(("table", rows))
    if summary["vs_random"]:
        blocks.append(("h2", "Against random sampling (paired by seed)"))
        blocks.append(("p", "Difference in test accuracy, percentage points, strategy minus random: averaged over "
                            "rounds 1.." + str(summary["rounds"]) + " (the area between the curves), and at "
                            f"single label counts. An interval that excludes 0 is a difference these seeds support. "
                            f"One test image is {100 / summary['test']:.2f} points."))
        rows = [["strategy", "mean over rounds"] + [f"at {n}" for n in show[1:]]]
        for s, d in summary["vs_random"].items():
            rows.append([s, _ci(d["mean_over_rounds"], digits=2)]
                        + [_ci(d["at"][n], digits=2) if n in d["at"] else "" for n in show[1:]])
        blocks.append(("table", rows))
        blocks.append(("p", verdict(summary)))
    blocks.append(("p", f"Time: features {summary['feature_seconds']} s (cached for the next run), strategies "
                        + ", ".join(f"{s} {v} s" for s, v in summary["strategy_seconds"].items())
                        + f"; {summary['wall_seconds']} s in all."))
    return _markdown(blocks), _html(blocks, Path(summary["data"]).name)


def _t_note(seeds: int) -> str:
    if seeds < 2:
        return " (one seed: no interval)"
    from scipy.stats import t
    wide = ", so they are wide" if seeds <= 5 else ""
    return f" (with {seeds} seeds the half-width is {t.ppf(0.975, seeds - 1):.2f} standard errors{wide})"


def verdict(summary: dict) -> str:
    """One plain sentence per uncertainty strategy: does it beat random, by how much, how sure."""
    out = []
    for s, d in summary["vs_random"].items():
        m = d["mean_over_rounds"]
        kind = "uncertainty sampling" if s in UNCERTAINTY else "a diversity strategy" if s == "kcenter" else \
            "a hybrid strategy"
        if math.isnan(m["lo"]):
            word = "differs from"
        elif m["lo"] > 0:
            word = "beats"
        elif m["hi"] < 0:
            word = "is worse than"
        else:
            word = "is not distinguishable from"
        out.append(f"{s} ({kind}) {word} random: {_ci(m, digits=2)} points on average over the rounds.")
    return " ".join(out)


def _markdown(blocks) -> str:
    lines = []
    for kind, body in blocks:
        if kind == "h1":
            lines += [f"# {body}", ""]
        elif kind == "h2":
            lines += [f"## {body}", ""]
        elif kind == "p":
            lines += [str(body), ""]
        elif kind == "img":
            lines += [f"![test accuracy vs labels]({body})", ""]
        elif kind == "table":
            lines.append("| " + " | ".join(body[0]) + " |")
            lines.append("|" + "|".join("---" for _ in body[0]) + "|")
            lines += ["| " + " | ".join(r) + " |" for r in body[1:]]
            lines.append("")
    return "\n".join(lines)


def _html(blocks, title: str) -> str:
    from ..evaluation.report import render

    return render("simulate.html.j2", blocks=[(k, b) for k, b in blocks], title=title)
