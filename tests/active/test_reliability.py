"""Issue 14, the label store and the project: each test reproduced a defect before its fix.

Real files, real processes (the CLI in a subprocess where the message a user sees matters), a real 2 MiB
tmpfs for the full disk (mounted where the test runs as root, skipped with the reason otherwise)."""
from __future__ import annotations

import errno
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from visionlab.active import loop
from visionlab.active.session import Project
from visionlab.active.store import (ChangedImageError, LabelStore, append_jsonl, export_files, read_jsonl,
                                    sha256_file, write_atomic)
from visionlab.active.ui import run_labeller
from visionlab.errors import ConfigError, DataError

from conftest import fill, mounted  # tests/conftest.py (rootdir conftest, on sys.path)

from .conftest import write_image

CLASSES = ["mask", "nomask"]


def cli(*args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visionlab", "active", *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, COLUMNS="200"))


def one_clear_line(p: subprocess.CompletedProcess, *says: str) -> None:
    err = p.stderr + p.stdout
    assert "Traceback" not in err, err
    for s in says:
        assert s in err, err


def make_project(root: Path, pool: Path, k: int = 10) -> Path:
    loop.init(pool, root / "proj", classes=CLASSES, model="pixels", train=False)
    loop.query(root / "proj", k=k, strategy="random")
    return root / "proj"


def labeller(proj: Path, keys: str) -> tuple[dict, str]:
    buf = io.StringIO()
    res = run_labeller(Project(proj), preview=True, width=8, keys=list(keys),
                       console=Console(file=buf, width=200, color_system=None))
    return res, buf.getvalue()


# --- item 1: short writes and a full disk ------------------------------------------------------------------
def test_a_short_write_is_continued_not_left_torn(tmp_path, monkeypatch):
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:7])))  # at most 7 bytes per call
    f = tmp_path / "labels.jsonl"
    append_jsonl(f, {"id": 1, "op": "label", "path": "a.png"})
    append_jsonl(f, {"id": 2, "op": "label", "path": "b.png"})
    assert [r["id"] for r in read_jsonl(f)] == [1, 2]


