"""Statistics against hand-computed numbers; ranking, plateau, claims; the report and plots from known records."""
from __future__ import annotations

import json
import math

import pytest

from visionlab.studies import analyze
from visionlab.studies.folder import RESULTS_JSONL, STUDY_FILE, study_info as _study_info
from visionlab.studies.stats import ArmStats, mean_std_ci, plateau, ranking_statement, t975
from visionlab.studies.spec import load_spec, parse_spec


def test_mean_std_ci_by_hand():
    # 0.5, 0.6, 0.7: mean 0.6, s = 0.1, t(0.975, 2) = 4.3027, half = 4.3027 * 0.1 / sqrt(3) = 0.24841
    m, s, h = mean_std_ci([0.5, 0.6, 0.7])
    assert (m, s) == pytest.approx((0.6, 0.1))
    assert h == pytest.approx(0.248414, abs=1e-5)
    # 0.40, 0.42, 0.44, 0.46: s = sqrt(0.002 / 3) = 0.0258199, t(0.975, 3) = 3.18245, half = 0.0410852
    m, s, h = mean_std_ci([0.40, 0.42, 0.44, 0.46])
    assert (m, s, h) == pytest.approx((0.43, 0.0258199, 0.0410852), abs=1e-6)
    m, s, h = mean_std_ci([0.3])
    assert m == 0.3 and math.isnan(s) and math.isnan(h)


# The hand-written table of t(0.975, df) that analyze.py used where SciPy was missing (SciPy comes with
# scikit-learn, a dependency, so that branch never ran): SciPy's quantile must give the same interval figures.
OLD_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
            11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
            20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
            29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def test_t_quantile_matches_the_old_table():
    assert {df: round(t975(df), 3) for df in OLD_T975} == OLD_T975  # n = 2..31 seeds, then 41, 61, 121
    assert math.isnan(t975(0))


def _arm(label, values, reported=None):
    s = ArmStats(label, values=list(values), reported=reported)
    s.mean, s.std, s.half = mean_std_ci(s.values)
    return s


def test_ranking_says_when_the_data_cannot_rank():
    a, b, c = _arm("A", [0.60, 0.62, 0.64]), _arm("B", [0.59, 0.61, 0.63]), _arm("C", [0.30, 0.31, 0.32])
    text = ranking_statement([c, b, a])
    assert "**A**" in text and "the data cannot rank A and B" in text and "C" not in text.split("overlaps")[1]
    assert [[s.label for s in t] for t in analyze.tiers([a, b, c])] == [["A", "B"], ["C"]]
    text = ranking_statement([a, c])
    assert "the data rank it first" in text
    one = ranking_statement([_arm("A", [0.6]), _arm("B", [0.5])])
    assert "cannot rank" in one and "--seeds 3" in one


def test_paired_seeds_separate_what_intervals_cannot():
    # every seed moves both arms together (the seed picks the data split): B is 3 points below A on each seed
    a = _arm("A", [0.30, 0.36, 0.33])
    b = _arm("B", [0.27, 0.33, 0.30])
    a.by_seed, b.by_seed = {0: 0.30, 1: 0.36, 2: 0.33}, {0: 0.27, 1: 0.33, 2: 0.30}
    assert analyze.overlap(a, b)
    n, m, h = analyze.paired_diff(a, b)
    assert (n, m, h) == (3, pytest.approx(0.03), pytest.approx(0.0, abs=1e-12))
    text = ranking_statement([a, b])
    assert "the data cannot rank A and B" in text and "do separate A from B (+3.0 points" in text
    assert [[s.label for s in t] for t in analyze.tiers([a, b])] == [["A"], ["B"]]
    b.by_seed = {0: 0.31, 1: 0.32, 2: 0.30}  # inconsistent differences: +-1..4 points
    b.values = list(b.by_seed.values())
    b.mean, b.std, b.half = mean_std_ci(b.values)
    assert not analyze.separated(a, b) and "do not separate them either" in ranking_statement([a, b])


def test_plateau_epoch_and_value():
    curve = [0.05 * (e + 1) for e in range(10)] + [0.5] * 10  # rises to 0.5 at epoch 10, then flat
    assert plateau(curve) == (10, pytest.approx(0.5))
    noisy = [min(0.54, 0.006 * e) + (0.004 if e % 2 else -0.004) for e in range(1, 201)]  # reaches 54% at epoch 90
    ep, val = plateau(noisy)
    assert 85 <= ep <= 95 and val == pytest.approx(0.54, abs=0.005)
    assert plateau([0.1, None]) == (None, None)


