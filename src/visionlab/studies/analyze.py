"""The old home of a study's statistics and report, now stats.py (intervals, paired differences, verdicts) and
report.py (report.md and report.html): the names stay importable from here for scripts written against it."""
from .folder import RESULT_COLUMNS, results_table
from .report import write_report
from .stats import (ArmStats, best_per_row, ci_text, claim_checks, diff_text, mean_curve, mean_std_ci, overlap,
                    paired_diff, pct, plateau, ranked, ranking_statement, separated, settle_answers, smooth,
                    smoothing_window, summarize, t975, tiers)

__all__ = ["RESULT_COLUMNS", "ArmStats", "best_per_row", "ci_text", "claim_checks", "diff_text", "mean_curve",
           "mean_std_ci", "overlap", "paired_diff", "pct", "plateau", "ranked", "ranking_statement", "results_table",
           "separated", "settle_answers", "smooth", "smoothing_window", "summarize", "t975", "tiers", "write_report"]
