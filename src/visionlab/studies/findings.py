"""docs/findings.md: the dissertation's chapter-3 claims, each checked against the studies' own results.

Every verdict is computed from a study's results.csv (one row per trial) with the statistics the study reports
use (studies/stats.py: Student-t 95% intervals, differences paired by seed), and every figure on the page is
checked against that study's summary.csv. The results are kept beside the page, in docs/findings/<study>/
(results.csv, summary.csv, study.json and the bars plot), so the page can be regenerated and tested on a fresh
clone without re-running hours of training:

    python -m visionlab.studies.findings runs/studies [--out docs/findings.md]

copies each finished study's files from runs/studies/<name>/ into docs/findings/<name>/ and writes the page;
``--check`` only verifies that the page matches the kept files (what tests/studies/test_findings.py does).
Each finished trial's small files (config.yaml, metrics.json, history.csv; no weights) are kept too, under
docs/findings/<name>/trials/, so that a study too long for one sitting can be finished in a new checkout:
``--restore NAME`` puts them (and study.json, whose sessions carry the wall times) back into runs/studies/NAME/,
where `visionlab study run NAME` counts them as finished and runs only the rest.

Verdicts: **holds** (the data agree and separate it), **differs** (the data separate it the other way, or the
reported figure lies outside our 95% interval), **cannot tell** (intervals overlap and the paired per-seed
differences do not separate the arms either, or fewer than two seeds finished).
"""
from __future__ import annotations

import csv
import json
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import typer

from ..runs import RunFolder
from .folder import STUDY_FILE, TRIALS_DIR
from .stats import (ArmStats, ci_text, diff_text, mean_std_ci, overlap, paired_diff, pct, plural, ranked,
                    separated)

HOLDS, DIFFERS, CANNOT = "holds", "differs", "cannot tell"
PENDING = "not run yet"  # a study the claim needs has no kept results (not a verdict)
DOCS = Path("docs")  # the repository's docs/, from its root (this is a maintainer's tool, not a user command)
KEPT = ("results.csv", "summary.csv", "study.json")
PLOTS = ("bars.png", "heatmap.png")  # a study's plots kept beside its files and shown on the page
# enough for the runner to count a trial finished (folder.take_stock) and read its record back
TRIAL_KEPT = (RunFolder.CONFIG, RunFolder.METRICS, RunFolder.HISTORY)
FINISHED = f"*/{RunFolder.METRICS}"  # a trial folder holding metrics.json is finished


