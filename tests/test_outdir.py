"""visionlab/outdir.py: an output folder never loses a file the run did not create; a file in the way, a
read-only disk and output folders inside an input are recognised. Real folders and a real read-only tmpfs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from visionlab.errors import ConfigError
from visionlab.io import WriteError, shown
from visionlab.outdir import claim_file, claim_out, is_output_folder, make_folder

from conftest import mounted  # tests/conftest.py (rootdir conftest, on sys.path)


def test_a_new_or_empty_folder_is_used_as_it_is(tmp_path):
    assert claim_out(tmp_path / "a" / "b", "detect") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir() and list((tmp_path / "a" / "b").iterdir()) == []
    assert claim_out(tmp_path / "a" / "b", "detect") == tmp_path / "a" / "b"  # still empty


def test_a_folder_with_files_gets_a_new_sub_folder_and_says_so(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").write_text("precious")
    got = claim_out(out, "detect")
    again = claim_out(out, "detect")  # the same second: a distinct folder
    assert got.parent == out and again.parent == out and got != again
    assert got.name.startswith("detect-") and list(got.iterdir()) == []
    assert (out / "a.jpg").read_text() == "precious"
    assert f"writes into {got}" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="already holds files"):
        claim_out(out, "faces", policy="refuse")


def test_a_file_in_the_way_is_one_line(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(WriteError, match="is a file, not a folder"):
        claim_out(f, "predict")
    with pytest.raises(WriteError, match=f"{f} is a file, not a folder"):
        make_folder(f / "a" / "b")
    os.symlink(tmp_path / "missing", tmp_path / "dangling")
    with pytest.raises(WriteError, match="broken symbolic link"):
        claim_out(tmp_path / "dangling", "predict")


def test_a_read_only_disk_is_one_line(tmp_path):
    with mounted(tmp_path / "ro", readonly=True) as ro:
        for target in (ro, ro / "new"):  # an existing empty folder, and one to create
            with pytest.raises(WriteError, match="read-only file system"):
                claim_out(target, "detect")


def test_output_folders_are_known_by_their_results(tmp_path):
    for name in ("detections.jsonl", "predictions.csv", "comparison.csv", "faces.json"):
        d = tmp_path / name.split(".")[0]
        d.mkdir()
        (d / name).write_text("")
        assert is_output_folder(d)
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "metrics.json").write_text("{}")
    assert not is_output_folder(ev)  # a user's metrics.json alone is not ours
    (ev / "report.html").write_text("")
    assert is_output_folder(ev) and not is_output_folder(tmp_path)


def test_claim_file_refuses_a_users_file_but_not_the_runs_own(tmp_path):
    mine = tmp_path / "m.onnx"
    mine.write_text("precious")
    with pytest.raises(ConfigError, match="already exists"):
        claim_file(mine)
    assert claim_file(mine, owned=mine) == mine
    assert claim_file(tmp_path / "new" / "m.onnx").parent.is_dir()


def test_shown_escapes_bytes_that_are_not_utf8():
    odd = os.fsdecode(b"/d/x\xffy.jpg")
    assert shown(odd) == "/d/x\\xffy.jpg" and shown(Path("/d/é.jpg")) == "/d/é.jpg"
