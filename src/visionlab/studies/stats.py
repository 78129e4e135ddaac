"""A study's statistics: per-configuration intervals over seeds, paired differences, and the verdicts built on them.

Confidence intervals are two-sided 95% Student-t intervals of the mean over seeds: mean +- t(0.975, n-1) * s/sqrt(n).
With three seeds t is 4.30, so an interval is wide; two configurations whose intervals overlap are reported as not
ranked by the data (a conservative reading: overlap does not prove equality, it only withholds a verdict).

Seeds are paired: seed s gives every configuration the same data split, the same batch order and the same
random stream for its initial weights (where shapes agree), so most seed-to-seed variation (which images were
drawn) is shared.
Where intervals overlap, the report also gives the 95% interval of the paired per-seed difference, which
separates configurations that differ consistently seed by seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from .spec import StudySpec, fmt_value


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (NaN below one)."""
    if df < 1:
        return float("nan")
    from scipy import stats  # here, not at the top: importing the studies package should not load scipy.stats

    return float(stats.t.ppf(0.975, df))


@dataclass
class ArmStats:
    label: str
    fields: dict[str, Any] = field(default_factory=dict)
    values: list[float] = field(default_factory=list)  # the metric of every finished, non-diverged seed
    by_seed: dict[int, float] = field(default_factory=dict)
    trials: int = 0
    diverged: int = 0
    failed: int = 0
    mean: float = float("nan")
    std: float = float("nan")  # sample standard deviation (n-1)
    half: float = float("nan")  # half-width of the 95% interval
    reported: Optional[float] = None
    val_curves: list[list[Optional[float]]] = field(default_factory=list)
    train_curves: list[list[Optional[float]]] = field(default_factory=list)
    plateau_epoch: Optional[int] = None
    plateau_value: Optional[float] = None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def ci(self) -> tuple[float, float]:
        return self.mean - self.half, self.mean + self.half

    @property
    def diff(self) -> Optional[float]:
        return self.mean - self.reported if self.reported is not None and self.n else None

    def row(self) -> dict:
        lo, hi = self.ci
        return {"label": self.label, **{k: plain(v) for k, v in self.fields.items()}, "n": self.n,
                "trials": self.trials, "mean": _r(self.mean), "std": _r(self.std), "ci95_low": _r(lo),
                "ci95_high": _r(hi), "diverged": self.diverged, "failed": self.failed,
                "reported": self.reported, "diff": _r(self.diff), "plateau_epoch": self.plateau_epoch,
                "plateau_value": _r(self.plateau_value)}


def _r(v: Optional[float], nd: int = 5) -> Optional[float]:
    return None if v is None or not math.isfinite(v) else round(v, nd)


def plain(v: Any) -> Any:
    """A list value (split ratios) as the text a table shows: 70:15:15."""
    return fmt_value(v) if isinstance(v, (list, tuple)) else v


def mean_std_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean, sample standard deviation and 95% half-width (NaN where n is too small)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    mean = sum(values) / n
    if n == 1:
        return mean, float("nan"), float("nan")
    from scipy import stats

    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))  # sample standard deviation (n - 1)
    if std == 0:  # scipy's interval needs a positive scale; identical seeds give a zero-width interval
        return mean, 0.0, 0.0
    lo, hi = stats.t.interval(0.95, n - 1, loc=mean, scale=std / math.sqrt(n))
    return mean, std, float(hi - lo) / 2


def smooth(curve: Sequence[float], window: int) -> list[float]:
    """Centred moving average; the window shrinks at the ends instead of padding."""
    h = window // 2
    out = []
    for i in range(len(curve)):
        seg = curve[max(0, i - h): i + h + 1]
        out.append(sum(seg) / len(seg))
    return out


def smoothing_window(n_epochs: int) -> int:
    w = max(1, round(n_epochs / 20))
    return w if w % 2 else w + 1


def plateau(curve: Sequence[float], tolerance: float = 0.005) -> tuple[Optional[int], Optional[float]]:
    """(epoch, value): the first epoch (1-based) whose smoothed accuracy is within ``tolerance`` (0.5 point) of the
    smoothed curve's maximum, and that maximum."""
    vals = [v for v in curve if v is not None and math.isfinite(v)]
    if len(vals) != len(curve) or not vals:
        return None, None
    s = smooth(vals, smoothing_window(len(vals)))
    top = max(s)
    epoch = next(i for i, v in enumerate(s) if v >= top - tolerance) + 1
    return epoch, top


def mean_curve(curves: list[list[Optional[float]]]) -> tuple[list[float], list[float]]:
    """Per-epoch mean and 95% half-width over the seeds that reached that epoch (NaN where none did)."""
    length = max((len(c) for c in curves), default=0)
    means, halves = [], []
    for e in range(length):
        vals = [c[e] for c in curves if e < len(c) and c[e] is not None and math.isfinite(c[e])]
        m, _, h = mean_std_ci(vals)
        means.append(m)
        halves.append(h)
    return means, halves