# --- what is claimed ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One test of a claim: ``kind`` best | worst | beats | reaches | plateau | best_lr, on arm ``arm`` of ``study``
    (best_lr: ``arm`` is an optimizer, the arms are ``OPTIMIZER, lr=X``)."""

    kind: str
    study: str
    arm: str
    other: Optional[tuple[str, str]] = None  # beats: (study, arm) it is compared with
    value: Optional[float] = None            # reaches: the dissertation's figure
    span: Optional[tuple[float, float]] = None  # plateau: the claimed epochs; best_lr: the claimed learning rates


@dataclass(frozen=True)
class Claim:
    text: str
    reported: str
    checks: tuple[Check, ...]


def _c(kind: str, study: str, arm: str, **kw) -> Check:
    return Check(kind, study, arm, **kw)


CNN = ("baseline", "CNN, mini-batch 64")
# the optimizers study on one CPU core, sized to what a sitting affords (docs/findings.md says so): the mini-batch
# optimizers at 3 epochs, per-image SGD (45,000 steps an epoch) at 1, full-batch GD at the seed's 15 with one seed
OPT_MINI, OPT_SGD, OPT_GD = "optimizers-epochs-3", "optimizers-epochs-1", "optimizers"
CLAIMS: tuple[Claim, ...] = (
    Claim("The baseline ANN reaches 49.5% with gradient descent", "49.5%",
          (_c("reaches", "baseline", "ANN, full-batch GD", value=0.495),)),
    Claim("The baseline ANN reaches 49.5% (Keras' default mini-batches of 32)", "49.5%",
          (_c("reaches", "baseline", "ANN, mini-batch 32", value=0.495),)),
    Claim("The baseline CNN reaches 59.7%", "59.7%", (_c("reaches", *CNN, value=0.597),)),
    Claim("ELU gives the best test accuracy", "ELU 48.4%", (_c("best", "activations", "elu"),)),
    Claim("Sigmoid does not learn (chance level, about 10%)", "10%",
          (_c("reaches", "activations", "sigmoid", value=0.10), _c("worst", "activations", "sigmoid"))),
    Claim("He initialisation beats zero initialisation", "(ranking)",
          (_c("beats", "initializers", "he_normal", other=("initializers", "zeros")),
           _c("beats", "initializers", "he_uniform", other=("initializers", "zeros")))),
    Claim("70:15:15 is the best split", "(ranking)", (_c("best", "splits", "70:15:15"),)),
    Claim("BatchNorm is the best regulariser at about 71%", "71%",
          (_c("best", "regularization", "batchnorm"), _c("reaches", "regularization", "batchnorm", value=0.71))),
    Claim("Dropout 0.5 is the worst regulariser (about 30%)", "30%",
          (_c("worst", "regularization", "dropout 0.5"), _c("reaches", "regularization", "dropout 0.5", value=0.30))),
    Claim("The dense CNN beats the baseline CNN", "62.9% vs 59.7%",
          (_c("beats", "density", "dense_cnn", other=CNN),)),
    Claim("The dense ANN beats the baseline ANN", "50.9% vs 49.5%",
          (_c("beats", "density", "dense_ann", other=("baseline", "ANN, mini-batch 32")),)),
    Claim("The ANN (250 epochs) stops improving at 70-80 epochs; training longer only overfits", "70-80 epochs",
          (_c("plateau", "epochs", "ANN", span=(70, 80)),)),
    Claim("The CNN (150 epochs) stops improving at about 40 epochs; stop at 30-40", "about 40 epochs",
          (_c("plateau", "epochs", "CNN", span=(30, 45)),)),
    Claim("SGD (one image per step) is best at learning rates 0.01-0.06", "0.01-0.06",
          (_c("best_lr", OPT_SGD, "sgd", span=(0.01, 0.06)),)),
    Claim("Momentum is best at learning rates 0.001-0.03", "0.001-0.03",
          (_c("best_lr", OPT_MINI, "momentum", span=(0.001, 0.03)),)),
    Claim("RMSprop is best at learning rates 0.001-0.03", "0.001-0.03",
          (_c("best_lr", OPT_MINI, "rmsprop", span=(0.001, 0.03)),)),
    Claim("Adam is best at learning rates 0.001-0.01", "0.001-0.01",
          (_c("best_lr", OPT_MINI, "adam", span=(0.001, 0.01)),)),
)
STUDIES = ("baseline", "activations", "initializers", "splits", "regularization", "density", "epochs", OPT_MINI,
           OPT_SGD, OPT_GD)
NOT_RUN_NOTE: dict[str, str] = {}
# said under a study's section where its settings are not the built-in study's
SIZING = {
    OPT_MINI: "Sized for one CPU core: the mini-batch optimizers (mini-batch SGD, momentum, RMSprop, Adam; batches of "
              "64) at the 9 learning rates with 3 seeds, but 3 epochs instead of the seed's 15 (a 3-epoch trial took 24 s "
              "alone on the core, up to 2 min beside other work). The claim is about which rates are "
              "best; after 3 epochs the ranking of rates is measured, not the final accuracy.",
    OPT_SGD: "Per-image SGD (45,000 steps an epoch; one epoch took 100 s on one core, 15 epochs x 27 trials would "
             "take 11 hours): 1 epoch at the 9 learning rates with 3 seeds.",
    OPT_GD: "Full-batch GD (one step an epoch, 13 s on one core) at the seed's 15 epochs, one seed.",
}
# visionlab's own checks (no dissertation claim): kept and shown with the paired difference of their two arms
OWN = {"precision": ("bf16", "fp32")}
# the same studies re-run as the notebooks scaled their inputs (/255): `visionlab study run NAME --set normalize=scale`
SCALED = {f"{name}-normalize-scale": name for name in STUDIES}


# --- reading a study's kept files ---------------------------------------------------------------------------
def read_arms(folder: Path) -> dict[str, ArmStats]:
    """ArmStats by label from results.csv (the metric column follows ``status``)."""
    with open(folder / "results.csv", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    i_label, i_seed, i_status = header.index("label"), header.index("seed"), header.index("status")
    i_value = i_status + 1
    arms: dict[str, ArmStats] = {}
    for r in body:
        s = arms.setdefault(r[i_label], ArmStats(r[i_label]))
        s.trials += 1
        if r[i_status] in ("diverged", "failed"):
            s.diverged += r[i_status] == "diverged"
            s.failed += r[i_status] == "failed"
        elif r[i_value] not in ("", "None"):
            s.values.append(float(r[i_value]))
            s.by_seed[int(r[i_seed])] = float(r[i_value])
    for s in arms.values():
        s.mean, s.std, s.half = mean_std_ci(s.values)
    return arms


def read_summary(folder: Path) -> dict[str, dict]:
    with open(folder / "summary.csv", newline="") as f:
        return {r["label"]: r for r in csv.DictReader(f)}


def check_against_summary(folder: Path, arms: dict[str, ArmStats]) -> list[str]:
    """Differences between the recomputed arms and the study's own summary.csv (empty when they agree)."""
    bad = []
    for label, row in read_summary(folder).items():
        s = arms.get(label)
        if s is None and row["n"] in ("0", "") and row["trials"] in ("0", ""):
            continue  # an arm none of whose trials has run yet
        if s is None:
            bad.append(f"{folder.name}: {label} in summary.csv but not in results.csv")
            continue
        for key, ours in (("n", s.n), ("mean", s.mean), ("ci95_low", s.ci[0]), ("ci95_high", s.ci[1])):
            theirs = float(row[key]) if row[key] not in ("", "None", "nan") else float("nan")
            if not (math.isnan(theirs) and math.isnan(ours)) and abs(theirs - ours) > 1e-4:
                bad.append(f"{folder.name}: {label} {key} is {theirs} in summary.csv, {ours} from results.csv")
    return bad


