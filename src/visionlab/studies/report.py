"""A study's report: summary.csv, the plots, and report.md and report.html from one list of sections.

Each section is built once, as blocks (paragraphs, tables, bullet lists), and rendered twice: to markdown and
to self-contained HTML. The sentences use two markdown marks, **bold** and `code`, which the HTML rendering
turns into tags.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..io import atomic_write_text, write_csv
from .folder import read_study, results_table, study_records
from .spec import StudySpec, fmt_value
from .stats import (ArmStats, best_per_row, ci_text, claim_checks, pct, ranking_statement, settle_answers,
                    summarize, tiers)


# --- blocks and sections --------------------------------------------------------------------------------
@dataclass
class Para:
    text: str
    cls: str = ""  # the HTML paragraph's class: note (the quick-run warning), muted (a footnote)
    only: str = ""  # "md" or "html": a block that one of the two renderings leaves out


@dataclass
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence]
    only: str = ""


@dataclass
class Bullets:
    items: list[str]
    only: str = ""


@dataclass
class Section:
    heading: str
    blocks: list = field(default_factory=list)


def _md_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    def cell(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.4f}"
        return str(v).replace("|", "\\|")
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _block_md(b) -> str:
    if isinstance(b, Para):
        return b.text
    if isinstance(b, Table):
        return _md_table(b.header, b.rows)
    return "\n".join(f"- {i}" for i in b.items)


def _block_html(b) -> str:
    from ..evaluation.report import bullets, para, table  # here: the evaluation package imports torch

    if isinstance(b, Para):
        return para(b.text, b.cls)
    if isinstance(b, Table):
        return table(b.header, b.rows)
    return bullets(b.items)


def section_md(s: Section) -> str:
    return "\n\n".join(_block_md(b) for b in s.blocks if b.only != "html")


def section_html(s: Section) -> str:
    from markupsafe import Markup

    return Markup("").join(_block_html(b) for b in s.blocks if b.only != "md")


def to_markdown(spec: StudySpec, sections: list[Section], figs: list[Path]) -> str:
    """report.md: the sections, then the plots as image links (beside report.md, under plots/)."""
    md = [f"# Study {spec.name}", "", spec.description.strip(), ""]
    for s in sections:
        md += [f"## {s.heading}", "", section_md(s), ""]
    md += ["## Plots", ""] + [f"![{f.stem}](plots/{f.name})" for f in figs] + [""]
    return "\n".join(md)


def to_html(spec: StudySpec, sections: list[Section], figs: list[Path], quick: bool) -> str:
    """report.html: the sections with the plots inline, after the first three (the numbers, then the figures)."""
    from ..evaluation.report import figures, page

    parts = [(s.heading, section_html(s)) for s in sections]
    parts.insert(min(3, len(parts)), ("Plots", figures(figs)))
    subtitle = spec.description.strip() + (" QUICK RUN." if quick else "")
    return page(f"Study {spec.name}" + (" (quick)" if quick else ""), parts, subtitle)


# --- the report --------------------------------------------------------------------------------------------
def write_report(out: str | Path) -> tuple[list[ArmStats], Path]:
    """Plots, summary.csv, report.md and report.html of the study folder ``out``; returns (stats, report.html)."""
    from . import plots  # here: matplotlib only when a report is drawn

    out = Path(out)
    info = read_study(out)
    spec = StudySpec(**info["spec"])
    quick = bool(info.get("quick"))
    records = study_records(out, info)
    stats = summarize(spec, records)
    write_csv(out / "summary.csv", [s.row() for s in stats])
    figs = plots.draw_all(spec, stats, out / "plots", quick)
    secs = sections(spec, info, records, stats, quick)
    atomic_write_text(out / "report.md", to_markdown(spec, secs, figs))
    atomic_write_text(out / "report.html", to_html(spec, secs, figs, quick))
    return stats, out / "report.html"


def sections(spec: StudySpec, info: dict, records: list[dict], stats: list[ArmStats], quick: bool) -> list[Section]:
    """Every part of the report but the plots, in order."""
    secs = [_what_was_run(spec, info, records, quick), _findings(spec, info, records, stats, quick),
            _per_configuration(spec, stats)]
    if spec.plateau:
        secs.append(_plateaus(spec, stats, quick))
    if spec.notes:
        secs.append(Section("Settings and assumptions", [Bullets(list(spec.notes))]))
    secs.append(_every_trial(spec, records))
    return secs


def _what_was_run(spec: StudySpec, info: dict, records: list[dict], quick: bool) -> Section:
    sessions = info.get("sessions", [])
    last = sessions[-1] if sessions else {}
    status_counts: dict[str, int] = {}
    for r in records:
        status_counts[r["status"]] = status_counts.get(r["status"], 0) + 1
    settings = []
    if quick:
        settings.append(Para(f"**QUICK RUN**: the spec's quick overrides {json.dumps(info.get('quick_overrides'))} "
                             f"were applied (fewer images and epochs). These are smoke-test numbers, not comparable "
                             f"with the dissertation's; run without `--quick` for those.", "note"))
    settings.append(Para(
        f"Data: `{info.get('data')}`. Seeds: {info.get('seeds')}. {len(spec.arms())} configurations x "
        f"{len(info.get('seeds', []))} seeds = {len(info['trials'])} trials; finished {len(records)} "
        f"({', '.join(f'{v} {k}' for k, v in sorted(status_counts.items())) or 'none'})."))
    base = dict(spec.base)
    settings.append(Para("Base settings: " + ", ".join(f"{k}={fmt_value(v)}" for k, v in base.items()) + "."))
    norm = base.get("normalize", "auto")
    settings.append(Para(f"Input scaling: normalize={norm}" + (
        ": /255 only, as the dissertation's notebooks." if norm == "scale" else
        ": models trained from scratch standardise with the training images' per-channel mean and std, where the "
        "dissertation's notebooks divided by 255 (`normalize: scale` in the base matches them).")))
    if last:
        wall = last.get("wall_seconds")
        sum_trials = sum(r.get("wall_seconds") or 0 for r in records)
        settings.append(Para(
            f"Last run: {last.get('ran', '?')} trials on {last.get('workers')} worker(s) x "
            f"{last.get('threads')} torch thread(s) ({last.get('backend')}, {last.get('cores')} cores)"
            + (f", wall time {wall:.0f} s" if isinstance(wall, (int, float)) else "")
            + f"; trial times add up to {sum_trials:.0f} s over {len(sessions)} session(s)."))
    settings.append(Para(f"Metric: {spec.metric}. Intervals: 95% Student-t over seeds."))
    return Section("What was run", settings)


def _findings(spec: StudySpec, info: dict, records: list[dict], stats: list[ArmStats], quick: bool) -> Section:
    findings = [ranking_statement(stats, spec.metric)]
    tl = tiers(stats)
    if len(tl) > 1 and any(math.isfinite(s.half) for s in stats):
        findings.append("Tiers (each holds the configurations the data cannot separate from its leader, by "
                        "intervals or paired differences): " + "; ".join(
            f"{i + 1}. " + ", ".join(s.label for s in t) for i, t in enumerate(tl)) + ".")
    findings += settle_answers(spec, stats, quick)
    findings += claim_checks(spec, stats)
    if spec.heatmap:
        findings.append(best_per_row(spec, stats))
    div = [s for s in stats if s.diverged]
    if div:
        findings.append("Diverged (loss NaN, infinite or exploding): " + ", ".join(
            f"{s.label} ({s.diverged}/{s.trials})" for s in div) + ".")
    failed = [r for r in records if r["status"] == "failed"]
    if failed:
        findings.append(f"{len(failed)} trial(s) failed and will run again on the next `visionlab study run` into "
                        f"this folder: " + "; ".join(f"{r['trial_id']}: {r.get('error')}" for r in failed[:5]))
    missing = len(info["trials"]) - len(records)
    if missing:
        findings.append(f"{missing} trial(s) have not run yet: rerun the same command to finish the study.")
    return Section("Findings", [Para(f) for f in findings])


def _per_configuration(spec: StudySpec, stats: list[ArmStats]) -> Section:
    has_rep = any(s.reported is not None for s in stats)
    header = ["configuration", "n", "mean", "std", "95% CI", "diverged", "failed"]
    if has_rep:
        header += ["dissertation", "ours - dissertation"]
    rows = []
    for s in stats:
        row = [s.label, s.n, pct(s.mean, 2), "n/a" if not math.isfinite(s.std) else f"{100 * s.std:.2f}",
               ci_text(s), s.diverged, s.failed]
        if has_rep:
            row += [pct(s.reported, 2) if s.reported is not None else "",
                    f"{100 * s.diff:+.1f} pts" if s.diff is not None else ""]
        rows.append(row)
    note = f"{spec.metric} in percent (std in points). " + (spec.reported_note.strip() if spec.reported_note else "")
    return Section("Per configuration", [Table(header, rows), Para(note, "muted")])


def _plateaus(spec: StudySpec, stats: list[ArmStats], quick: bool) -> Section:
    header = ["configuration", "epochs run", "plateau epoch", "plateau value (val acc)"]
    has_r = any(isinstance(v, dict) for v in spec.reported.values())
    if has_r:
        header += ["dissertation epoch", "dissertation value"]
    rows = []
    for s in stats:
        ep = max((len(c) for c in s.val_curves), default=0)
        row = [s.label, ep, s.plateau_epoch if s.plateau_epoch else "n/a", pct(s.plateau_value)]
        if has_r:
            e, v = spec.reported_value(s.label, "plateau_epoch"), spec.reported_value(s.label, "plateau_value")
            row += [f"{e:g}" if e is not None else "", pct(v) if v is not None else ""]
        rows.append(row)
    note = ("Plateau epoch: the first epoch whose smoothed mean validation accuracy (centred moving average) is "
            "within 0.5 points of the smoothed curve's maximum; plateau value: that maximum."
            + (" With the quick run's few epochs the curves may not have flattened yet." if quick else ""))
    return Section("Where validation accuracy stops improving", [Table(header, rows), Para(note, "muted")])


def _every_trial(spec: StudySpec, records: list[dict]) -> Section:
    """The HTML shows every trial's row; the markdown, where so wide a table does not read, points to results.csv."""
    th, trows = results_table(spec, records)
    keep = [i for i, h in enumerate(th) if h not in ("trial_id", "error")]
    return Section("Every trial", [
        Para(f"See `results.csv` ({len(records)} rows) and each trial's folder under `trials/`.", only="md"),
        Table([th[i] for i in keep], [[_short(r[i]) for i in keep] for r in trows], only="html"),
        Para("Also in results.csv; each trial's run folder (config, history, model, report) is under trials/.",
             "muted", only="html")])


def _short(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 4)
    return "" if v is None else v
