"""Issue 28 against `visionlab detect` and `visionlab.detect(...)`: an existing output folder never loses a file
(item 1), Pillow modes and array dtypes converted as the file decoder converts them (2), non-UTF-8 file names
(3), --out that is a file or read-only (4), empty arrays and wrong types named (5), an earlier output inside the
input left out (6), a full disk that says what was written (7), FIFOs and devices listed as skipped (9).

Real files, the bundled classifier and YuNet, the CLI in a subprocess where the user's message is the point,
real tmpfs mounts for the full and the read-only disk (root only; skipped with the reason otherwise)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionlab.assets import PHOTOS
from visionlab.errors import DataError

from conftest import fill, mounted  # tests/conftest.py (rootdir conftest, on sys.path)

PHOTO = PHOTOS / "maksssksksss627.jpg"  # 400 x 226, two faces


def vl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visionlab", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, COLUMNS="250"))


def one_line(p: subprocess.CompletedProcess, *says: str, rc: int = 2) -> str:
    text = p.stdout + p.stderr
    assert "Traceback" not in text, text
    assert p.returncode == rc, text
    for s in says:
        assert s in text, text
    return text


def photos(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        shutil.copy(PHOTO, folder / f"p{i}.jpg")
    return folder


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def jsonl(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


# --- item 1: an existing folder keeps its files -------------------------------------------------------------
def test_an_existing_out_folder_never_loses_a_file(tmp_path):
    dimg = photos(tmp_path / "dimg")
    shutil.copy(PHOTO, dimg / "a.jpg")
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.jpg").write_text("precious\n")
    (other / "detections.jsonl").write_text('{"mine": 1}\n')
    before = files_of(other)
    p = vl("detect", str(dimg), "--out", str(other), "--quality", "fast")
    text = one_line(p, "already holds files: this run writes into", rc=0)
    assert {k: v for k, v in files_of(other).items() if "/" not in k} == before  # before: a.jpg was replaced
    subs = [d for d in other.iterdir() if d.is_dir()]
    assert len(subs) == 1 and str(subs[0]) in text
    assert sorted(f.name for f in subs[0].glob("*.jpg")) == ["a.jpg", "p0.jpg", "p1.jpg"]
    assert len(jsonl(subs[0] / "detections.jsonl")) == 3
    # an empty folder is used as it is
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line(vl("detect", str(dimg / "a.jpg"), "--out", str(empty), "--quality", "fast"), rc=0)
    assert (empty / "a.jpg").is_file() and len(jsonl(empty / "detections.jsonl")) == 1


# --- item 2: every Pillow mode as the file decoder converts it ----------------------------------------------
@pytest.fixture(scope="module")
def clf():
    from visionlab.inference.load import load_classifier

    return load_classifier(None, "onnx")


def faces(results) -> list[tuple]:
    return [(tuple(r.box), r.label) for r in results]


@pytest.mark.parametrize("mode", ["P", "PA", "L", "LA", "I", "I;16", "F", "CMYK", "RGBA", "1"])
def test_a_pillow_image_of_any_mode_is_detected_as_its_file_would_be(tmp_path, clf, mode):
    import visionlab

    rgb = Image.open(PHOTO).convert("RGB")
    if mode in ("I", "I;16", "F"):
        im = rgb.convert("L").convert(mode)
        if mode == "I;16":  # 16-bit samples that fill the range, as a 16-bit PNG holds them
            grey16 = np.asarray(rgb.convert("L"), np.uint16) * 257
            im = Image.frombytes("I;16", rgb.size, grey16.astype("<u2").tobytes())
    elif mode == "PA":
        im = rgb.convert("P").convert("PA")
    else:
        im = rgb.convert(mode)
    assert im.mode == mode
    f = tmp_path / ("im.png" if mode in ("P", "PA", "L", "LA", "I;16", "RGBA", "1") else "im.tif")
    # no file format stores PA: its file twin is the same pixels and alpha as RGBA
    (im.convert("RGBA") if mode == "PA" else im).save(f)
    from_file = visionlab.detect(f, model=clf, quality="fast")
    from_image = visionlab.detect(im if mode == "PA" else Image.open(f), model=clf, quality="fast")
    assert faces(from_image) == faces(from_file)  # before: mode P used palette indices as grey levels
    if mode == "P":
        assert faces(from_file), "the photo's faces should be found in its palette version"


def test_arrays_of_other_dtypes_are_scaled_or_refused_by_name(clf):
    import visionlab

    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    want = faces(visionlab.detect(rgb, model=clf, quality="fast"))
    assert want
    assert faces(visionlab.detect(rgb.astype(np.uint16) * 257, model=clf, quality="fast")) == want
    assert faces(visionlab.detect(rgb.astype(np.float32) / 255, model=clf, quality="fast")) == want
    with pytest.raises(DataError, match="dtype complex128"):
        visionlab.detect(rgb.astype(np.complex128), model=clf)


# --- item 5: empty arrays and wrong types -------------------------------------------------------------------
def test_an_empty_array_or_a_wrong_type_is_named(clf):
    import visionlab

    with pytest.raises(DataError, match=r"shape \(0, 0, 3\)"):  # before: OpenCV's cvtColor error
        visionlab.detect(np.zeros((0, 0, 3), np.uint8), model=clf)
    with pytest.raises(DataError, match="got NoneType"):  # before: "got object"
        visionlab.detect(None, model=clf)
    with pytest.raises(DataError, match=r"shape \(5, 5, 2\)"):
        visionlab.detect(np.zeros((5, 5, 2), np.uint8), model=clf)


# --- item 3: a file name that is not UTF-8 ------------------------------------------------------------------
def test_a_non_utf8_file_name_is_detected_and_reported_with_escapes(tmp_path):
    dimg = photos(tmp_path / "dimg", 1)
    odd = Path(os.fsdecode(bytes(dimg) + b"/x\xffy.jpg"))
    shutil.copy(PHOTO, odd)
    out = tmp_path / "out"
    p = vl("detect", str(dimg), "--out", str(out), "--quality", "fast")
    one_line(p, rc=0)  # before: UnicodeEncodeError in io.short, and a 0-byte detections.jsonl
    records = jsonl(out / "detections.jsonl")
    assert len(records) == 2
    assert os.fsencode(records[1]["source"]).endswith(b"/x\xffy.jpg")  # the exact name comes back
    assert (Path(os.fsdecode(bytes(out) + b"/x\xffy.jpg"))).is_file()


# --- item 4: --out a file, under a file, or read-only -------------------------------------------------------
def test_out_that_is_a_file_or_read_only_is_one_line(tmp_path):
    dimg = photos(tmp_path / "dimg", 1)
    f = tmp_path / "afile"
    f.write_text("precious\n")
    for out in (f, f / "sub"):  # before: FileExistsError / NotADirectoryError tracebacks
        one_line(vl("detect", str(dimg), "--out", str(out), "--quality", "fast"), "is a file, not a folder")
    assert f.read_text() == "precious\n"
    with mounted(tmp_path / "ro", readonly=True) as ro:
        p = vl("detect", str(dimg), "--out", str(ro / "dets"), "--quality", "fast")
    one_line(p, "read-only file system")  # before: OSError [Errno 30] traceback


# --- item 6: an earlier output inside the input -------------------------------------------------------------
def test_a_second_run_into_the_input_does_not_read_its_earlier_output(tmp_path):
    dimg = photos(tmp_path / "dimg", 2)
    out = dimg / "out"

    def detect(*args: str) -> subprocess.CompletedProcess:  # relative paths, as a user types them
        return subprocess.run([sys.executable, "-m", "visionlab", "detect", *args, "--quality", "fast"],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)

    one_line(detect("dimg", "--out", "dimg/out"), rc=0)
    assert len(jsonl(out / "detections.jsonl")) == 2
    one_line(detect("dimg", "--out", "dimg/out"), rc=0)
    latest = max(out.rglob("detections.jsonl"), key=lambda f: f.stat().st_mtime_ns)
    sources = [r["source"] for r in jsonl(latest)]
    assert len(sources) == 2 and not [s for s in sources if "/out/" in s]  # before: 4, two of them its output
    # another --out: the earlier output folder inside the input is recognised and left out, with a note
    one_line(detect("dimg", "--out", "dimg/out2"), "left out 1 earlier visionlab output folder", rc=0)
    assert len(jsonl(dimg / "out2" / "detections.jsonl")) == 2


# --- item 7: a full disk says what was written --------------------------------------------------------------
def test_a_full_disk_says_what_detect_had_written(tmp_path):
    dimg = tmp_path / "dimg"
    dimg.mkdir()
    big = Image.open(PHOTO).convert("RGB").resize((1200, 678))
    for i in range(12):  # ~160 kB each, annotated as JPEG too: a 1 MiB disk fills part-way
        big.save(dimg / f"p{i:02d}.jpg", quality=95)
    with mounted(tmp_path / "disk", "1m") as disk:
        p = vl("detect", str(dimg), "--out", str(disk / "dets"), "--quality", "fast")
        text = one_line(p, "no space left on the device", "this run had written")
        assert "nothing was changed" not in text  # before: said so after writing several files
        written = sorted(f.name for f in (disk / "dets").glob("*.jpg"))
        lines = jsonl(disk / "dets" / "detections.jsonl")
        assert 1 < len(written) < 12
        assert f"{len(written)} annotated images and {len(lines)} lines of detections.jsonl" in text
        assert len(lines) == len(written)  # every line has its image, no torn line
        assert not [n for n in os.listdir(disk / "dets") if n.endswith(".tmp")]
        fill(disk)  # nothing at all left: still one line
        one_line(vl("detect", str(dimg), "--out", str(disk / "dets2"), "--quality", "fast"), "no space left")


# --- item 9: FIFOs and devices are listed -------------------------------------------------------------------
def test_fifos_and_devices_are_listed_as_skipped(tmp_path):
    dimg = photos(tmp_path / "dimg", 1)
    os.mkfifo(dimg / "pipe.jpg")
    os.symlink("/dev/null", dimg / "null.png")
    p = vl("detect", str(dimg), "--out", str(tmp_path / "out"), "--quality", "fast")
    text = one_line(p, "pipe.jpg: is a FIFO, not a regular file", "null.png: is a device, not a regular file",
                    rc=0)
    assert "1 image" in text and len(jsonl(tmp_path / "out" / "detections.jsonl")) == 1


def test_skipped_files_with_markup_in_their_names_are_printed_whole_on_one_line(tmp_path):
    dimg = photos(tmp_path / ("a folder whose name is long enough to pass eighty columns " * 2), 1)
    bad = dimg / "[red]broken[bold].jpg"  # rich markup in a name must stay text
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    os.mkfifo(dimg / "[blue]pipe.jpg")
    p = subprocess.run([sys.executable, "-m", "visionlab", "detect", str(dimg), "--out", str(tmp_path / "out"),
                        "--quality", "fast"], capture_output=True, text=True, timeout=300)  # no COLUMNS: 80 wide
    one_line(p, rc=0)
    lines = p.stderr.splitlines()
    assert any(line.startswith("warning: ") and f"{bad}: truncated image file" in line for line in lines), p.stderr
    fifo = f"{dimg / '[blue]pipe.jpg'}: is a FIFO, not a regular file"
    assert any(line.startswith("warning: ") and fifo in line for line in lines), p.stderr
    assert f"output: {tmp_path / 'out'}" in p.stdout and "1 image: " in p.stdout


def test_an_out_folder_with_markup_in_its_name_is_printed_whole(tmp_path):
    out = tmp_path / "[green]results[/] 1"
    p = vl("detect", str(photos(tmp_path / "dimg", 1)), "--out", str(out), "--quality", "fast")
    one_line(p, f"output: {out}  (JSON lines: {out / 'detections.jsonl'})", rc=0)