# --- verdicts ---------------------------------------------------------------------------------------------
def _best(arms: dict[str, ArmStats], arm: str, worst: bool) -> tuple[str, str]:
    order = ranked(list(arms.values()))
    if worst:
        order = order[::-1]
    who = arms.get(arm)
    place = "worst" if worst else "best"
    if who is None or not who.n or len(order) < 2:
        return CANNOT, f"{arm} has no result"
    if who.n < 2:
        return CANNOT, "fewer than two seeds"
    first = order[0]
    if first is who:
        nxt = order[1]
        if separated(who, nxt):
            how = diff_text(who, nxt) if overlap(who, nxt) else f"interval clear of {nxt.label}'s {ci_text(nxt)}"
            return HOLDS, f"{place} of {len(order)}; vs {nxt.label}: {how}"
        return CANNOT, f"{place} in the mean, but not separated from {nxt.label} ({pct(nxt.mean)}, {ci_text(nxt)})"
    pos = order.index(who) + 1
    if separated(first, who):
        how = diff_text(first, who) if paired_diff(first, who) and overlap(first, who) else \
            f"{ci_text(first)} vs {ci_text(who)}"
        end = "bottom" if worst else "top"
        return DIFFERS, f"{first.label} is {place} ({pct(first.mean)}); {arm} is {_nth(pos)} of {len(order)} from the {end} ({how})"
    return CANNOT, f"{first.label} is {place} in the mean ({pct(first.mean)}), not separated from {arm}"


