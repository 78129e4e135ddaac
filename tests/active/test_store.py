import json
import os
import shutil

import pytest

from visionlab.active.store import DuplicateLabelError, LabelStore, read_jsonl, sha256_file
from visionlab.errors import ConfigError, DataError

from .conftest import snapshot


@pytest.fixture
def store(folders, tmp_path):
    pool, _ = folders
    return LabelStore(tmp_path / "proj" / "labels.jsonl", pool, ["mask", "nomask"])


def test_each_label_is_fsynced_on_append(store, folders, monkeypatch):
    (store.path.parent).mkdir()
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd))[1])
    store.add(folders[0] / "img_000.png", "mask", model_version="r0-abc")
    store.add("img_001.png", "nomask", source="oracle")
    assert synced.count(str(store.path)) == 2
    recs = read_jsonl(store.path)
    assert [r["path"] for r in recs] == ["img_000.png", "img_001.png"]
    r = recs[0]
    assert r["op"] == "label" and r["source"] == "human" and r["model_version"] == "r0-abc"
    assert r["sha256"] == sha256_file(folders[0] / "img_000.png") and "T" in r["time"]


def test_torn_last_line_is_ignored_then_repaired(store):
    store.path.parent.mkdir()
    a = store.add("img_000.png", "mask")
    with open(store.path, "ab") as f:  # what a kill halfway through a write leaves
        f.write(b'{"id": 2, "op": "label", "path": "img_001.png", "sha2')
    assert list(store.current()) == [a.sha256]
    b = store.add("img_002.png", "nomask")
    assert b.id == 2
    lines = store.path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and json.loads(lines[-2])["path"] == "img_002.png"
    assert {lab.path for lab in store.labels()} == {"img_000.png", "img_002.png"}


def test_duplicates_refused_and_relabel_goes_through_undo(store, folders):
    store.path.parent.mkdir()
    a = store.add("img_000.png", "mask")
    with pytest.raises(DuplicateLabelError, match="undo"):
        store.add("img_000.png", "nomask")
    twin = folders[0] / "batch2" / "copy_of_000.png"  # same content under another name
    shutil.copyfile(folders[0] / "img_000.png", twin)
    with pytest.raises(DuplicateLabelError):
        store.add(twin, "mask")
    undone = store.undo()
    assert undone.id == a.id and store.current() == {}
    b = store.add("img_000.png", "nomask")
    assert [(lab.path, lab.label) for lab in store.labels()] == [("img_000.png", "nomask")]
    recs = read_jsonl(store.path)
    assert [r["op"] for r in recs] == ["label", "undo", "label"] and recs[1]["ref"] == a.id
    assert b.id == 3
    with pytest.raises(DataError):
        store.undo(a.id)  # already undone


def test_bad_inputs_are_readable_errors(store, tmp_path):
    store.path.parent.mkdir()
    with pytest.raises(ConfigError, match="unknown class"):
        store.add("img_000.png", "cat")
    with pytest.raises(ConfigError, match="source"):
        store.add("img_000.png", "mask", source="guess")
    outside = tmp_path / "labelled" / "mask" / "l0.png"
    with pytest.raises(DataError, match="not inside the pool"):
        store.add(outside, "mask")
    assert store.undo() is None


@pytest.mark.parametrize("mode", ["copy", "link"])
def test_export_leaves_originals_untouched(store, folders, tmp_path, mode):
    store.path.parent.mkdir()
    pool = folders[0]
    before = snapshot(pool)
    store.add("img_000.png", "mask")
    store.add("batch2/img_019.png", "nomask")
    store.add("img_002.png", "mask")
    store.undo()
    dest = tmp_path / "export"
    counts = store.export(dest, mode=mode)
    assert counts == {"mask": 1, "nomask": 1}
    assert sha256_file(dest / "mask" / "img_000.png") == before["img_000.png"][0]
    assert (dest / "nomask" / "img_019.png").is_symlink() == (mode == "link")
    assert snapshot(pool) == before  # same files, same bytes, same mtimes
    assert store.export(dest, mode=mode) == counts  # idempotent
    with pytest.raises(ConfigError, match="inside"):
        store.export(pool / "exported")
    assert snapshot(pool) == before
