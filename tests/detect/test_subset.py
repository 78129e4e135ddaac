"""--subset: a faces.json split or a list of names, with one clear line for each way it can be wrong."""
from __future__ import annotations

import json

import pytest

from visionlab.detect.evaluate import read_subset
from visionlab.errors import ConfigError, DataError


def test_subset_from_a_manifest_split_or_a_name_list(tmp_path):
    m = tmp_path / "faces.json"
    m.write_text(json.dumps({"photos": {"Train": ["a.jpg"], "Validation": ["b.jpg", "c.jpg"], "Test": []}}))
    assert read_subset(f"{m}:Validation") == {"b.jpg", "c.jpg"}
    assert read_subset(f"{m}:validation") == {"b.jpg", "c.jpg"}  # split names are case-insensitive
    names = tmp_path / "names.txt"
    names.write_text("# held out\nimages/b.jpg\n\nd.jpg\n")
    assert read_subset(str(names)) == {"b.jpg", "d.jpg"}
    with pytest.raises(ConfigError, match="has splits Train, Validation, Test"):
        read_subset(f"{m}:Nope")
    with pytest.raises(ConfigError, match="name the split"):
        read_subset(str(m))
    with pytest.raises(DataError, match="does not exist"):
        read_subset(str(tmp_path / "missing.json") + ":Test")
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="not a faces.json"):
        read_subset(f"{tmp_path / 'other.json'}:Test")
