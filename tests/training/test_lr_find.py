"""The learning-rate range test: the ramp, the suggestion rule on a known curve, and a fast synthetic run."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

import visionlab
from visionlab.errors import ConfigError
from visionlab.training.lr_find import ramp, smooth, suggest

SYN = dict(data="synthetic", synthetic_per_class=60, image_size=32, model="small_cnn", optimizer="minibatch_sgd",
           batch_size=16, quiet=True, threads=1)


def test_ramp_is_exponential_from_start_to_end():
    r = ramp(1e-6, 1.0, 61)
    assert r[0] == pytest.approx(1e-6) and r[-1] == pytest.approx(1.0)
    ratios = r[1:] / r[:-1]
    assert np.allclose(ratios, 10 ** 0.1)  # 6 decades over 60 intervals


def test_smoothing_is_debiased():
    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # a constant stays itself from step 1
    s = smooth([1.0] * 50 + [3.0] * 50)
    assert s[49] == pytest.approx(1.0) and 1.0 < s[60] < 3.0


def test_suggestions_on_a_known_curve():
    lrs = list(ramp(1e-6, 10.0, 200))
    x = np.log10(lrs)
    # a sigmoid drop centred at 1e-3 (steepest there), a minimum at 1e-1, then a blow-up
    curve = 2.3 - 1.5 / (1 + np.exp(-(x + 3) * 3)) + np.where(x > -1, (x + 1) ** 2 * 3, 0)
    steep, min_div10 = suggest(lrs, list(curve))
    assert math.log10(steep) == pytest.approx(-3, abs=0.1)
    assert math.log10(min_div10) == pytest.approx(-2, abs=0.1)


def test_lr_find_on_synthetic_data_writes_curve_and_suggests_a_rate_inside_the_range(tmp_path):
    res = visionlab.lr_find(**SYN, out=str(tmp_path / "lf"), start_lr=1e-5, end_lr=100.0, steps=80)
    assert res.stopped_early and len(res.lrs) < 80  # plain SGD at lr 10..100 blows the loss up before the end
    assert 1e-5 < res.suggested < res.lrs[-1]
    assert res.suggested == res.min_div10
    # the loss at the end of the ramp is far above its minimum: the test really crossed the blow-up
    assert max(res.smoothed[-3:]) > 2 * min(res.smoothed)
    rows = list(csv.DictReader(open(res.files["csv"])))
    assert len(rows) == len(res.lrs) and float(rows[0]["lr"]) == pytest.approx(1e-5)
    summary = json.loads(res.files["json"].read_text())
    assert summary["suggested_lr"] == pytest.approx(res.suggested)
    assert res.files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="already holds"):
        visionlab.lr_find(**SYN, out=str(tmp_path / "lf"), steps=10)


def test_lr_find_refuses_full_batch_and_bad_ranges(tmp_path):
    with pytest.raises(ConfigError, match="mini-batch"):
        visionlab.lr_find(**{**SYN, "optimizer": "gd"}, out=str(tmp_path / "a"), steps=10)
    with pytest.raises(ConfigError, match="start-lr"):
        visionlab.lr_find(**SYN, out=str(tmp_path / "b"), start_lr=1.0, end_lr=0.1, steps=10)


def test_cli_prints_the_suggestion_and_the_curve(tmp_path, capsys):
    from visionlab.cli import main

    with pytest.raises(SystemExit) as e:
        main(["lr-find", "--data", "synthetic", "--synthetic-per-class", "30", "--image-size", "32", "--model",
              "small_cnn", "--batch-size", "16", "--threads", "1", "--quiet", "--steps", "20", "--out",
              str(tmp_path / "lf")])
    assert e.value.code in (0, None)
    text = capsys.readouterr().out
    suggested = json.loads((tmp_path / "lf" / "lr_find.json").read_text())["suggested_lr"]
    assert f"suggested --lr {suggested:.2g}" in text and str(tmp_path / "lf" / "lr_find.png") in text
