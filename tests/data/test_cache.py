"""The decode cache: a second load skips decoding, any file change invalidates it, nothing lands beside the data."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from data_helpers import write_tree
from visionlab.data.cache import load_or_decode, native_size
from visionlab.io import cache_root
from visionlab.data.checks import list_files
from visionlab.images import decode_image


@pytest.fixture
def tree(tmp_path) -> tuple[Path, list[str]]:
    root = write_tree(tmp_path / "data", {"a": 4, "b": 3}, size=10)
    (root / "b" / "zz_broken.jpg").write_bytes(b"not a jpeg at all")
    files = list_files(root / "a") + list_files(root / "b")
    return root, files


def test_second_load_hits_the_cache_with_same_pixels_and_skips(tree, tmp_path):
    root, files = tree
    before = sorted(p.name for p in root.rglob("*"))
    first = load_or_decode(files, root, 8, tmp_path / "c", quiet=True)
    assert not first.hit and first.x.shape == (7, 3, 8, 8) and first.x.dtype == torch.uint8
    assert len(first.skipped) == 1 and first.skipped[0][0] == str(root / "b" / "zz_broken.jpg")
    assert "not an image" in first.skipped[0][1]
    assert first.kept.tolist() == [0, 1, 2, 3, 4, 5, 6]  # the broken file was last
    assert torch.equal(first.x[0], decode_image(files[0], 8))

    second = load_or_decode(files, root, 8, tmp_path / "c", quiet=True)
    assert second.hit and second.key == first.key
    assert torch.equal(second.x, first.x) and second.skipped == first.skipped
    assert second.kept.tolist() == first.kept.tolist()
    assert sorted(p.name for p in root.rglob("*")) == before  # nothing written beside the data
    leftovers = [p.name for p in (tmp_path / "c").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []  # written through temporary files, all renamed


def test_touched_added_removed_or_resized_invalidates(tree, tmp_path):
    root, files = tree
    cache = tmp_path / "c"
    key = load_or_decode(files, root, 8, cache, quiet=True).key

    st = os.stat(files[2])
    os.utime(files[2], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # touched
    touched = load_or_decode(files, root, 8, cache, quiet=True)
    assert not touched.hit and touched.key != key
    assert load_or_decode(files, root, 8, cache, quiet=True).hit

    Path(files[3]).write_bytes(Path(files[0]).read_bytes())  # content changed (size changes too)
    changed = load_or_decode(files, root, 8, cache, quiet=True)
    assert not changed.hit and torch.equal(changed.x[3], changed.x[0])

    assert not load_or_decode(files[:-2], root, 8, cache, quiet=True).hit  # removed
    extra = root / "a" / "new.png"
    extra.write_bytes(Path(files[0]).read_bytes())
    assert not load_or_decode(files + [str(extra)], root, 8, cache, quiet=True).hit  # added
    assert not load_or_decode(files, root, 12, cache, quiet=True).hit  # another image size


def test_a_damaged_cache_entry_is_decoded_again(tree, tmp_path):
    root, files = tree
    first = load_or_decode(files, root, 8, tmp_path / "c", quiet=True)
    npy = tmp_path / "c" / "decoded" / f"{first.key}.npy"
    npy.write_bytes(npy.read_bytes()[:100])
    again = load_or_decode(files, root, 8, tmp_path / "c", quiet=True)
    assert not again.hit and torch.equal(again.x, first.x)


def test_native_size_and_size_none(tmp_path):
    root = write_tree(tmp_path / "same", {"a": 2, "b": 2}, size=9)
    files = list_files(root / "a") + list_files(root / "b")
    assert native_size(files, root, tmp_path / "c") == 9
    assert native_size(files, root, tmp_path / "c") == 9  # remembered
    d = load_or_decode(files, root, None, tmp_path / "c", quiet=True)
    assert d.x.shape == (4, 3, 9, 9)
    odd = write_tree(tmp_path / "odd", {"a": 1}, size=7)
    mixed = files + list_files(odd / "a")
    assert native_size(mixed, tmp_path, tmp_path / "c") is None
    d = load_or_decode(mixed, tmp_path, None, tmp_path / "c", quiet=True)
    assert len(d.kept) == 4 and "differs" in d.skipped[0][1]


def test_cache_location_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONLAB_CACHE", str(tmp_path / "env"))
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    assert cache_root(None) == tmp_path / "env"
    monkeypatch.delenv("VISIONLAB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root(None) == tmp_path / "home" / ".cache" / "visionlab"


def test_many_files_decode_in_parallel_in_order(tmp_path):
    root = tmp_path / "many"
    (root / "a").mkdir(parents=True)
    from PIL import Image
    for i in range(600):  # more than one thread-pool chunk
        Image.fromarray(np.full((4, 4, 3), i % 256, np.uint8)).save(root / "a" / f"{i:04d}.png")
    files = list_files(root / "a")
    d = load_or_decode(files, root, 4, tmp_path / "c", quiet=True, threads=2)
    assert d.x[:, 0, 0, 0].tolist() == [i % 256 for i in range(600)]
