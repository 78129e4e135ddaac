"""visionlab.io on real filesystems: a full tmpfs and a read-only mount leave the old file and no temporary file,
the append is cut back instead of torn, the folder is fsync'd where asked, a FIFO is never read."""
from __future__ import annotations

import errno
import hashlib
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import fill, mounted  # tests/conftest.py (rootdir conftest, on sys.path)
from visionlab import io
from visionlab.errors import DataError


def names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def test_a_full_disk_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    with mounted(tmp_path / "disk") as disk:
        old = disk / "metrics.json"
        old.write_text("old")
        log = disk / "labels.jsonl"
        log.write_text('{"id": 1}\n')
        fill(disk)
        writers = [lambda: io.atomic_write_bytes(old, b"x" * 200_000),
                   lambda: io.atomic_write_text(old, "y" * 200_000, sync_folder=True),
                   lambda: io.write_json(old, {"k": "z" * 200_000}),
                   lambda: io.write_via(old, lambda tmp: tmp.write_bytes(b"w" * 200_000)),
                   lambda: io.append_line(log, "v" * 200_000)]
        for write in writers:
            with pytest.raises(io.WriteError, match="no space left on the device") as e:
                write()
            assert isinstance(e.value, OSError) and e.value.errno == errno.ENOSPC
            assert "\n" not in str(e.value) and str(disk) in str(e.value)
            assert old.read_text() == "old" and log.read_text() == '{"id": 1}\n'  # the append was cut back
            assert names(disk) == ["filler", "labels.jsonl", "metrics.json"]


def test_a_read_only_filesystem_keeps_the_old_file(tmp_path):
    with mounted(tmp_path / "disk") as disk:
        (disk / "run").mkdir()
        old = disk / "run" / "history.csv"
        old.write_text("epoch\n1\n")
        r = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True)
        if r.returncode:
            pytest.skip(f"cannot remount the tmpfs read-only ({r.stderr.strip()})")
        for write in (lambda: io.write_csv(old, [{"epoch": 2}]), lambda: io.append_line(old, "2"),
                      lambda: io.write_via(old, lambda tmp: tmp.write_text("2")),
                      lambda: io.atomic_write_text(disk / "new" / "a.txt", "a")):  # its folder cannot be made
            with pytest.raises(io.WriteError, match="Read-only file system"):
                write()
        assert old.read_text() == "epoch\n1\n" and names(disk / "run") == ["history.csv"]
        assert names(disk) == ["run"]


def test_a_failing_saver_leaves_the_old_file_and_no_temporary(tmp_path):
    old = tmp_path / "model.safetensors"
    old.write_bytes(b"old")

    def saver(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise ValueError("the library gave up")

    with pytest.raises(ValueError, match="gave up"):
        io.write_via(old, saver)
    assert old.read_bytes() == b"old" and names(tmp_path) == ["model.safetensors"]


def test_files_are_whole_readable_and_long_names_fit(tmp_path):
    os.umask(old := os.umask(0o022))
    long = tmp_path / ("n" * 250 + ".json")  # a temporary name beside it must still fit in 255 bytes
    io.write_json(long, {"a": [1, 2]})
    assert long.read_text() == '{\n  "a": [\n    1,\n    2\n  ]\n}\n'
    assert stat.S_IMODE(long.stat().st_mode) == 0o666 & ~old  # not mkstemp's 0600
    io.write_csv(tmp_path / "deep" / "er" / "h.csv", [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}])
    assert (tmp_path / "deep" / "er" / "h.csv").read_text().splitlines() == ["epoch,loss", "1,0.5", "2,0.25"]
    io.write_csv(tmp_path / "empty.csv", [])
    assert (tmp_path / "empty.csv").read_bytes() == b""
    assert sorted(p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")) == []


def test_sync_folder_fsyncs_the_folder_after_the_rename(tmp_path, monkeypatch):
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    io.atomic_write_text(tmp_path / "queue.json", "{}")
    assert synced == ["file"]
    synced.clear()
    io.atomic_write_text(tmp_path / "queue.json", "[]", sync_folder=True)
    assert synced == ["file", "folder"] and (tmp_path / "queue.json").read_text() == "[]"


def test_append_line_starts_after_a_torn_line_and_continues_short_writes(tmp_path, monkeypatch):
    log = tmp_path / "labels.jsonl"
    log.write_bytes(b'{"id": 1}\n{"id": 2, "lab')  # a writer killed mid-line
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:5])))  # at most 5 bytes a call
    io.append_line(log, '{"id": 3}')
    io.append_line(log, '{"id": 4}')
    assert log.read_bytes().split(b"\n") == [b'{"id": 1}', b'{"id": 2, "lab', b'{"id": 3}', b'{"id": 4}', b""]


