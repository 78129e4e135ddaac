"""A study's figures (matplotlib, Agg). Accuracies are drawn in percent; error bars and bands are 95% CIs."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from ..io import write_via  # noqa: E402
from .stats import ArmStats, mean_curve, ranked  # noqa: E402
from .spec import StudySpec, fmt_value  # noqa: E402

DPI = 110
OURS, THEIRS = "#1f77b4", "#9e9e9e"
MAX_CURVES = 10


def _save(fig, path: Path) -> Path:
    """Write ``fig`` atomically (a temporary file, then a rename) and close it."""
    try:  # tight: legends placed outside the axes stay in the image
        write_via(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return Path(path)


def draw_all(spec: StudySpec, stats: list[ArmStats], folder: Path, quick: bool = False) -> list[Path]:
    """Every figure the study has data for, into ``folder``: bars, heatmap, curves, vs_dissertation, plateaus."""
    figs: list[Path] = []
    metric = spec.metric.replace("_", " ").replace("acc", "accuracy")
    if any(s.n for s in stats):
        figs.append(bars(spec, stats, folder / "bars.png", metric, quick))
    if spec.heatmap:
        figs.append(heatmap(spec, stats, folder / "heatmap.png", metric, quick))
    if any(s.val_curves for s in stats):
        figs.append(curves(spec, stats, folder / "curves.png", quick))
    if any(s.reported is not None and s.n for s in stats):
        figs.append(versus_reported(spec, stats, folder / "vs_dissertation.png", metric, quick))
    reported_plateaus = any(isinstance(v, dict) for v in spec.reported.values())
    if spec.plateau and reported_plateaus and any(s.plateau_epoch for s in stats):
        figs.append(plateau_vs_reported(spec, stats, folder / "plateau_vs_dissertation.png", quick))
    return [f for f in figs if f is not None]


def _quick(quick: bool) -> str:
    return " [quick run]" if quick else ""


def _finite(v: Optional[float]) -> bool:
    return v is not None and math.isfinite(v)


def _label_axis(ax, labels: list[str]) -> None:
    long = max((len(x) for x in labels), default=0) > 8 or len(labels) > 6
    ax.set_xticks(range(len(labels)), labels, rotation=30 if long else 0, ha="right" if long else "center")


def bars(spec: StudySpec, stats: list[ArmStats], path: Path, metric: str, quick: bool = False) -> Path:
    """Mean per configuration with 95% CI error bars and every seed as a dot; grouped when the grid has two fields."""
    keys = list(spec.grid)
    if len(keys) == 2 and not spec.configs:
        return _grouped_bars(spec, stats, path, metric, quick, keys[0], keys[1])
    k = len(stats)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.85 * k + 2.5), 4.6))
    top = 0.0
    for i, s in enumerate(stats):
        if s.n:
            err = 100 * s.half if _finite(s.half) else 0
            ax.bar(i, 100 * s.mean, color=OURS, alpha=0.85, width=0.65,
                   yerr=err if err else None, capsize=5, error_kw={"lw": 1.3})
            ax.scatter([i + d for d in _jitter(s.n)], [100 * v for v in s.values], s=14, color="k", zorder=3,
                       label="one seed" if i == next(j for j, t in enumerate(stats) if t.n) else None)
            ax.text(i, 100 * s.mean + err + 1.0, f"{100 * s.mean:.1f}", ha="center", va="bottom", fontsize=8)
            top = max(top, 100 * s.mean + err, *(100 * v for v in s.values))
        else:
            ax.text(i, 1.0, "diverged" if s.diverged else "failed" if s.failed else "not run",
                    ha="center", va="bottom", fontsize=8, color="#b00020", rotation=90)
    _label_axis(ax, [s.label for s in stats])
    ax.set_xlim(-0.6, len(stats) - 0.4)  # every configuration gets its slot, also one with no bar (not run yet)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_ylim(0, min(100, top * 1.12 + 4))
    n = sorted({s.n for s in stats if s.n})
    ax.set_title(f"{spec.name}: {metric} per configuration{_quick(quick)}\n"
                 f"bars: mean of {'/'.join(map(str, n)) or 0} seeds; error bars: 95% CI", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    if any(s.n for s in stats):
        ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def _jitter(n: int) -> list[float]:
    if n == 1:
        return [0.0]
    return [-0.15 + 0.3 * i / (n - 1) for i in range(n)]


def _grouped_bars(spec: StudySpec, stats: list[ArmStats], path: Path, metric: str, quick: bool,
                  gk: str, hk: str) -> Path:
    groups, hues = spec.grid[gk], spec.grid[hk]
    by = {(fmt_value(s.fields.get(gk)), fmt_value(s.fields.get(hk))): s for s in stats}
    width = 0.84 / len(hues)
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(max(7.0, 0.32 * len(groups) * len(hues) + 3), 4.8))
    top = 0.0
    for j, h in enumerate(hues):
        colour = cmap(j / max(1, len(hues) - 1) * 0.9)
        xs, ys, errs = [], [], []
        for i, g in enumerate(groups):
            s = by.get((fmt_value(g), fmt_value(h)))
            x = i - 0.42 + width * (j + 0.5)
            if s is None or not s.n:
                if s is not None and s.diverged:
                    ax.text(x, 0.5, "div", ha="center", va="bottom", fontsize=6, rotation=90, color="#b00020")
                continue
            xs.append(x)
            ys.append(100 * s.mean)
            errs.append(100 * s.half if _finite(s.half) else 0.0)
            top = max(top, ys[-1] + errs[-1])
        ax.bar(xs, ys, width=width * 0.95, color=colour, label=fmt_value(h),
               yerr=errs if any(errs) else None, capsize=2, error_kw={"lw": 0.8})
    ax.set_xticks(range(len(groups)), [fmt_value(g) for g in groups])
    ax.set_xlabel(gk)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_ylim(0, min(100, top * 1.1 + 3))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title=_field_name(hk), fontsize=8, title_fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    ci = "; error bars: 95% CI" if any(_finite(s.half) for s in stats) else " (one seed: no intervals)"
    ax.set_title(f"{spec.name}: {metric} by {gk} and {_field_name(hk)}{_quick(quick)}\n"
                 f"bars: mean over seeds{ci}; 'div': diverged", fontsize=10)
    return _save(fig, path)


def _field_name(k: str) -> str:
    return {"lr": "learning rate", "init": "initialiser", "split_ratios": "train:val:test"}.get(k, k)


def heatmap(spec: StudySpec, stats: list[ArmStats], path: Path, metric: str, quick: bool = False) -> Path:
    """Row field x column field (optimizer x learning rate): mean in each cell, 'div' where every seed diverged."""
    import numpy as np

    rk, ck = spec.heatmap
    rows, cols = spec.grid[rk], spec.grid[ck]
    by = {(fmt_value(s.fields.get(rk)), fmt_value(s.fields.get(ck))): s for s in stats}
    m = np.full((len(rows), len(cols)), np.nan)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            s = by.get((fmt_value(r), fmt_value(c)))
            if s is not None and s.n:
                m[i, j] = 100 * s.mean
    fig, ax = plt.subplots(figsize=(1.05 * len(cols) + 3.2, 0.62 * len(rows) + 2.4))
    cmap = plt.get_cmap("viridis").copy()
    cmap = cmap.with_extremes(bad="#eeeeee")
    finite = m[np.isfinite(m)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    im = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
    best = np.unravel_index(np.nanargmax(m), m.shape) if finite.size else None
    row_best = [int(np.nanargmax(m[i])) if np.isfinite(m[i]).any() else -1 for i in range(len(rows))]
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            s = by.get((fmt_value(r), fmt_value(c)))
            if s is None or (not s.n and not s.diverged and not s.failed):
                txt, colour = "–", "#777777"
            elif not s.n:
                txt, colour = ("div" if s.diverged else "fail"), "#b00020"
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="#c8c8c8", lw=0))
            else:
                txt = f"{100 * s.mean:.1f}"
                if _finite(s.half):
                    txt += f"\n±{100 * s.half:.1f}"
                if s.diverged:
                    txt += f"\n{s.diverged} div"
                shade = (m[i, j] - lo) / (hi - lo)
                colour = "white" if shade < 0.55 else "black"
            weight = "bold" if j == row_best[i] else "normal"
            ax.text(j, i, txt, ha="center", va="center", fontsize=8, color=colour, fontweight=weight)
    if best is not None:
        ax.add_patch(Rectangle((best[1] - 0.5, best[0] - 0.5), 1, 1, fill=False, edgecolor="#e4002b", lw=2.2))
    ax.set_xticks(range(len(cols)), [fmt_value(c) for c in cols])
    ax.set_yticks(range(len(rows)), [fmt_value(r) for r in rows])
    ax.set_xlabel(_field_name(ck))
    ax.set_ylabel(_field_name(rk))
    ax.tick_params(length=0)
    nseeds = sorted({s.trials for s in stats if s.trials})
    seeds = f"{'/'.join(map(str, nseeds))} seed{'s' if nseeds != [1] else ''}"
    ci = "±: 95% CI" if any(_finite(s.half) for s in stats) else f"{seeds}: no intervals"
    ax.set_title(f"{spec.name}: mean {metric} (%) by {_field_name(rk)} and {_field_name(ck)}{_quick(quick)}\n"
                 f"bold: best per row; red box: best overall; 'div': every seed diverged "
                 f"(loss NaN, inf or exploding); {ci}",
                 fontsize=9.5)
    cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cb.set_label(f"mean {metric} (%)")
    return _save(fig, path)


def _select_curves(spec: StudySpec, stats: list[ArmStats]) -> tuple[list[ArmStats], str]:
    have = [s for s in stats if s.val_curves]
    if len(have) <= MAX_CURVES:
        return have, ""
    key = spec.heatmap[0] if spec.heatmap else (next(iter(spec.grid)) if spec.grid else None)
    if key is not None:
        best: dict[str, ArmStats] = {}
        for s in ranked(have):
            best.setdefault(fmt_value(s.fields.get(key)), s)
        picked = list(best.values())[:MAX_CURVES]
        if len(picked) > 1:
            return sorted(picked, key=lambda s: have.index(s)), f" (best configuration per {_field_name(key)})"
    return ranked(have)[:MAX_CURVES], f" (top {MAX_CURVES} by mean)"


def _band(curves_: list[list]) -> tuple[list[float], list[float], list[float]]:
    """Per epoch, in percent: the mean over seeds and a band, the 95% CI from three seeds on and the min-max range
    with two (a two-seed t interval, t = 12.7, is wider than the axis), clipped to 0..100."""
    mean, half = mean_curve(curves_)
    lo, hi = [], []
    for e, (m, h) in enumerate(zip(mean, half)):
        vals = [c[e] for c in curves_ if e < len(c) and c[e] is not None and math.isfinite(c[e])]
        if len(vals) >= 3 and _finite(h):
            a, b = m - h, m + h
        elif len(vals) == 2:
            a, b = min(vals), max(vals)
        else:
            a = b = math.nan
        lo.append(min(100.0, max(0.0, 100 * a)) if _finite(a) else math.nan)
        hi.append(min(100.0, max(0.0, 100 * b)) if _finite(b) else math.nan)
    return [100 * m for m in mean], lo, hi


def curves(spec: StudySpec, stats: list[ArmStats], path: Path, quick: bool = False) -> Path:
    """Validation and training accuracy per epoch: mean over seeds with a 95% CI band."""
    chosen, note = _select_curves(spec, stats)
    longest = max((len(c) for s in chosen for c in s.val_curves), default=1)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), sharey=False)
    marker = "o" if longest <= 20 else None
    reported_drawn = False
    for idx, s in enumerate(chosen):
        colour = plt.get_cmap("tab10")(idx % 10)
        for ax, curves_ in ((axes[0], s.val_curves), (axes[1], s.train_curves)):
            mean, lo, hi = _band([c for c in curves_ if c])
            if not mean:
                continue
            ep = list(range(1, len(mean) + 1))
            ax.plot(ep, mean, color=colour, lw=1.6, marker=marker, ms=3, label=s.label if ax is axes[0] else None)
            ax.fill_between(ep, lo, hi, color=colour, alpha=0.18 if len(chosen) <= 3 else 0.07, lw=0)
        if spec.plateau and s.plateau_epoch:
            axes[0].axvline(s.plateau_epoch, color=colour, ls=":", lw=1.2)
            axes[0].plot([s.plateau_epoch], [100 * s.plateau_value], marker="D", color=colour, ms=6)
            rep_e = spec.reported_value(s.label, "plateau_epoch")
            rep_v = spec.reported_value(s.label, "plateau_value")
            if rep_e is not None and rep_v is not None:
                axes[0].plot([rep_e], [100 * rep_v], marker="X", color="k", ms=8, ls="none",
                             label=None if reported_drawn else "dissertation's plateau")
                reported_drawn = True
    for ax, what in ((axes[0], "validation accuracy (%)"), (axes[1], "training accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        if longest <= 20:
            ax.set_xticks(range(1, longest + 1, max(1, longest // 10)))
    axes[0].set_title("validation" + (" (diamond, dotted line: plateau epoch)" if spec.plateau else ""), fontsize=9)
    axes[1].set_title("training", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.92), fontsize=8, frameon=False)
    fig.suptitle(f"{spec.name}: accuracy per epoch{note}{_quick(quick)}; lines: mean over seeds, "
                 f"bands: 95% CI (min to max where only two seeds finished)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def versus_reported(spec: StudySpec, stats: list[ArmStats], path: Path, metric: str, quick: bool = False) -> Path:
    """The dissertation's figure beside ours (with its 95% CI), and the difference in points above each pair."""
    shown = [s for s in stats if s.reported is not None and s.n]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(shown) + 2.5), 4.6))
    top = 0.0
    for i, s in enumerate(shown):
        err = 100 * s.half if _finite(s.half) else 0.0
        ax.bar(i - 0.19, 100 * s.reported, width=0.36, color=THEIRS, label="dissertation (one run)" if i == 0 else None)
        ax.bar(i + 0.19, 100 * s.mean, width=0.36, color=OURS, yerr=err or None, capsize=4,
               label="visionlab (mean, 95% CI)" if i == 0 else None)
        h = max(100 * s.reported, 100 * s.mean + err)
        top = max(top, h)
        ax.text(i, h + 1.5, f"{100 * s.diff:+.1f} pts", ha="center", va="bottom", fontsize=9, fontweight="bold")
    _label_axis(ax, [s.label for s in shown])
    ax.set_ylabel(f"{metric} (%)")
    ax.set_ylim(0, min(105, top * 1.15 + 6))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    warn = "\nquick run: fewer images and epochs, not comparable with the dissertation" if quick else ""
    ax.set_title(f"{spec.name}: the dissertation's figure beside ours (label: ours − dissertation){warn}",
                 fontsize=10)
    return _save(fig, path)