def summarize(spec: StudySpec, records: list[dict]) -> list[ArmStats]:
    """One ArmStats per arm of ``spec``, in spec order."""
    arms = {a.label: ArmStats(a.label, {k: a.overrides.get(k) for k in spec.arm_fields()}) for a in spec.arms()}
    for r in records:
        s = arms.get(r["label"])
        if s is None:
            continue
        s.trials += 1
        if r["status"] == "diverged":
            s.diverged += 1
        elif r["status"] == "failed":
            s.failed += 1
        elif r.get("value") is not None:
            s.values.append(float(r["value"]))
            s.by_seed[int(r["seed"])] = float(r["value"])
        if r["status"] != "failed" and r.get("val_acc_curve"):
            s.val_curves.append(r["val_acc_curve"])
            s.train_curves.append(r.get("train_acc_curve") or [])
    for s in arms.values():
        s.mean, s.std, s.half = mean_std_ci(s.values)
        s.reported = spec.reported_value(s.label)
        ok_curves = [c for c in s.val_curves if c and all(v is not None for v in c)]
        if spec.plateau and ok_curves:
            s.plateau_epoch, s.plateau_value = plateau(mean_curve(ok_curves)[0])
    return list(arms.values())


def overlap(a: ArmStats, b: ArmStats) -> bool:
    """Whether the 95% intervals overlap; a missing interval (one seed) counts as overlapping: no verdict."""
    if not (math.isfinite(a.half) and math.isfinite(b.half)):
        return True
    return a.ci[0] <= b.ci[1] and b.ci[0] <= a.ci[1]


def paired_diff(a: ArmStats, b: ArmStats) -> Optional[tuple[int, float, float]]:
    """(n, mean, 95% half-width) of a - b over the seeds both finished; None with fewer than two."""
    common = sorted(set(a.by_seed) & set(b.by_seed))
    if len(common) < 2:
        return None
    m, _, h = mean_std_ci([a.by_seed[s] - b.by_seed[s] for s in common])
    return len(common), m, h


def separated(a: ArmStats, b: ArmStats) -> bool:
    """Ranked by the data: intervals apart, or a paired difference whose interval excludes zero."""
    if not overlap(a, b):
        return True
    p = paired_diff(a, b)
    return p is not None and math.isfinite(p[2]) and abs(p[1]) > p[2]


def diff_text(a: ArmStats, b: ArmStats) -> str:
    n, m, h = paired_diff(a, b)
    return f"{100 * m:+.1f} points, 95% CI [{100 * (m - h):+.1f}, {100 * (m + h):+.1f}], {n} paired seeds"


def ranked(stats: list[ArmStats]) -> list[ArmStats]:
    return sorted([s for s in stats if s.n], key=lambda s: -s.mean)


def tiers(stats: list[ArmStats]) -> list[list[ArmStats]]:
    """Greedy tiers from the top: a tier holds every configuration the data cannot separate from its leader."""
    rest = ranked(stats)
    out = []
    while rest:
        lead = rest[0]
        tier = [s for s in rest if s is lead or not separated(lead, s)]
        out.append(tier)
        rest = [s for s in rest if s not in tier]
    return out


def plural(n: Optional[int], word: str) -> str:
    """``3 workers``, ``1 thread``; ``? cores`` where the count was not recorded."""
    return f"{n if n is not None else '?'} {word}{'' if n == 1 else 's'}"


def pct(v: Optional[float], nd: int = 1) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{100 * v:.{nd}f}%"


def ci_text(s: ArmStats) -> str:
    if not math.isfinite(s.half):
        return "no interval (one seed)" if s.n == 1 else "n/a"
    lo, hi = s.ci
    return f"[{100 * lo:.1f}, {100 * hi:.1f}]"


def ranking_statement(stats: list[ArmStats], metric: str = "test_acc") -> str:
    r = ranked(stats)
    if not r:
        return "No configuration finished with a value: nothing to rank."
    top = r[0]
    spread = f"95% CI {ci_text(top)}, n={top.n}" if math.isfinite(top.half) else f"n={top.n}, no interval"
    head = f"The highest mean {metric} is **{top.label}** ({pct(top.mean)}, {spread})."
    if len(r) == 1:
        return head + " It is the only configuration with a result."
    if not math.isfinite(top.half):
        return (head + " With one seed per configuration there are no intervals, so **the data cannot rank** the "
                       "configurations; run with `--seeds 3` (or more) to get intervals.")
    tied = [s for s in r[1:] if overlap(top, s)]
    if tied:
        names = ", ".join(s.label for s in tied)
        text = (head + f" Its interval overlaps those of {names}: **the data cannot rank {top.label} and "
                       f"{names}** from these intervals.")
        paired = [s for s in tied if paired_diff(top, s) is not None]
        split = [s for s in paired if separated(top, s)]
        if split:
            text += (" Paired by seed (a seed gives every configuration the same data split and batch order), "
                     "the per-seed differences do separate " + "; ".join(
                         f"{top.label} from {s.label} ({diff_text(top, s)})" for s in split) + ".")
            rest = [s.label for s in paired if s not in split]
            if rest:
                text += f" They do not separate it from {', '.join(rest)}."
            text += " (Each paired interval is for one comparison; no correction for making several.)"
        elif paired:
            text += " The paired per-seed differences do not separate them either."
        return text
    nxt = r[1]
    return (head + f" Its interval lies above every other configuration's (next: {nxt.label}, {pct(nxt.mean)}, "
                   f"95% CI {ci_text(nxt)}): the data rank it first.")


