"""Studies: a grid of RunConfig fields x seeds, run in parallel, analysed with confidence intervals.

``run_study("activations", quick=True)`` runs a built-in study; ``report_study(folder)`` rewrites its report.
"""
from .runner import StudyResult, report_study, run_study
from .spec import StudySpec, builtin_names, load_spec

__all__ = ["StudyResult", "StudySpec", "builtin_names", "load_spec", "report_study", "run_study"]