def _nth(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _beats(a: Optional[ArmStats], b: Optional[ArmStats], names: tuple[str, str]) -> tuple[str, str]:
    if a is None or b is None or a.n < 2 or b.n < 2:
        return CANNOT, f"{names[0] if a is None or a.n < 2 else names[1]} has fewer than two seeds"
    what = diff_text(a, b) if paired_diff(a, b) else f"{ci_text(a)} vs {ci_text(b)}"
    if separated(a, b):
        return (HOLDS if a.mean > b.mean else DIFFERS), f"{names[0]} - {names[1]}: {what}"
    return CANNOT, f"not separated: {names[0]} - {names[1]}: {what}"


def _reaches(s: Optional[ArmStats], value: float, arm: str) -> tuple[str, str]:
    if s is None or s.n < 2:
        return CANNOT, f"{arm} has fewer than two seeds"
    lo, hi = s.ci
    if lo <= value <= hi:
        return HOLDS, f"{pct(value)} lies inside {arm}'s interval {ci_text(s)}"
    return DIFFERS, f"{pct(value)} lies {'below' if value < lo else 'above'} {arm}'s interval {ci_text(s)}"


def _plateau(s: Optional[ArmStats], span: tuple[float, float], arm: str) -> tuple[str, str]:
    """Each seed's plateau epoch (stats.plateau: the first epoch within 0.5 point of the smoothed validation
    curve's top); holds when the claimed epochs meet the seeds' 95% interval, differs when they lie clear of it.
    The reason adds what training on to the end cost or gained (last epoch's validation accuracy - the top)."""
    from .stats import plateau

    curves = [c for c in (s.val_curves if s else []) if c and all(v is not None for v in c)]
    if len(curves) < 2:
        return CANNOT, f"{arm} has fewer than two seeds with a validation curve"
    at = [plateau(c) for c in curves]
    epochs = [float(e) for e, _ in at]
    m, _, h = mean_std_ci(epochs)
    after = [c[-1] - top for c, (_, top) in zip(curves, at)]
    am, _, ah = mean_std_ci(after)
    said = (f"plateau at epoch {', '.join(str(int(e)) for e in epochs)} (seeds; mean {m:.0f}, 95% CI "
            f"[{m - h:.0f}, {m + h:.0f}]); at the last epoch ({len(curves[0])}) validation accuracy is "
            f"{100 * am:+.1f} points [{100 * (am - ah):+.1f}, {100 * (am + ah):+.1f}] from the top")
    lo, hi = span
    if m + h < lo or m - h > hi:
        return DIFFERS, f"{said}: {'earlier' if m + h < lo else 'later'} than the claimed {lo:g}-{hi:g}"
    return HOLDS, f"{said}: the claimed {lo:g}-{hi:g} lies in or meets the interval"


def _optimizer_arms(arms: dict[str, ArmStats], optimizer: str) -> dict[str, ArmStats]:
    """The arms of one optimizer in an optimizer x learning-rate study (labels ``OPTIMIZER, lr=X``)."""
    return {label: a for label, a in arms.items() if label.startswith(f"{optimizer}, ")}


def _lr_of(label: str) -> Optional[float]:
    _, _, tail = label.rpartition("lr=")
    try:
        return float(tail)
    except ValueError:
        return None


def _best_lr(arms: dict[str, ArmStats], optimizer: str, span: tuple[float, float]) -> tuple[str, str]:
    """The best learning rate of ``optimizer`` (arms ``OPTIMIZER, lr=X``): holds when the best rate inside the
    claimed range beats every rate outside it (separated from the best outside), differs when a rate outside
    beats every rate inside, cannot tell when they are not separated or fewer than two seeds finished."""
    everyone = {lr: a for label, a in _optimizer_arms(arms, optimizer).items() if (lr := _lr_of(label)) is not None}
    mine = {lr: a for lr, a in everyone.items() if a.n}
    if not mine:
        return CANNOT, f"no {optimizer} arm has a result"
    gone = sorted(lr for lr, a in everyone.items() if not a.n and a.diverged)
    lost = f"; diverged on every seed at {', '.join(f'{x:g}' for x in gone)}" if gone else ""
    lo, hi = span
    inside = ranked([a for lr, a in mine.items() if lo <= lr <= hi])
    outside = ranked([a for lr, a in mine.items() if not lo <= lr <= hi])
    order = ranked(list(mine.values()))
    best = order[0]
    said = f"best {best.label.partition(', ')[2]} ({pct(best.mean)}, {ci_text(best)}){lost}"
    if not inside or not outside:
        if best.n < 2:
            return CANNOT, f"{said}; fewer than two seeds"
        return (HOLDS if inside else DIFFERS), (f"{said}; every rate that did not diverge is "
                                                f"{'in' if inside else 'outside'} the range")
    a, b = inside[0], outside[0]
    if a.n < 2 or b.n < 2:
        return CANNOT, f"{said}; fewer than two seeds for {a.label if a.n < 2 else b.label}"
    how = diff_text(a, b) if paired_diff(a, b) else f"{ci_text(a)} vs {ci_text(b)}"
    if separated(a, b):
        v = HOLDS if a.mean > b.mean else DIFFERS
        return v, f"{said}; best inside ({a.label.partition(', ')[2]}) - best outside ({b.label.partition(', ')[2]}): {how}"
    return CANNOT, (f"{said}; best inside ({a.label.partition(', ')[2]}) and outside ({b.label.partition(', ')[2]}) "
                    f"not separated: {how}")


def judge(check: Check, data: dict[str, dict[str, ArmStats]]) -> tuple[str, str]:
    arms = data.get(check.study, {})
    if check.kind == "plateau":
        return _plateau(arms.get(check.arm), check.span, check.arm)
    if check.kind == "best_lr":
        return _best_lr(arms, check.arm, check.span)
    if check.kind in ("best", "worst"):
        return _best(arms, check.arm, check.kind == "worst")
    if check.kind == "reaches":
        return _reaches(arms.get(check.arm), check.value, check.arm)
    ostudy, oarm = check.other
    return _beats(arms.get(check.arm), data.get(ostudy, {}).get(oarm), (check.arm, oarm))


def verdict(claim: Claim, data: dict[str, dict[str, ArmStats]]) -> tuple[str, str]:
    """All checks hold -> holds; any differs -> differs; else cannot tell. The reason joins the checks'."""
    results = [judge(c, data) for c in claim.checks]
    kinds = {v for v, _ in results}
    v = DIFFERS if DIFFERS in kinds else HOLDS if kinds == {HOLDS} else CANNOT
    return v, "; ".join(r for _, r in results)


def ours(claim: Claim, data: dict[str, dict[str, ArmStats]]) -> str:
    c = claim.checks[0]
    if c.kind == "best_lr":
        mine = ranked(list(_optimizer_arms(data.get(c.study, {}), c.arm).values()))
        if not mine:
            return "not run yet"
        return f"best {mine[0].label}: {pct(mine[0].mean)} {ci_text(mine[0])}, n={mine[0].n}"
    s = data.get(c.study, {}).get(c.arm)
    if c.kind == "plateau" and s is not None and s.val_curves:
        from .stats import plateau

        epochs = [plateau(v)[0] for v in s.val_curves if v and all(x is not None for x in v)]
        return f"{c.arm}: plateau at epochs {', '.join(str(e) for e in epochs)} of {len(s.val_curves[0])}"
    if s is None or not s.n:
        return "not run yet"
    return f"{c.arm}: {pct(s.mean)} {ci_text(s)}, n={s.n}"


# --- the page ----------------------------------------------------------------------------------------------
@dataclass
class Page:
    data: dict[str, dict[str, ArmStats]] = field(default_factory=dict)
    info: dict[str, dict] = field(default_factory=dict)


def load(kept: Path) -> Page:
    page = Page()
    for name in (*STUDIES, *SCALED, *OWN):
        folder = kept / name
        if (folder / "results.csv").is_file():
            page.data[name] = read_arms(folder)
            page.info[name] = json.loads((folder / "study.json").read_text())
            read_curves(folder, page.data[name])
    return page


def read_curves(folder: Path, arms: dict[str, ArmStats]) -> None:
    """Each arm's validation curves (one per finished seed, in seed order) from the kept trials' history.csv."""
    with open(folder / "results.csv", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["seed"]))
    for r in rows:
        hist = folder / TRIALS_DIR / r["trial_id"] / RunFolder.HISTORY
        if r["label"] not in arms or not hist.is_file():
            continue
        with open(hist, newline="") as f:
            curve = [float(h["val_acc"]) if h.get("val_acc") not in (None, "", "nan") else None
                     for h in csv.DictReader(f)]
        arms[r["label"]].val_curves.append(curve)


