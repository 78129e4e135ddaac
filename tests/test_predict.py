"""How predict picks a label: the run's validation threshold where it chose one, the top class otherwise or on
request, or a threshold given; decisions checked on real run-folder files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from visionlab.errors import ConfigError
from visionlab.predict import decision

CLASSES = ["WithMask", "WithoutMask"]


@pytest.fixture
def run(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"test": {"threshold": 0.8, "positive_class": "WithoutMask"}}))
    return tmp_path


def test_validation_threshold_is_applied_to_the_positive_class(run):
    d = decision(run, CLASSES)
    assert d.threshold == 0.8 and d.positive == 1 and "chosen on the run's validation split" in d.rule
    assert d.label(np.array([0.25, 0.75])) == 0  # the top class is WithoutMask, but 0.75 < 0.8
    assert d.label(np.array([0.15, 0.85])) == 1


def test_argmax_and_a_given_threshold(run):
    assert decision(run, CLASSES, "argmax").label(np.array([0.25, 0.75])) == 1
    d = decision(run, CLASSES, 0.3)
    assert d.threshold == 0.3 and d.positive == 1 and d.label(np.array([0.65, 0.35])) == 1
    assert decision(run, CLASSES, "0.9").label(np.array([0.15, 0.85])) == 0


def test_without_a_saved_threshold_or_with_three_classes_the_top_class_and_why(tmp_path, run):
    bare = tmp_path / "bare"
    bare.mkdir()
    assert decision(bare, CLASSES).threshold is None  # no metrics.json
    assert "no threshold chosen" in decision(bare, CLASSES).rule
    three = decision(run, ["a", "b", "c"])
    assert three.threshold is None and "more than two classes" in three.rule
    assert three.label(np.array([0.2, 0.5, 0.3])) == 1


@pytest.mark.parametrize("bad", ["median", "1.5"])
def test_a_bad_threshold_is_one_clear_error(run, bad):
    with pytest.raises(ConfigError, match="--threshold"):
        decision(run, CLASSES, bad)


def test_a_number_needs_two_classes(run):
    with pytest.raises(ConfigError, match="two-class"):
        decision(run, ["a", "b", "c"], 0.5)
