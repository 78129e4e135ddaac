"""docs/findings.md is generated from the studies' kept results and cannot drift from them."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from visionlab.studies import findings as fd
from visionlab.studies.stats import ArmStats, mean_std_ci

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def _arm(label: str, values: list[float]) -> ArmStats:
    s = ArmStats(label, values=list(values), by_seed=dict(enumerate(values)))
    s.mean, s.std, s.half = mean_std_ci(values)
    return s


def _data(**arms: list[float]) -> dict[str, dict[str, ArmStats]]:
    return {"s": {k: _arm(k, v) for k, v in arms.items()}}


def test_best_holds_only_when_separated_from_the_runner_up():
    clear = _data(a=[0.60, 0.61, 0.62], b=[0.50, 0.51, 0.52], c=[0.40, 0.41, 0.40])
    assert fd.judge(fd.Check("best", "s", "a"), clear)[0] == fd.HOLDS
    assert fd.judge(fd.Check("best", "s", "b"), clear)[0] == fd.DIFFERS
    assert fd.judge(fd.Check("worst", "s", "c"), clear)[0] == fd.HOLDS
    # b is ahead of a on one seed only: intervals overlap, paired differences straddle zero
    tied = _data(a=[0.60, 0.50, 0.58], b=[0.55, 0.59, 0.56])
    assert fd.judge(fd.Check("best", "s", "a"), tied)[0] == fd.CANNOT


def test_paired_seeds_separate_what_intervals_cannot():
    # both arms swing with the seed (shared split and order), but a beats b by 2 points on every seed
    data = _data(a=[0.52, 0.62, 0.72], b=[0.50, 0.60, 0.70])
    v, why = fd.judge(fd.Check("beats", "s", "a", other=("s", "b")), data)
    assert v == fd.HOLDS and "paired seeds" in why
    assert fd.judge(fd.Check("beats", "s", "b", other=("s", "a")), data)[0] == fd.DIFFERS


def test_reaches_is_inside_the_interval():
    data = _data(a=[0.48, 0.50, 0.49])
    assert fd.judge(fd.Check("reaches", "s", "a", value=0.495), data)[0] == fd.HOLDS
    v, why = fd.judge(fd.Check("reaches", "s", "a", value=0.71), data)
    assert v == fd.DIFFERS and "above" in why
    assert fd.judge(fd.Check("reaches", "s", "a", value=0.5), _data(a=[0.5]))[0] == fd.CANNOT  # one seed


def test_a_claim_differs_if_any_check_differs():
    data = _data(bn=[0.60, 0.61, 0.62], none=[0.50, 0.51, 0.52])
    claim = fd.Claim("BN best at 71%", "71%", (fd.Check("best", "s", "bn"), fd.Check("reaches", "s", "bn", value=0.71)))
    assert fd.verdict(claim, data)[0] == fd.DIFFERS
    claim = fd.Claim("BN best at 61%", "61%", (fd.Check("best", "s", "bn"), fd.Check("reaches", "s", "bn", value=0.61)))
    assert fd.verdict(claim, data)[0] == fd.HOLDS


def _curves(label: str, curves: list[list[float]]) -> ArmStats:
    s = _arm(label, [c[-1] for c in curves])
    s.val_curves = [list(c) for c in curves]
    return s


def test_plateau_is_judged_on_each_seeds_curve():
    # three seeds rising 1 point an epoch to a top at epochs 10, 12 and 11, then flat for 40 epochs (seed-wise
    # plateau epochs 10-12 once the moving average settles; the claim 70-80 lies far later)
    def rise(top_at: int) -> list[float]:
        return [0.3 + 0.01 * min(e, top_at) for e in range(1, 51)]

    arms = {"e": {"ANN": _curves("ANN", [rise(10), rise(12), rise(11)])}}
    v, why = fd.judge(fd.Check("plateau", "e", "ANN", span=(70, 80)), arms)
    assert v == fd.DIFFERS and "earlier" in why
    assert fd.judge(fd.Check("plateau", "e", "ANN", span=(5, 12)), arms)[0] == fd.HOLDS
    one = {"e": {"ANN": _curves("ANN", [rise(10)])}}
    assert fd.judge(fd.Check("plateau", "e", "ANN", span=(5, 12)), one)[0] == fd.CANNOT


def test_best_learning_rate_must_be_separated_from_the_best_outside_the_range():
    lr = {"adam, lr=0.001": [0.60, 0.61, 0.62], "adam, lr=0.01": [0.55, 0.56, 0.57], "adam, lr=0.1": [0.30, 0.31, 0.29],
          "sgd, lr=0.1": [0.90, 0.91, 0.92]}  # another optimizer's arm never counts
    data = {"o": {k: _arm(k, v) for k, v in lr.items()}}
    assert fd.judge(fd.Check("best_lr", "o", "adam", span=(0.001, 0.01)), data)[0] == fd.HOLDS
    v, why = fd.judge(fd.Check("best_lr", "o", "adam", span=(0.01, 0.1)), data)
    assert v == fd.DIFFERS and "best 0.001" in why.replace("lr=", "")
    lr["adam, lr=0.1"] = [0.61, 0.59, 0.60]  # as good as the best inside: not separated
    data = {"o": {k: _arm(k, v) for k, v in lr.items()}}
    assert fd.judge(fd.Check("best_lr", "o", "adam", span=(0.001, 0.01)), data)[0] == fd.CANNOT
    assert fd.judge(fd.Check("best_lr", "o", "rmsprop", span=(0.001, 0.01)), data)[0] == fd.CANNOT  # not run


@pytest.mark.skipif(not (DOCS / "findings").is_dir(), reason="no kept study results in docs/findings/")
def test_findings_page_matches_the_kept_study_files():
    assert fd.check(DOCS) == []
    page = (DOCS / "findings.md").read_text()
    for name in fd.load(DOCS / "findings").data:
        assert f"### {name}" in page
    assert page.count("| **") >= len(fd.CLAIMS)  # every claim has a verdict cell


@pytest.mark.skipif(not (DOCS / "findings").is_dir(), reason="no kept study results in docs/findings/")
def test_an_edited_result_is_caught(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(DOCS / "findings", docs / "findings")
    shutil.copyfile(DOCS / "findings.md", docs / "findings.md")
    assert fd.check(docs) == []
    name = next(iter(fd.load(docs / "findings").data))
    results = docs / "findings" / name / "results.csv"
    with open(results, newline="") as f:
        rows = list(csv.reader(f))
    col = rows[0].index("status") + 1
    row = next(r for r in rows[1:] if r[col] not in ("", "None"))
    row[col] = f"{float(row[col]) - 0.2:.5f}"
    with open(results, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    problems = fd.check(docs)
    assert any("summary.csv" in p for p in problems)


def test_verdicts_agree_with_the_study_reports_wording():
    import yaml

    from visionlab.studies.spec import parse_spec
    from visionlab.studies.stats import claim_checks

    spec = parse_spec(yaml.safe_dump({
        "name": "s", "base": {"data": "synthetic"}, "grid": {"activation": ["relu", "elu", "tanh"]},
        "claims": [{"text": "elu best", "best": "elu"}, {"text": "tanh worst", "worst": "tanh"},
                   {"text": "relu best", "best": "relu"}]}))
    cases = [dict(elu=[0.60, 0.61, 0.62], relu=[0.50, 0.51, 0.52], tanh=[0.40, 0.41, 0.40]),   # clear
             dict(elu=[0.60, 0.50, 0.58], relu=[0.55, 0.59, 0.56], tanh=[0.57, 0.52, 0.50])]   # tied
    for arms in cases:
        data = _data(**arms)["s"]
        for claim, line in zip(spec.claims, claim_checks(spec, list(data.values()))):
            kind, arm = ("best", claim.best) if claim.best else ("worst", claim.worst)
            assert fd.judge(fd.Check(kind, "s", arm), {"s": data})[0] == fd.report_verdict(line), line


def test_scaled_reruns_say_whether_the_verdict_changes():
    mb32 = "ANN, mini-batch 32"
    page = fd.Page(data={"baseline": {mb32: _arm(mb32, [0.481, 0.484, 0.479])},
                         "baseline-normalize-scale": {mb32: _arm(mb32, [0.490, 0.499, 0.494])}})
    rows = fd.scaled_rows(page)
    assert len(rows) == 1  # only the claim whose arms were all re-run (not the GD, CNN or dense ANN ones)
    assert rows[0].startswith("| The baseline ANN reaches 49.5% (Keras' default mini-batches of 32) | differs |")
    assert "**holds** (**changes** from differs)" in rows[0] and "49.5% lies inside" in rows[0]
    page.data["baseline-normalize-scale"][mb32] = _arm(mb32, [0.471, 0.474, 0.469])
    assert "**differs** (same verdict)" in fd.scaled_rows(page)[0]
    assert fd.scaled_rows(fd.Page(data={"baseline": page.data["baseline"]})) == []


def test_a_claim_is_never_judged_on_a_mix_of_scalings():
    mb32 = "ANN, mini-batch 32"
    page = fd.Page(data={"baseline": {mb32: _arm(mb32, [0.481, 0.484, 0.479])},
                         "density": {"dense_ann": _arm("dense_ann", [0.40, 0.41, 0.39])},
                         "baseline-normalize-scale": {mb32: _arm(mb32, [0.490, 0.499, 0.494])}})
    texts = [r.split(" | ")[0] for r in fd.scaled_rows(page)]
    assert not any("dense ANN" in t for t in texts)  # density was not re-run with /255
    page.data["density-normalize-scale"] = {"dense_ann": _arm("dense_ann", [0.55, 0.56, 0.57])}
    dense = [r for r in fd.scaled_rows(page) if "dense ANN" in r]
    assert len(dense) == 1 and "**holds** (**changes** from differs)" in dense[0]


def test_kept_trials_let_a_new_checkout_finish_a_study(tmp_path):
    """A study split over two sittings: the first's finished trials are kept (small files, no weights) and,
    restored into a fresh runs/studies, counted as finished, so the second sitting runs only the rest."""
    from visionlab.studies import run_study
    from visionlab.studies.findings import TRIAL_KEPT, collect, restore

    from .conftest import write_spec

    spec = write_spec(tmp_path, "density", [{"label": "a", "lr": 0.003}, {"label": "b", "lr": 0.01}])
    first_out = tmp_path / "first" / "density"
    first = run_study(spec, workers=2, out=first_out, quiet=True, only=["a"])
    docs = tmp_path / "docs"
    assert collect(tmp_path / "first", docs) == ["density"]
    kept = docs / "findings" / "density" / "trials"
    assert sorted(p.name for p in kept.iterdir()) == ["a__s0", "a__s1"]
    assert sorted(p.name for p in (kept / "a__s0").iterdir()) == sorted(TRIAL_KEPT)  # no weights, no predictions
    assert restore("density", tmp_path / "second", docs) == ["a__s0", "a__s1"]
    assert restore("density", tmp_path / "second", docs) == []  # what is there already is left alone
    second = run_study(spec, workers=2, out=tmp_path / "second" / "density", quiet=True)
    assert second.ran == 2 and second.skipped == 2
    values = {r["trial_id"]: r["value"] for r in second.records}
    assert {r["trial_id"]: r["value"] for r in first.records}.items() <= values.items()
    assert sorted(values) == ["a__s0", "a__s1", "b__s0", "b__s1"]
    sessions = json.loads((tmp_path / "second" / "density" / "study.json").read_text())["sessions"]
    assert len(sessions) == 2  # the first sitting's session (and its wall time) carried over


def test_an_unfinished_study_keeps_its_finished_trials(tmp_path):
    """A study stopped before its summary (a long one, mid-way): its finished trials and study.json are kept, no
    summary or page files, and a new checkout restores and finishes it."""
    from visionlab.studies import run_study
    from visionlab.studies.findings import collect, restore

    from .conftest import write_spec

    spec = write_spec(tmp_path, "epochs", [{"label": "a", "lr": 0.003}, {"label": "b", "lr": 0.01}])
    out = tmp_path / "first" / "epochs"
    run_study(spec, workers=2, out=out, quiet=True, only=["a"])
    for f in ("summary.csv", "results.csv"):  # as when the run was stopped before writing them
        (out / f).unlink()
    docs = tmp_path / "docs"
    assert collect(tmp_path / "first", docs) == ["epochs (2 finished trials, unfinished)"]
    kept = docs / "findings" / "epochs"
    assert sorted(p.name for p in kept.iterdir()) == ["study.json", "trials"]
    assert restore("epochs", tmp_path / "second", docs) == ["a__s0", "a__s1"]
    second = run_study(spec, workers=2, out=tmp_path / "second" / "epochs", quiet=True)
    assert second.ran == 2 and second.skipped == 2


def test_restore_refuses_a_study_that_was_never_kept(tmp_path):
    from visionlab.errors import ConfigError
    from visionlab.studies.findings import restore

    with pytest.raises(ConfigError, match="no kept study"):
        restore("density", tmp_path / "studies", tmp_path / "docs")
    argv = [str(tmp_path / "studies"), "--docs", str(tmp_path / "docs"), "--restore", "density"]
    assert fd.main(argv) == 2 and not (tmp_path / "studies").exists()  # one-line error, nothing written


def test_the_precision_check_is_shown_from_its_kept_trials():
    kept = DOCS / "findings" / "precision"
    if not (kept / "results.csv").is_file():
        pytest.skip("the precision study has not been kept in docs/findings/precision/")
    with open(kept / "results.csv", newline="") as f:
        rows = {(r["label"], int(r["seed"])): float(r["test_acc"]) for r in csv.DictReader(f)}
    seeds = sorted({s for lab, s in rows if lab == "fp32"} & {s for lab, s in rows if lab == "bf16"})
    d = [rows["bf16", s] - rows["fp32", s] for s in seeds]
    page = fd.render(fd.load(DOCS / "findings"), DOCS)
    assert f"bf16 - fp32, paired by seed: {100 * sum(d) / len(d):+.1f} points" in page
    # the CPU and the precisions come from the trials' own compute records, not from this machine
    compute = json.loads(next((kept / "trials").glob("bf16__s*/metrics.json")).read_text())["compute"]
    assert f"Ran on {compute['cpu']['model']} ({compute['cpu']['isa']};" in page and ") in bf16 (bf16)" in page