def _arms_needed(claim: Claim) -> list[tuple[str, str]]:
    """(study, arm) pairs the claim needs results for (a best_lr check needs its study, not one arm)."""
    return [(c.study, c.arm) for c in claim.checks if c.kind != "best_lr"] + [c.other for c in claim.checks if c.other]


def table_rows(page: Page) -> list[str]:
    rows = []
    for claim in CLAIMS:
        studies = sorted({c.study for c in claim.checks} | {c.other[0] for c in claim.checks if c.other})
        missing = [s for s in studies if s not in page.data]
        missing += [f"{st} {arm}" for st, arm in _arms_needed(claim)
                    if st in page.data and not getattr(page.data[st].get(arm), "n", 0)]
        if missing:
            v, why = PENDING, f"waiting for: {', '.join(missing)}"
        else:
            v, why = verdict(claim, page.data)
        rows.append(f"| {claim.text} | {', '.join(studies)} | {claim.reported} | {ours(claim, page.data)} | "
                    f"**{v}** | {why} |")
    return rows


def scaled_rows(page: Page) -> list[str]:
    """Each claim again on the /255 re-runs, where every study it needs was re-run with every arm it needs (a
    claim is never judged on a mix of scalings): does the scaling change the verdict?"""
    swapped = {name: page.data[variant] for variant, name in SCALED.items() if variant in page.data}
    data = {**page.data, **swapped}
    rows = []
    for claim in CLAIMS:
        needed = _arms_needed(claim)
        if not {c.study for c in claim.checks} <= set(swapped) or any(not getattr(data[st].get(arm), "n", 0)
                                                                for st, arm in needed):
            continue
        before = verdict(claim, page.data)[0] if all(st in page.data for st, _ in needed) else PENDING
        v, why = verdict(claim, data)
        change = "same verdict" if v == before else f"**changes** from {before}"
        rows.append(f"| {claim.text} | {before} | {ours(claim, data)} | **{v}** ({change}) | {why} |")
    return rows


def arm_table(arms: list[ArmStats]) -> list[str]:
    """A study's configurations as a markdown table: mean, 95% interval and seeds."""
    return ["| configuration | mean | 95% CI | n |", "|---|---:|---:|---:|",
            *[f"| {a.label} | {pct(a.mean)} | {ci_text(a)} | {a.n} |" for a in arms]]


def scaled_section(page: Page, docs: Path) -> list[str]:
    rows = scaled_rows(page)
    out = ["## With the notebooks' input scaling (/255)", ""]
    if not rows:
        return out + ["No study has been re-run with `--set normalize=scale` yet.", ""]
    out += ["The notebooks divided pixels by 255; our studies standardise them (below). These claims were re-checked",
            "on re-runs with `visionlab study run NAME --set normalize=scale` (only the configurations the claims",
            "need), kept in findings/NAME-normalize-scale/:", "",
            "| claim (dissertation) | standardised (table above) | ours with /255 | verdict with /255 | reason |",
            "|---|---|---|---|---|", *rows, ""]
    for variant in (v for v in SCALED if v in page.data):
        arms = [a for a in ranked(list(page.data[variant].values())) if a.n]
        out += [f"### {variant}", "", f"{sum(a.trials for a in arms)} trials; "
                f"{wall_time(page.info[variant], page_dir(variant, docs))}.", "",
                *arm_table(arms), ""]
        if (page_dir(variant, docs) / "bars.png").is_file():
            out += [f"![{variant}](findings/{variant}/bars.png)", ""]
    return out