def test_write_via_keeps_a_suffix_and_never_opens_what_a_link_names(tmp_path):
    seen: list[str] = []
    io.write_via(tmp_path / "face.onnx", lambda tmp: (seen.append(tmp.name), tmp.write_bytes(b"m")), suffix=".onnx")
    assert seen[0].startswith(".face.onnx.") and seen[0].endswith(".tmp.onnx")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    link = tmp_path / "out" / "pipe.jpg"
    t = threading.Thread(target=io.write_via, args=(link, lambda tmp: os.symlink(fifo, tmp)), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "write_via opened the FIFO a symlink names (and blocked)"
    assert link.is_symlink() and os.readlink(link) == str(fifo) and names(link.parent) == ["pipe.jpg"]


def test_sha256_file_hashes_regular_files_only_and_caps_their_size(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc" * 1000)
    assert io.sha256_file(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert io.sha256_file(str(f), chunk=7) == io.sha256_file(f, max_bytes=3000)
    with pytest.raises(DataError, match="over the"):
        io.sha256_file(f, max_bytes=2999)
    os.mkfifo(tmp_path / "fifo.jpg")
    with pytest.raises(DataError, match="is a FIFO"):  # refused at once, never blocks on the open
        io.sha256_file(tmp_path / "fifo.jpg")
    with pytest.raises(DataError, match="file not found"):
        io.sha256_file(tmp_path / "gone.jpg")


def test_cache_root_argument_then_environment_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VISIONLAB_CACHE", "~/env-cache")
    assert io.cache_root(tmp_path / "arg") == tmp_path / "arg"
    assert io.cache_root("~/arg") == tmp_path / "home" / "arg"
    assert io.cache_root() == tmp_path / "home" / "env-cache"
    monkeypatch.delenv("VISIONLAB_CACHE")
    assert io.cache_root(None) == tmp_path / "home" / ".cache" / "visionlab"


def test_a_non_utf8_name_is_written_and_reported_with_escapes(tmp_path):
    """Issue 28 item 3: io.short and atomic_write_text raised UnicodeEncodeError on b'x\\xffy.jpg'."""
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/x\xffy.jpg"))
    io.atomic_write_bytes(odd, b"abc")  # the temporary name beside it is made from the raw bytes
    assert open(bytes(tmp_path) + b"/x\xffy.jpg", "rb").read() == b"abc"
    io.write_csv(tmp_path / "p.csv", [{"path": str(odd)}])
    assert "x\\xffy.jpg" in (tmp_path / "p.csv").read_text(encoding="utf-8")  # still UTF-8 text
    assert io.short(os.fsdecode(b"\xff" * 300), 10) == os.fsdecode(b"\xff" * 10)
    assert io.shown("\ud800") == "\\ud800"  # no file name decodes to this, and it is still shown


@pytest.mark.parametrize("kind", ["fifo", "devnull", "folder"])
def test_append_line_refuses_what_is_not_a_regular_file(tmp_path, kind):
    """Issue 28 item 8, a guard: before, fsync's EINVAL happened to refuse a FIFO and /dev/null too; now the
    descriptor is checked first and the line says what is wrong."""
    p = tmp_path / "labels.jsonl"
    {"fifo": lambda: os.mkfifo(p), "devnull": lambda: os.symlink("/dev/null", p), "folder": p.mkdir}[kind]()
    with pytest.raises(io.WriteError, match="not a regular file" if kind != "folder" else "cannot write"):
        io.append_line(p, '{"id": 1}')