def test_claims_and_settle():
    spec = parse_spec("""
name: t
configs: [{label: gd, optimizer: gd}, {label: mb32, optimizer: minibatch_sgd}, {label: bn, batchnorm: true}]
settle: [{question: "Which?", reported: 0.495, candidates: [gd, mb32]}]
claims: [{text: "bn is best", best: bn}, {text: "gd is worst", worst: gd}]
""")
    stats = [_arm("gd", [0.21, 0.22, 0.23]), _arm("mb32", [0.47, 0.475, 0.48]), _arm("bn", [0.60, 0.61, 0.62])]
    answer = analyze.settle_answers(spec, stats, quick=False)[0]
    assert "matches 'mb32'" in answer and "not 'gd'" in answer
    holds = analyze.claim_checks(spec, stats)
    assert "**holds**" in holds[0] and "**holds**" in holds[1]
    stats[2] = _arm("bn", [0.10, 0.11, 0.12])
    assert "does not hold" in analyze.claim_checks(spec, stats)[0]


def _fake_study(folder, name, seeds, value_of, status_of=lambda t: "ok", epochs=3):
    spec = load_spec(name)
    trials = spec.trials(seeds=list(seeds))
    info = _study_info(folder, spec, False, list(seeds), None, trials, 2, 1, "local")
    (folder / STUDY_FILE).write_text(json.dumps(info))
    with open(folder / RESULTS_JSONL, "w") as f:
        for t in trials:
            st = status_of(t)
            v = None if st != "ok" else value_of(t)
            curve = [None] if st != "ok" else [v * (e + 1) / epochs for e in range(epochs)]
            f.write(json.dumps({"trial_id": t.trial_id, "label": t.label, "seed": t.seed, "status": st,
                                "metric": "test_acc", "value": v, "test_acc": v, "wall_seconds": 1.0,
                                "fields": {k: t.config.get(k) for k in spec.arm_fields()},
                                "val_acc_curve": curve, "train_acc_curve": curve}) + "\n")
        f.write('{"trial_id": "torn li')  # a line cut by a kill is ignored
    return spec, trials


def test_heatmap_report_with_diverged_cells(tmp_path):
    lrs = load_spec("optimizers").grid["lr"]
    _fake_study(tmp_path, "optimizers", [0],
                value_of=lambda t: 0.2 + 0.05 * lrs.index(t.config["lr"]),
                status_of=lambda t: "diverged" if t.config["optimizer"] == "adam" and t.config["lr"] >= 0.3 else "ok")
    stats, html = analyze.write_report(tmp_path)
    for f in ("bars.png", "heatmap.png", "curves.png"):
        assert (tmp_path / "plots" / f).stat().st_size > 10_000
    by = {s.label: s for s in stats}
    assert by["adam, lr=0.6"].diverged == 1 and by["adam, lr=0.6"].n == 0
    assert by["sgd, lr=0.6"].mean == pytest.approx(0.6)
    text = html.read_text()
    assert "data:image/png;base64," in text and "Diverged" in text and "adam, lr=0.3 (1/1)" in text
    md = (tmp_path / "report.md").read_text()
    assert "one seed per configuration" in md and "![heatmap](plots/heatmap.png)" in md


def test_reported_comparison_and_settle_in_report(tmp_path):
    values = {"ANN, full-batch GD": 0.22, "ANN, mini-batch 32": 0.475, "CNN, mini-batch 64": 0.60}
    _fake_study(tmp_path, "baseline", [0, 1, 2], value_of=lambda t: values[t.label] + 0.002 * t.seed)
    stats, html = analyze.write_report(tmp_path)
    assert (tmp_path / "plots" / "vs_dissertation.png").exists()
    rows = {r["label"]: r for r in _csv(tmp_path / "summary.csv")}
    cnn = rows["CNN, mini-batch 64"]
    assert float(cnn["mean"]) == pytest.approx(0.602) and float(cnn["diff"]) == pytest.approx(0.005)
    assert float(cnn["ci95_high"]) - float(cnn["mean"]) == pytest.approx(4.3027 * 0.002 / 3 ** 0.5, rel=1e-3)
    md = (tmp_path / "report.md").read_text()
    assert "matches 'ANN, mini-batch 32'" in md and "+0.5 pts" in md
    assert "Input scaling: normalize=auto: models trained from scratch standardise" in md


def _csv(path):
    import csv

    return list(csv.DictReader(path.open()))