def hardware(folder: Path) -> str:
    """' Ran on <CPU> in <precision> (<arms>).' from the kept trials' metrics.json ``compute`` records, one clause
    per machine and precision (a study finished in another checkout may have used two); arms named by
    results.csv's label for each trial id."""
    from ..training.precision import cpu_summary

    with open(folder / "results.csv", newline="") as f:
        label = {r["trial_id"]: r["label"] for r in csv.DictReader(f)}
    groups: dict[str, list[str]] = {}
    for m in sorted((folder / TRIALS_DIR).glob(FINISHED)):
        c = json.loads(m.read_text()).get("compute") or {}
        if not c:
            continue
        where = cpu_summary(c["cpu"]) if c.get("cpu") else c.get("gpu", "a GPU")
        arms = groups.setdefault(f"{where} in {c.get('precision', '?')}", [])
        arm = label.get(m.parent.name, m.parent.name)
        if arm not in arms:
            arms.append(arm)
    if not groups:
        return ""
    return " Ran on " + "; ".join(f"{k} ({', '.join(v)})" for k, v in groups.items()) + "."


def own_section(page: Page, docs: Path) -> list[str]:
    """visionlab's own checks (OWN): each arm's interval and the difference of the two arms paired by seed."""
    out = []
    for name, (a, b) in OWN.items():
        if name not in page.data:
            continue
        info, arms = page.info[name], page.data[name]
        if not out:
            out += ["## visionlab's own checks (not from the dissertation)", ""]
        out += [f"### {name}", "", info["spec"].get("description", ""), "",
                f"{sum(s.trials for s in arms.values())} trials; {wall_time(info, page_dir(name, docs))}."
                f"{hardware(page_dir(name, docs))}", "",
                *arm_table(ranked(list(arms.values()))), ""]
        if a in arms and b in arms and paired_diff(arms[a], arms[b]) is not None:
            verdict_ = "separated" if separated(arms[a], arms[b]) else "not separated"
            out += [f"{a} - {b}, paired by seed: {diff_text(arms[a], arms[b])} ({verdict_}).", ""]
        if (page_dir(name, docs) / "bars.png").is_file():
            out += [f"![{name}](findings/{name}/bars.png)", ""]
    return out


def trial_minutes(folder: Path) -> float:
    """The finished trials' own wall times summed (worker-minutes), from results.csv."""
    with open(folder / "results.csv", newline="") as f:
        return sum(float(r["wall_seconds"] or 0) for r in csv.DictReader(f)) / 60


def wall_time(info: dict, folder: Path) -> str:
    """How long a study took: the timed sessions' wall time, the sessions killed before they could record one,
    and the trials' own summed times (which a killed session's trials still carry)."""
    sessions = info.get("sessions", [])
    timed = [s for s in sessions if s.get("wall_seconds")]
    killed = len(sessions) - len(timed)
    secs = sum(float(s["wall_seconds"]) for s in timed)
    where = sorted({f"{plural(s.get('workers'), 'worker')} x {plural(s.get('threads'), 'thread')} on "
                    f"{plural(s.get('cores'), 'core')}" for s in sessions})
    text = (f"wall time {secs / 60:.0f} min in {plural(len(timed), 'timed session')}" if timed
            else "no session ran to its end")
    if killed and timed:
        text += f", plus {killed} stopped before the end (not timed)"
    elif killed:
        text += f" ({killed} stopped, not timed)"
    return (f"{text}; the trials' own times sum to {trial_minutes(folder):.0f} worker-min"
            f" ({', '.join(where) or 'workers not recorded'}; from study.json and results.csv)")


