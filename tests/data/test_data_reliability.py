"""Issue 14 item 5 (and the decode-memory half of item 6) in the data layer: symlink loops, FIFOs, devices,
oversized files and 16-bit images. Each test failed (hung, grew without bound or cost ~1 GB) before."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from visionlab.data.checks import check_layout, list_files
from visionlab.files import read_regular as read_file
from visionlab.errors import DataError
from visionlab.images import decode_array


def _tree(root, n=4):
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (12, 12), (60 * i, 100 if c == "a" else 10, 30)).save(root / c / f"{i}.png")


def test_symlink_loops_are_walked_once(tmp_path):
    _tree(tmp_path)
    os.symlink("..", tmp_path / "a" / "loop")  # a -> its parent, which holds a again
    os.symlink(str(tmp_path / "b"), tmp_path / "b" / "self")  # b -> b
    t0 = time.monotonic()
    lay = check_layout(tmp_path)  # before: os.walk(followlinks=True) grew without end (past 3 GB)
    assert time.monotonic() - t0 < 5
    assert len(lay.files["all"]["b"]) == 4
    assert len(list_files(tmp_path / "a")) < 20


def test_fifo_device_and_oversized_files_are_refused_not_read(tmp_path):
    os.mkfifo(tmp_path / "fifo.jpg")
    os.symlink("/dev/zero", tmp_path / "zero.jpg")
    t0 = time.monotonic()
    with pytest.raises(DataError, match="FIFO"):
        decode_array(tmp_path / "fifo.jpg")  # before: open() blocked forever
    with pytest.raises(DataError, match="device"):
        decode_array(tmp_path / "zero.jpg")  # before: read 3 GB in 10 s and kept going
    assert time.monotonic() - t0 < 2
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(big)
    with pytest.raises(DataError, match="limit"):
        read_file(big, max_bytes=100)


def test_train_skips_a_fifo_and_a_device_and_lists_them(tmp_path):
    data = tmp_path / "data"
    _tree(data, 6)
    os.mkfifo(data / "a" / "fifo.jpg")
    os.symlink("/dev/zero", data / "b" / "zero.jpg")
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "visionlab", "train", "--data", str(data), "--model", "mlp",
                        "--widths", "8", "--image-size", "8", "--epochs", "1", "--val-split", "0.2",
                        "--test-split", "0.2", "--report", "metrics", "--quiet", "--out", str(out)],
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    skipped = (out / "skipped.txt").read_text()
    assert "fifo.jpg" in skipped and "FIFO" in skipped and "zero.jpg" in skipped and "device" in skipped


MEASURE = textwrap.dedent("""
    import io, resource, sys
    import numpy as np
    from PIL import Image
    from visionlab.images import decode_array
    side = int(sys.argv[1])
    a = np.full((side, side), 1000, np.uint16); a[::7] = 60000
    buf = io.BytesIO(); Image.fromarray(a).save(buf, "PNG"); data = buf.getvalue(); del a
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = decode_array(data)
    assert out.shape == (side, side, 3) and out[0, 0, 0] == 233 and out[1, 0, 0] == 4
    print(len(data), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
""")


def test_a_16_bit_png_decodes_in_bounded_memory():
    side = 4000  # 16 MP: a ~40 kB PNG
    p = subprocess.run([sys.executable, "-c", MEASURE, str(side)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    size, peak = map(int, p.stdout.split())
    # before: float64 copies, ~26 bytes per pixel (893 MiB for 6000x6000); now the uint16 samples, their copy
    # and the RGB result: ~13 bytes per pixel
    assert size < 200_000 and peak / side ** 2 < 18, (size, peak / side ** 2)


# --- issue 28 ----------------------------------------------------------------------------------------------
def test_inspect_draws_a_non_utf8_file_name_with_escapes(tmp_path):
    """Item 3: matplotlib could not draw 'x\\udcffy.png' in the sample grid (a traceback)."""
    from visionlab.data.inspect import inspect

    _tree(tmp_path / "d", n=1)
    odd = os.fsdecode(bytes(tmp_path / "d" / "a") + b"/x\xffy.png")
    Image.new("RGB", (12, 12), (1, 2, 3)).save(odd)
    s = inspect(tmp_path / "d", tmp_path / "out")
    assert s["images"] == 3
    assert (tmp_path / "out" / "samples.png").stat().st_size > 0
    summary = json.loads((tmp_path / "out" / "inspect.json").read_text(encoding="utf-8"))
    assert summary["images"] == 3


def _vl(*args):
    return subprocess.run([sys.executable, "-m", "visionlab", *args], capture_output=True, text=True, timeout=120)


def test_data_faces_out_that_holds_files_or_is_a_file_is_one_line(tmp_path):
    """Item 1 and 4: `data faces --out` refuses a folder with files (crops are never mixed) and a file in the
    way is one line (before: NotADirectoryError)."""
    _tree(tmp_path / "src")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "faces.json").write_text("precious\n")
    f = tmp_path / "afile"
    f.write_text("precious\n")
    for out, says in ((mine, "already holds files"), (f, "is a file, not a folder")):
        p = _vl("data", "faces", str(tmp_path / "src"), "--out", str(out))
        assert p.returncode == 2 and "Traceback" not in p.stderr and says in p.stderr, p.stderr
    assert (mine / "faces.json").read_text() == "precious\n" and f.read_text() == "precious\n"
    assert sorted(x.name for x in mine.iterdir()) == ["faces.json"]