def settle_answers(spec: StudySpec, stats: list[ArmStats], quick: bool) -> list[str]:
    by = {s.label: s for s in stats}
    out = []
    for q in spec.settle:
        cands = [by[c] for c in q.candidates if c in by and by[c].n]
        if len(cands) < 2:
            out.append(f"{q.question} Not enough finished candidates to answer.")
            continue
        cands.sort(key=lambda s: abs(s.mean - q.reported))
        best, second = cands[0], cands[1]
        d1, d2 = abs(best.mean - q.reported), abs(second.mean - q.reported)
        inside = math.isfinite(best.half) and best.ci[0] <= q.reported <= best.ci[1]
        desc = lambda s, d: f"'{s.label}' ({pct(s.mean)}, 95% CI {ci_text(s)}; {100 * d:.1f} points away)"
        if d1 < d2 / 2 and separated(best, second):
            verdict = (f"the reported {pct(q.reported)} matches {desc(best, d1)}, not {desc(second, d2)}."
                       + ("" if inside else " It lies outside that interval, which the JPEG copy of CIFAR-10 and "
                          "framework differences can explain; the other candidate is much further off."))
        else:
            verdict = (f"the numbers do not settle it: {desc(best, d1)} and {desc(second, d2)} are both plausible "
                       f"(or their intervals overlap).")
        if quick:
            verdict += (" (Quick run: fewer images and epochs than the dissertation; rerun without --quick to "
                        "settle it.)")
        out.append(f"**{q.question}** Answer: {verdict}")
    return out


def claim_checks(spec: StudySpec, stats: list[ArmStats]) -> list[str]:
    r = ranked(stats)
    out = []
    for c in spec.claims:
        target = c.best or c.worst
        if not r:
            out.append(f"{c.text}: no results.")
            continue
        order = r if c.best else list(reversed(r))
        who = next((s for s in r if s.label == target), None)
        if who is None:
            out.append(f"\"{c.text}\": cannot check, {target} has no result.")
            continue
        pos = order.index(who)
        place = "best" if c.best else "worst"
        if pos == 0:
            other = order[1] if len(order) > 1 else None
            if other is None:
                out.append(f"\"{c.text}\": only one configuration has a result.")
            elif not separated(who, other):
                out.append(f"\"{c.text}\": ours agrees in the means ({target} {pct(who.mean)} is the {place}), but the "
                           f"data cannot separate it from {other.label} ({pct(other.mean)}): not confirmed.")
            else:
                how = (f"paired difference to {other.label}: {diff_text(who, other)}" if overlap(who, other)
                       else f"its interval is clear of {other.label}'s, {pct(other.mean)}, CI {ci_text(other)}")
                out.append(f"\"{c.text}\": **holds** ({target} {pct(who.mean)}, 95% CI {ci_text(who)}; {how}).")
        else:
            first = order[0]
            verdict = ("but the data cannot separate them, so the claim is neither confirmed nor refuted"
                       if not separated(who, first) else "and the data separate them: the claim **does not hold** here")
            out.append(f"\"{c.text}\": ours puts {first.label} {place} ({pct(first.mean)}, CI {ci_text(first)}); "
                       f"{target} is {pos + 1}{_ordinal(pos + 1)} from the {'top' if c.best else 'bottom'} "
                       f"({pct(who.mean)}, CI {ci_text(who)}), {verdict}.")
    return out


def best_per_row(spec: StudySpec, stats: list[ArmStats]) -> str:
    """For a heatmap study: the best column value per row value (the best learning rate per optimizer)."""
    rk, ck = spec.heatmap
    parts = []
    for r in spec.grid[rk]:
        row = [s for s in stats if fmt_value(s.fields.get(rk)) == fmt_value(r) and s.n]
        if not row:
            parts.append(f"{fmt_value(r)}: none finished")
            continue
        b = max(row, key=lambda s: s.mean)
        parts.append(f"{fmt_value(r)} {ck}={fmt_value(b.fields.get(ck))} ({pct(b.mean)})")
    return f"Best {ck} per {rk}: " + "; ".join(parts) + "."


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