def test_a_write_error_cuts_the_file_back_and_says_so(tmp_path, monkeypatch):
    f = tmp_path / "labels.jsonl"
    append_jsonl(f, {"id": 1, "op": "label"})
    before = f.read_bytes()
    real = os.write

    def half_then_full(fd, data):  # what a disk that fills mid-record does: a short write, then ENOSPC
        if len(data) > 10:
            return real(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(DataError, match="no space left"):
        append_jsonl(f, {"id": 2, "op": "label", "path": "x" * 50})
    assert f.read_bytes() == before

    def full(fd):  # a filesystem that reports the full disk at fsync (NFS, some FUSE)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DataError, match="no space left"):
        write_atomic(tmp_path / "queue.json", "x" * 100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.jsonl"]  # no .queue.json.PID.tmp


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 2 MiB tmpfs, unmounted afterwards."""
    with mounted(tmp_path / "tmpfs", "2m") as mnt:
        yield mnt


def test_full_disk_label_and_query_keep_every_acknowledged_label(tiny_disk, tmp_path):
    pool = tmp_path / "pool"
    for i in range(30):
        write_image(pool / f"img_{i:03d}.png", i % 2, 500 + i)
    proj = make_project(tiny_disk, pool, k=30)
    queued = json.loads((proj / "queue.json").read_text())["items"]
    for it in queued[-3:]:  # labelled before the disk filled
        loop.add_label(proj, it["path"], CLASSES[0])
    fill(tiny_disk)
    # 30 labels of ~250 bytes each are more than the slack left in the file's last page
    p = cli("label", str(proj), "--no-preview", stdin="1" * 30 + "q")
    one_clear_line(p, "no space left")
    saved = [int(line.split("#")[1].split(":")[0]) for line in p.stdout.splitlines() if line.startswith("saved #")]
    store = LabelStore(proj / "labels.jsonl", pool, CLASSES)
    assert sorted(lab.id for lab in store.labels()) == [1, 2, 3] + saved  # every "saved" reads back, no other
    assert store.problems == []  # and no torn line was left behind
    assert len(saved) < 27
    q = cli("query", str(proj), "--k", "5", "--strategy", "random")
    assert q.returncode == 2
    one_clear_line(q, "no space left")
    assert [n for n in os.listdir(proj) if n.endswith(".tmp")] == []
    assert len(json.loads((proj / "queue.json").read_text())["items"]) == 30  # the old queue stays
    r = cli("retrain", str(proj))  # the round's model file cannot be written
    assert r.returncode == 2
    one_clear_line(r, "no space left")
    assert json.loads((proj / "state.json").read_text())["round"] == -1 and not (proj / "rounds.jsonl").exists()
    assert [n for n in os.listdir(proj / "models") if n.startswith(".")] == []


def test_full_disk_run_files_are_one_error_and_leave_no_temporary(tiny_disk):
    import torch

    from visionlab.training import checkpoint as ckpt

    fill(tiny_disk)
    with pytest.raises(ckpt.WriteError, match="no space left") as e:
        ckpt.atomic_write_bytes(tiny_disk / "run" / "metrics.json", b"x" * 100_000)
    assert isinstance(e.value, OSError)  # callers that treat a failed cache write as lost speed still can
    with pytest.raises(DataError, match="no space left"):
        ckpt.save_state(tiny_disk / "run" / "checkpoint.pt", {"model": {"w": torch.zeros(100_000)}, "epoch": 0,
                                                               "history": []})
    assert sorted(os.listdir(tiny_disk / "run")) == []


# --- item 4: corrupt labels.jsonl --------------------------------------------------------------------------
def test_corrupt_lines_are_reported_by_number_and_never_crash(folders, tmp_path):
    pool, _ = folders
    proj = make_project(tmp_path, pool)
    for i in range(3):
        loop.add_label(proj, f"img_{i:03d}.png", CLASSES[i % 2])
    f = proj / "labels.jsonl"
    lines = f.read_bytes().split(b"\n")
    lines[1] = b'{"id": 2, "op": "lab\x00\xff garbage'  # a garbled middle line
    f.write_bytes(b"\n".join(lines))
    append_jsonl(f, {"id": 7, "op": "label", "path": "img_005.png", "label": "mask", "source": "human"})  # no sha256
    append_jsonl(f, {"id": 8, "op": "label", "path": "img_006.png", "sha256": sha256_file(pool / "img_006.png"),
                     "label": "cat", "source": "human"})  # not a class of the project
    p = cli("status", str(proj))
    assert p.returncode == 0, p.stderr
    one_clear_line(p, "labels.jsonl line 2: not valid JSON", "line 4: a label without a valid sha256",
                   "line 5: unknown class 'cat'")
    assert "2 human" in p.stdout
    q = cli("query", str(proj), "--k", "3", "--strategy", "random")
    assert q.returncode == 0, q.stderr
    one_clear_line(q, "labels.jsonl line 2")
    s = loop.status(proj)
    assert s["store"]["human"] == 2 and len(s["problems"]) == 3


def test_a_torn_undo_never_brings_the_label_back(folders, tmp_path):
    pool, _ = folders
    store = LabelStore(tmp_path / "labels.jsonl", pool, CLASSES)
    a = store.add("img_000.png", "mask")
    store.add("img_001.png", "nomask")
    store.undo(a.id)
    data = store.path.read_bytes()
    store.path.write_bytes(data[:-40])  # the undo record loses its tail
    assert a.sha256 not in store.current()
    assert any(f"undo of entry {a.id}" in p for p in store.problems)
    b = store.add("img_002.png", "mask")  # appending after the torn line still works
    assert {lab.id for lab in store.labels()} == {2, b.id}


# --- item 2: undo only this session's labels ---------------------------------------------------------------
def test_terminal_undo_touches_only_this_sessions_labels(folders, tmp_path):
    pool, _ = folders
    proj = make_project(tmp_path, pool)
    queue = json.loads((proj / "queue.json").read_text())["items"]
    res, out = labeller(proj, "1")  # session A labels the first queued image and stops (keys run out)
    other = loop.add_label(proj, queue[5]["path"], "mask")  # someone else labels another image, later
    res, out = labeller(proj, "2uuq")  # session B: a label, its undo, then nothing more of its own
    assert "nothing to undo in this session" in out
    live = {lab.path: lab for lab in Project(proj).store.labels()}
    assert other.path in live and queue[0]["path"] in live  # A's and the other's labels are untouched
    assert queue[1]["path"] not in live and len(live) == 2


# --- item 3: what is shown is what is hashed ---------------------------------------------------------------
def test_a_pool_image_changed_after_query_is_never_labelled_under_the_old_hash(folders, tmp_path):
    pool, _ = folders
    proj = make_project(tmp_path, pool)
    queue = json.loads((proj / "queue.json").read_text())["items"]
    first = pool / queue[0]["path"]
    write_image(first, 1, 99999)  # new content under the queued name
    res, out = labeller(proj, "1q")
    assert "changed since the query" in out
    labs = Project(proj).store.labels()
    assert [lab.path for lab in labs] == [queue[1]["path"]]
    assert labs[0].sha256 == sha256_file(pool / queue[1]["path"])
    with pytest.raises(ChangedImageError):  # the API refuses a stale hash too
        Project(proj).store.add(first, "mask", sha256=queue[0]["sha256"])


# --- item 12: a deleted pool image -------------------------------------------------------------------------
def test_a_deleted_pool_image_is_skipped_and_the_session_goes_on(folders, tmp_path):
    pool, _ = folders
    proj = make_project(tmp_path, pool)
    queue = json.loads((proj / "queue.json").read_text())["items"]
    (pool / queue[0]["path"]).unlink()
    p = cli("label", str(proj), "--no-preview", stdin="12q")
    assert p.returncode == 0, p.stderr + p.stdout
    one_clear_line(p, f"skipped: {queue[0]['path']} is no longer readable", "saved #1", "saved #2")
    s = loop.status(proj)
    assert s["store"]["human"] == 2


# --- item 5: FIFOs and devices in a pool -------------------------------------------------------------------
def test_a_fifo_or_device_in_the_pool_never_hangs_status_or_query(folders, tmp_path):
    pool, _ = folders
    proj = make_project(tmp_path, pool)
    os.mkfifo(pool / "fifo.jpg")
    os.symlink("/dev/zero", pool / "zero.png")
    for args in (("status", str(proj)), ("query", str(proj), "--k", "3", "--strategy", "random")):
        p = cli(*args, timeout=60)  # before: blocked forever on open() of the FIFO
        assert p.returncode == 0, p.stderr
        one_clear_line(p, "fifo.jpg: not a regular file", "zero.png: not a regular file")
    assert loop.status(proj)["pool_images"] == 24


# --- item 8: class names -----------------------------------------------------------------------------------
@pytest.mark.parametrize("classes, says", [("../../escape,b", "starts with '.'"), ("a,a", "given twice"),
                                           ("a/b,c", "contains '/'"), ("a,b\tc", "contains"), ("A,a", "given twice")])
def test_class_names_are_plain_distinct_folder_names(folders, tmp_path, classes, says):
    pool, _ = folders
    with pytest.raises(ConfigError, match=re.escape(says)):
        loop.init(pool, tmp_path / "proj", classes=classes.split(","), model="pixels", train=False)
    assert not (tmp_path / "proj").exists()


def test_a_bad_class_name_is_one_line(folders, tmp_path):
    pool, _ = folders
    p = cli("init", "--pool", str(pool), "--out", str(tmp_path / "proj"), "--classes", "../../escape,b",
            "--model", "pixels", "--no-train")
    assert p.returncode == 2
    one_clear_line(p, "class name '../../escape' starts with '.'")


def test_export_never_writes_outside_dest(folders, tmp_path):
    pool, _ = folders
    with pytest.raises(ConfigError):
        export_files([(pool / "img_000.png", "mask", "0" * 64), (pool / "img_001.png", "../../escape", "1" * 64)],
                     tmp_path / "dest")
    assert not (tmp_path / "dest").exists() and not (tmp_path.parent / "escape").exists()


# --- item 9: a 254-byte file name --------------------------------------------------------------------------
def test_export_of_a_254_character_file_name(folders, tmp_path):
    pool, _ = folders
    long = pool / ("x" * 250 + ".png")
    write_image(long, 0, 4242)
    proj = make_project(tmp_path, pool)
    loop.add_label(proj, long, "mask")
    loop.add_label(proj, "img_001.png", "nomask")
    p = cli("export", str(proj), "--dest", str(tmp_path / "dest"))
    assert p.returncode == 0, p.stderr + p.stdout
    one_clear_line(p, "exported 2 images")
    names = sorted(f.name for f in (tmp_path / "dest").rglob("*") if f.is_file())
    assert len(names) == 2 and all(len(n.encode()) <= 255 for n in names)
    assert not [f for f in (tmp_path / "dest").rglob(".*")]  # no temporary file left


def test_corrupt_queue_or_state_is_one_line(folders, tmp_path):
    pool, _ = folders
    proj = make_project(tmp_path, pool)
    (proj / "rounds.jsonl").write_text('{"round": 5}\n')  # a round record without its model
    p = cli("status", str(proj))
    assert p.returncode == 0 and "round -1" in p.stdout, p.stdout + p.stderr
    (proj / "queue.json").write_bytes(b"\x00\xff not json")
    p = cli("label", str(proj), "--no-preview", stdin="q")
    assert p.returncode == 2
    one_clear_line(p, "queue.json cannot be read")
    (proj / "state.json").write_text("[1, 2]")
    p = cli("status", str(proj))
    assert p.returncode == 2
    one_clear_line(p, "state.json lacks")


def test_features_are_never_cached_under_a_hash_of_other_bytes(folders, tmp_path):
    """Retrain looked features up by the stored hash: a file changed after hashing must not be decoded and
    cached under the old hash (before: it was, and later rounds trained on the stale entry's new pixels)."""
    pool, _ = folders
    proj = Project(make_project(tmp_path, pool))
    proj.state["cache_dir"] = str(tmp_path / "fresh-cache")  # nothing of this pool cached yet
    img = pool / "img_003.png"
    old = sha256_file(img)
    write_image(img, 0, 31337)  # new content, same name
    x, ok = proj.features([type("It", (), {"path": img, "sha256": old})()])
    assert not ok.any()
    x, ok = proj.features([type("It", (), {"path": img, "sha256": sha256_file(img)})()])
    assert ok.all()


# --- issue 28 ----------------------------------------------------------------------------------------------
def test_export_of_a_non_utf8_file_name_exports_every_file(folders, tmp_path):
    """Issue 28 item 3: a pool name that is not UTF-8 stopped `active export` after the files before it."""
    pool, _ = folders
    odd = Path(os.fsdecode(bytes(pool) + b"/x\xffy.png"))
    write_image(odd, 0, 4343)
    proj = make_project(tmp_path, pool)
    loop.add_label(proj, odd, "mask")
    loop.add_label(proj, "img_001.png", "nomask")
    loop.add_label(proj, "img_002.png", "mask")
    p = cli("export", str(proj), "--dest", str(tmp_path / "dest"))
    assert p.returncode == 0, p.stderr + p.stdout
    one_clear_line(p, "exported 3 images")
    names = sorted(os.fsencode(f.name) for f in (tmp_path / "dest").rglob("*") if f.is_file())
    assert names == [b"img_001.png", b"img_002.png", b"x\xffy.png"]
    assert (tmp_path / "dest" / "mask" / odd.name).read_bytes() == odd.read_bytes()
    p = cli("status", str(proj))
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr


def test_init_with_out_a_file_or_read_only_is_one_line(folders, tmp_path):
    """Issue 28 item 4: NotADirectoryError / FileExistsError / EROFS tracebacks from `active init`."""
    pool, _ = folders
    f = tmp_path / "afile"
    f.write_text("precious\n")
    for out in (f, f / "proj"):
        p = cli("init", "--pool", str(pool), "--out", str(out), "--classes", "mask,nomask", "--model", "pixels",
                "--no-train")
        assert p.returncode == 2, p.stdout + p.stderr
        one_clear_line(p, "is a file, not a folder")
    assert f.read_text() == "precious\n"
    with mounted(tmp_path / "ro", readonly=True) as ro:
        p = cli("init", "--pool", str(pool), "--out", str(ro / "proj"), "--classes", "mask,nomask", "--model",
                "pixels", "--no-train")
    assert p.returncode == 2, p.stdout + p.stderr
    one_clear_line(p, "read-only file system")


@pytest.mark.parametrize("kind", ["folder", "fifo", "devnull"])
def test_a_labels_file_that_is_not_a_file_is_refused(folders, tmp_path, kind):
    """Issue 28 item 8: a labels.jsonl that is a folder, a FIFO or a link to /dev/null read as "0 human" and
    `label` exited 0 after "not saved" (or "saved" into /dev/null)."""
    pool, _ = folders
    proj = make_project(tmp_path, pool)
    labels = proj / "labels.jsonl"
    labels.unlink()
    {"folder": labels.mkdir, "fifo": lambda: os.mkfifo(labels),
     "devnull": lambda: os.symlink("/dev/null", labels)}[kind]()
    what = {"folder": "a folder", "fifo": "a FIFO", "devnull": "a device"}[kind]
    p = cli("status", str(proj), timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    one_clear_line(p, f"labels.jsonl: is {what}, not a regular file")
    assert "0 human" not in p.stdout
    p = cli("label", str(proj), "--no-preview", stdin="1q", timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    one_clear_line(p, f"labels.jsonl: is {what}, not a regular file")
    assert "saved #" not in p.stdout
    p = cli("query", str(proj), "--k", "3", "--strategy", "random", timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    one_clear_line(p, f"labels.jsonl: is {what}, not a regular file")
    with pytest.raises(DataError, match="not a regular file"):
        loop.add_label(proj, "img_001.png", "mask")