def render(page: Page, docs: Path = DOCS) -> str:
    out = ["# Findings: the dissertation's chapter-3 claims, re-tested", "",
           "Each row is one ranking claim of the dissertation, checked against our studies run at the dissertation's",
           "settings (not `--quick`) with 3 seeds each on `../shared/data/cifar10` (the JPEG copy of CIFAR-10).",
           "Ours: mean test accuracy, Student-t 95% interval, n seeds. **holds**: the data agree and separate it;",
           "**differs**: the data separate it the other way, or the reported figure lies outside our interval;",
           "**cannot tell**: intervals overlap and the differences paired by seed do not separate the arms.",
           "This page is generated by `python -m visionlab.studies.findings runs/studies` from the studies' files",
           "kept in [findings/](findings/) (results.csv, summary.csv, study.json); a test regenerates it from them.",
           "Each finished trial's config, metrics and history are kept there too: a study too long for one sitting",
           "continues in a new checkout after `python -m visionlab.studies.findings runs/studies --restore NAME`.",
           "", "| claim (dissertation) | study | dissertation | ours | verdict | reason |",
           "|---|---|---|---|---|---|", *table_rows(page), ""]
    for name, note in NOT_RUN_NOTE.items():
        out.append(f"Not run here: `{name}` ({note}).")
    out += ["", "## The studies", ""]
    for name in STUDIES:
        if name not in page.data:
            kept = len(list((page_dir(name, docs) / TRIALS_DIR).glob(FINISHED)))
            out += [f"### {name}", "", *([SIZING[name], ""] if name in SIZING else []),
                    f"Not finished: {kept} finished trials kept (`--restore {name}` continues it)." if kept
                    else "Not run yet.", ""]
            continue
        info = page.info[name]
        arms = ranked(list(page.data[name].values()))
        out += [f"### {name}", "", f"{info['spec'].get('description', '')}", "",
                f"{sum(a.trials for a in arms)} trials; {wall_time(info, page_dir(name, docs))}."
                f"{hardware(page_dir(name, docs))} Its own report: `visionlab study run {name} --seeds 3 --data "
                f"../shared/data/cifar10` writes `runs/studies/{name}/report.html`.", "",
                *([SIZING[name], ""] if name in SIZING else []), *arm_table(arms), ""]
        for plot in PLOTS:
            if (page_dir(name, docs) / plot).is_file():
                out += [f"![{name}](findings/{name}/{plot})", ""]
    out += scaled_section(page, docs)
    out += ["## What differs from the notebooks", "",
            "- Input scaling: models trained from scratch standardise their input with the training images'",
            "  per-channel mean and std; the notebooks divided by 255 (`visionlab study run NAME --set normalize=scale`",
            "  runs a study that way). With /255, plain SGD on the CNN swings 10-18 validation points between epochs. The",
            "  claims re-checked with /255 are in the section above; the others were not re-run with /255.",
            "- Where the dissertation does not say: the ANN uses Keras' default mini-batches of 32 (its 49.5% is",
            "  what batches of 32 give; the baseline study runs full-batch GD too), density and splits use the CNN",
            "  baseline's batch of 64, L1/L2 use Keras' default factor 0.01, early stopping patience 3 on val_loss.",
            "- Data: the JPEG copy of CIFAR-10 (`../shared/data/cifar10`), 45,000 train / 5,000 validation /",
            "  10,000 test unless a split study re-splits the pooled 60,000.",
            "- Reproducibility: a seed gives the same result bit for bit only with the same number of threads (the",
            "  sums run in another order). Final-epoch accuracy is the figure most affected: dense_ann's validation",
            "  accuracy moves up to 15 points from one epoch to the next. Example: dense_ann seed 2, interrupted and",
            "  resumed once with 2 threads, ended at 38.6% test accuracy; run again without a break on 1 thread, 44.1%",
            "  (train accuracy 73.6% both times). The table uses the uninterrupted run, like its other seeds.",
            "- Precision: each study section says the CPU and precision its kept trials ran in. A study finished on",
            "  another machine can mix them (density: dense_ann in fp32 on an AVX2 CPU, dense_cnn in bf16 on a Zen 4,",
            "  which is what `--precision auto` picks there). What bf16 itself costs on the CNN baseline is measured",
            "  by the precision study at the end of this page.", ""]
    out += own_section(page, docs)
    return "\n".join(out)


def page_dir(name: str, docs: Path = DOCS) -> Path:
    return docs / "findings" / name


def collect(studies: Path, docs: Path = DOCS) -> list[str]:
    """Copy each finished study's kept files (and its bars plot) into docs/findings/<name>/. A study still running
    (or stopped) keeps only its study.json and finished trials, so a new checkout can ``--restore`` and finish it;
    the page shows it once its summary exists."""
    from ..io import write_via

    copied = []
    for name in (*STUDIES, *SCALED, *OWN):
        src = studies / name
        if not (src / "summary.csv").is_file():
            done = sorted((src / TRIALS_DIR).glob(FINISHED)) if (src / STUDY_FILE).is_file() else []
            if done:
                dst = page_dir(name, docs)
                write_via(dst / STUDY_FILE, lambda tmp, source=src / STUDY_FILE: shutil.copyfile(source, tmp))
                for trial in done:
                    _copy_trial(trial.parent, dst / TRIALS_DIR / trial.parent.name)
                copied.append(f"{name} ({len(done)} finished trials, unfinished)")
            continue
        dst = page_dir(name, docs)
        bars = sorted((src / "plots").glob("*bars*.png")) if (src / "plots").is_dir() else []
        heat = [src / "plots" / "heatmap.png"] if (src / "plots" / "heatmap.png").is_file() else []
        for source, kept in [(src / f, f) for f in KEPT] + [(b, "bars.png") for b in bars[:1]] + \
                [(h, "heatmap.png") for h in heat]:
            write_via(dst / kept, lambda tmp, source=source: shutil.copyfile(source, tmp))
        for trial in sorted((src / TRIALS_DIR).glob(FINISHED)):
            _copy_trial(trial.parent, dst / TRIALS_DIR / trial.parent.name)
        copied.append(name)
    return copied


