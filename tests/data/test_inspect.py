"""`visionlab data inspect` and `data split` on folders made here: counts, unreadable files, manifests."""
import csv
from collections import Counter

import pytest
from PIL import Image

from visionlab.data.inspect import inspect, split_manifest
from visionlab.errors import DataError


def _folder(root, n=20, split=False):
    for s in (["Train", "Test"] if split else [""]):
        for c, colour in (("cat", (200, 0, 0)), ("dog", (0, 0, 200))):
            d = root / s / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (40 + i, 30), colour).save(d / f"{i}.jpg")
    return root


def test_inspect_counts_sizes_and_unreadable(tmp_path):
    root = _folder(tmp_path / "d", split=True)
    (root / "Train" / "cat" / "bad.jpg").write_bytes(b"not an image")
    s = inspect(root, tmp_path / "out")
    assert s["splits"]["train"] == {"cat": 20, "dog": 20} and s["splits"]["test"] == {"cat": 20, "dog": 20}
    assert s["size"]["min_w"] == 40 and s["size"]["max_w"] == 59 and s["size"]["max_h"] == 30
    assert [p for p, _ in s["unreadable"]] == [str(root / "Train" / "cat" / "bad.jpg")]
    assert (tmp_path / "out" / "class_distribution.png").stat().st_size > 5000
    assert (tmp_path / "out" / "samples.png").stat().st_size > 5000


def test_split_manifest_is_stratified_and_moves_nothing(tmp_path):
    root = _folder(tmp_path / "flat", n=40)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    dest = split_manifest(root, (70, 15, 15), seed=3, out=tmp_path / "m.csv")
    rows = list(csv.DictReader(open(dest)))
    assert len(rows) == 80
    per = Counter((r["split"], r["class"]) for r in rows)
    assert per[("train", "cat")] == per[("train", "dog")] == 28
    assert per[("val", "cat")] + per[("test", "cat")] == 12
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    again = list(csv.DictReader(open(split_manifest(root, (70, 15, 15), seed=3, out=tmp_path / "m2.csv"))))
    assert again == rows


def test_split_refuses_an_already_split_folder(tmp_path):
    with pytest.raises(DataError, match="already split"):
        split_manifest(_folder(tmp_path / "s", split=True), (70, 15, 15))
