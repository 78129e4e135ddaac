"""`visionlab study ...`: list, run and report studies (mounted on the main CLI in visionlab/cli.py)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Studies: the dissertation's experiments as grids x seeds with intervals and a report.")
out = Console(width=None if sys.stdout.isatty() else 160)  # tables stay readable when piped, as in visionlab/cli.py


@app.command("list")
def list_cmd() -> None:
    """The built-in studies with their size (configurations x seeds), quick size, and what a trial costs on this
    machine: measured where one has run here (runs/studies/NAME), else estimated from the model's size."""
    from .cost import describe, trial_costs
    from .spec import builtin_names, load_spec

    t = Table("study", "trials", "quick", "a trial here", "study, 1 worker", "quick study", "description")
    t.columns[0].no_wrap = True
    for name in builtin_names():
        s = load_spec(name)
        arms = len(s.arms())
        trial, whole = describe(trial_costs(s), len(s.seeds))
        _, quick = describe(trial_costs(s, quick=True), len(s.resolved_seeds(quick=True)))
        t.add_row(name, f"{arms} x {len(s.seeds)} = {arms * len(s.seeds)}",
                  f"{arms} x {len(s.resolved_seeds(quick=True))}", trial, whole, quick, " ".join(s.description.split()))
    out.print(t)
    out.print("estimates: training FLOPs at a quarter of this machine's float32 matmul rate; they can be several "
              "times off (bf16 speeds large CNNs up), and a trial run here replaces them; --workers N divides a "
              "study's time by up to N")
    out.print("run one: visionlab study run NAME [--quick] [--data DIR]; a YAML file with the same keys works too")


@app.command("run")
def run_cmd(study: str = typer.Argument(..., help="a built-in study name (visionlab study list) or a YAML file"),
            data: Optional[str] = typer.Option(None, "--data", help="image folder, cifar10 or synthetic "
                                                                    "(default: the study's, cifar10)"),
            seeds: Optional[int] = typer.Option(None, "--seeds", help="run seeds 0..N-1 instead of the study's"),
            quick: bool = typer.Option(False, "--quick", help="the study's smoke-test overrides (fewer images, "
                                                              "epochs); the report says so"),
            workers: Optional[int] = typer.Option(None, "--workers", help="trials in parallel (default: one per core)"),
            out_dir: Optional[Path] = typer.Option(None, "--out", help="study folder (default runs/studies/NAME); "
                                                                       "rerun into it to continue"),
            backend: str = typer.Option("local", "--backend", help="local (worker processes) or ray"),
            ray_address: Optional[str] = typer.Option(None, "--ray-address", help="a Ray cluster (default: start a "
                                                                                  "local one)"),
            quiet: bool = typer.Option(False, "--quiet", help="no progress output"),
            only: Optional[list[str]] = typer.Option(None, "--only", help="run only the configuration with this "
                                                                          "label (repeatable); the rest stay 'not run'"),
            set_: Optional[list[str]] = typer.Option(None, "--set", help="FIELD=VALUE in the study's base for every "
                                                                         "trial (repeatable), e.g. normalize=scale; "
                                                                         "runs as NAME-FIELD-VALUE")
            ) -> None:
    """Run a study (or continue it: finished trials are kept) and write results.csv, plots and the report."""
    from .runner import run_study

    res = run_study(study, data=data, seeds=seeds, quick=quick, workers=workers, out=out_dir, backend=backend,
                    ray_address=ray_address, quiet=quiet, only=only, base=_parse_sets(set_ or []))
    _print_summary(res.summary)
    out.print(f"results: {res.path / 'results.csv'}   report: {res.report}")


def _parse_sets(items: list[str]) -> dict:
    """``--set`` pairs, each value read as YAML (``lr=0.1`` is a number, ``normalize=scale`` a string)."""
    import yaml

    from ..errors import ConfigError

    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set {item!r}: write FIELD=VALUE, e.g. --set normalize=scale")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({e})") from None
    return out


@app.command("report")
def report_cmd(folder: Path = typer.Argument(..., help="a study folder written by `visionlab study run`")) -> None:
    """Rewrite a study's results.csv, plots and report from its finished trials."""
    from .runner import report_study

    res = report_study(folder)
    _print_summary(res.summary)
    out.print(f"report: {res.report}")


def _print_summary(stats) -> None:
    from .stats import ci_text, pct

    t = Table("configuration", "n", "mean", "95% CI", "diverged", "failed", "dissertation")
    for s in stats:
        t.add_row(s.label, str(s.n), pct(s.mean), ci_text(s), str(s.diverged), str(s.failed),
                  pct(s.reported) if s.reported is not None else "")
    out.print(t)


def main() -> None:
    from ..cli_errors import run_app

    run_app(app)


if __name__ == "__main__":
    main()