def _copy_trial(src: Path, dst: Path) -> None:
    """A finished trial's kept files (TRIAL_KEPT), each written atomically."""
    from ..io import write_via

    for f in TRIAL_KEPT:
        if (src / f).is_file():
            write_via(dst / f, lambda tmp, source=src / f: shutil.copyfile(source, tmp))


def restore(name: str, studies: Path, docs: Path = DOCS) -> list[str]:
    """Put study ``name``'s kept trials and study.json back into ``studies``/<name>/ so a rerun continues it.
    A trial folder already there is left alone (it may hold newer work); returns the trial ids restored."""
    from ..errors import ConfigError
    from ..io import write_via

    kept = page_dir(name, docs)
    if not (kept / STUDY_FILE).is_file():
        raise ConfigError(f"{kept} holds no kept study (no {STUDY_FILE}): nothing to restore")
    out = studies / name
    if not (out / STUDY_FILE).is_file():
        write_via(out / STUDY_FILE, lambda tmp: shutil.copyfile(kept / STUDY_FILE, tmp))
    restored = []
    for trial in sorted((kept / TRIALS_DIR).glob(FINISHED)):
        dst = out / TRIALS_DIR / trial.parent.name
        if dst.exists():
            continue
        _copy_trial(trial.parent, dst)
        restored.append(trial.parent.name)
    return restored


def report_verdict(text: str) -> str:
    """The verdict a study report's claim line (stats.claim_checks) states, in this page's words."""
    if "**holds**" in text:
        return HOLDS
    if "does not hold" in text:
        return DIFFERS
    return CANNOT


def check_against_reports(page: Page) -> list[str]:
    """Each best/worst claim a study's own spec lists must get the same verdict here as in its report."""
    from .spec import StudySpec
    from .stats import claim_checks

    bad = []
    for name, info in page.info.items():
        spec = StudySpec(**info["spec"])
        lines = claim_checks(spec, list(page.data[name].values()))
        for claim, line in zip(spec.claims, lines):
            kind, arm = ("best", claim.best) if claim.best else ("worst", claim.worst)
            ours, _ = judge(Check(kind, name, arm), page.data)
            if ours != report_verdict(line):
                bad.append(f"{name}: the report says {report_verdict(line)!r} for '{claim.text}', this page {ours!r}")
    return bad


def check(docs: Path = DOCS) -> list[str]:
    """Problems: summary.csv vs results.csv disagreements, verdicts that differ from the studies' own reports,
    and a findings.md that is not what the files give."""
    page = load(docs / "findings")
    bad = [b for name in page.data for b in check_against_summary(docs / "findings" / name, page.data[name])]
    bad += check_against_reports(page)
    if (docs / "findings.md").read_text() != render(page, docs):
        bad.append("docs/findings.md is not what the kept study files give: regenerate it")
    return bad


def findings_command(
        studies: Path = typer.Argument(Path("runs/studies"), help="folder of finished study folders"),
        docs: Path = typer.Option(DOCS, "--docs", help="the docs folder holding findings.md and findings/"),
        check_only: bool = typer.Option(False, "--check", help="only verify docs/findings.md against the kept files"),
        restore_name: Optional[str] = typer.Option(None, "--restore", metavar="NAME",
                                                   help="put study NAME's kept trials back into STUDIES/NAME/")) -> None:
    """Keep the finished studies' files under docs/findings/ and regenerate docs/findings.md, then check it."""
    from ..io import atomic_write_text

    if restore_name:
        from ..errors import ConfigError

        try:
            ids = restore(restore_name, studies, docs)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            raise typer.Exit(2) from None
        print(f"restored {len(ids)} finished trial(s) into {studies / restore_name}:", ", ".join(ids) or "none")
        return
    if not check_only:
        print("copied:", ", ".join(collect(studies, docs)) or "nothing")
        atomic_write_text(docs / "findings.md", render(load(docs / "findings"), docs))
    problems = check(docs)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        raise typer.Exit(1)


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m visionlab.studies.findings``: the typer command's exit code (2 for a usage error)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)
    app.command()(findings_command)
    try:
        app(args=argv, prog_name="python -m visionlab.studies.findings")
    except SystemExit as e:
        return int(e.code or 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