def plateau_vs_reported(spec: StudySpec, stats: list[ArmStats], path: Path, quick: bool = False) -> Path:
    shown = [s for s in stats if s.plateau_epoch and spec.reported_value(s.label, "plateau_epoch") is not None]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    panels = ((axes[0], "plateau_epoch", "epoch", 1), (axes[1], "plateau_value", "accuracy (%)", 100))
    for ax, key, unit, scale in panels:
        for i, s in enumerate(shown):
            rep = spec.reported_value(s.label, key)
            ours = getattr(s, key)
            ax.bar(i - 0.19, scale * rep, width=0.36, color=THEIRS, label="dissertation" if i == 0 else None)
            ax.bar(i + 0.19, scale * ours, width=0.36, color=OURS, label="visionlab" if i == 0 else None)
            d = scale * (ours - rep)
            label = f"{d:+.0f}" if key == "plateau_epoch" else f"{d:+.1f} pts"
            ax.text(i, max(scale * rep, scale * ours) * 1.03, label, ha="center", va="bottom", fontsize=9,
                    fontweight="bold")
        ax.set_xticks(range(len(shown)), [s.label for s in shown])
        ax.set_ylabel(unit)
        ax.set_title("plateau epoch" if key == "plateau_epoch" else "plateau validation accuracy", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ymax = max([scale * max(spec.reported_value(s.label, key), getattr(s, key)) for s in shown] or [1])
        ax.set_ylim(0, ymax * 1.2)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{spec.name}: where validation accuracy stops improving, ours vs the dissertation{_quick(quick)}",
                 fontsize=10)
    return _save(fig, path)
