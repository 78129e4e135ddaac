"""visionlab.images: every suffix it calls an image is one both decoders read, the one decoder is what the data
layer and the label store use, and importing it (or the store) starts no torch."""
from __future__ import annotations

import io
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from visionlab import images

PIL_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".jfif": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF",
              ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM", ".pgm": "PPM"}


@pytest.mark.parametrize("suffix", sorted(images.IMAGE_SUFFIXES))
def test_every_image_suffix_is_read_by_opencv_and_pillow(tmp_path, suffix):
    rng = np.random.default_rng(0)
    rgb = np.repeat(np.repeat(rng.integers(0, 256, (6, 8, 3), np.uint8), 4, 0), 4, 1)  # flat 4x4 blocks
    im = Image.fromarray(rgb[:, :, 0] if suffix == ".pgm" else rgb)
    f = tmp_path / f"photo{suffix.upper()}"  # suffixes match in any case
    im.save(f, PIL_FORMAT[suffix])
    assert f.suffix.lower() in images.IMAGE_SUFFIXES
    ours = images.decode_array(f)
    theirs = cv2.imdecode(np.fromfile(f, np.uint8), cv2.IMREAD_COLOR)
    assert ours.shape == theirs.shape == (24, 32, 3)
    tol = 40 if PIL_FORMAT[suffix] in ("JPEG", "WEBP") else 0  # lossy formats: each decoder's own rounding
    assert np.abs(ours.astype(int) - theirs[:, :, ::-1].astype(int)).mean() <= max(tol, 0.5)


def test_image_and_video_suffixes_are_lower_case_and_disjoint():
    both = images.IMAGE_SUFFIXES | images.VIDEO_SUFFIXES
    assert all(s.startswith(".") and s == s.lower() for s in both)
    assert not images.IMAGE_SUFFIXES & images.VIDEO_SUFFIXES


def test_decode_image_is_decode_array_as_a_channels_first_tensor(tmp_path):
    from visionlab.data import decode_image

    assert decode_image is images.decode_image  # the data layer's decoder is this one
    rgb = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    t = images.decode_image(tmp_path / "a.png")
    assert t.dtype == torch.uint8 and t.shape == (3, 5, 7) and t.is_contiguous()
    assert np.array_equal(t.permute(1, 2, 0).numpy(), images.decode_array(tmp_path / "a.png")) and \
        np.array_equal(t.permute(1, 2, 0).numpy(), rgb)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    assert torch.equal(images.decode_image(buf.getvalue(), 4), images.decode_image(tmp_path / "a.png", 4))


def test_the_label_store_lists_every_image_suffix(tmp_path):
    from visionlab.active.store import list_images

    for s in sorted(images.IMAGE_SUFFIXES):
        (tmp_path / f"x{s.upper()}").write_bytes(b"")
    (tmp_path / "clip.mp4").write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"")
    assert sorted(p.suffix.lower() for p in list_images(tmp_path)) == sorted(images.IMAGE_SUFFIXES)


def test_importing_images_and_the_store_starts_no_torch():
    code = ("import sys, visionlab.images, visionlab.io, visionlab.active.store; "
            "print(sorted(m for m in ('torch', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_detection_writes_an_annotated_copy_for_every_image_suffix(tmp_path):
    from visionlab.detect.run import _write_image

    frame = np.full((12, 16, 3), (40, 170, 40), np.uint8)  # BGR, as the pipeline draws
    for s in sorted(images.IMAGE_SUFFIXES):
        written = _write_image(tmp_path / f"photo{s}", frame)
        assert written.suffix == (".png" if s == ".pgm" else s)  # .pgm holds gray only
        back = images.decode_array(written)[:, :, ::-1]
        err = np.abs(back.astype(int) - frame)
        lossy = PIL_FORMAT[s] in ("JPEG", "WEBP", "GIF")  # OpenCV's GIF writer dithers to a fixed palette
        assert back.shape == frame.shape and (err.mean() <= 30 if lossy else err.max() == 0), s
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_detection_reads_photos_with_the_shared_decoder_and_their_exif_orientation(tmp_path, orientation):
    from visionlab.detect.run import read_image
    from visionlab.errors import DataError

    rgb = np.zeros((30, 60, 3), np.uint8)  # stored landscape: left third red, the rest blue
    rgb[:, :20], rgb[:, 20:] = (255, 0, 0), (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    f = tmp_path / "rot.jpg"
    Image.fromarray(rgb).save(f, "JPEG", quality=95, exif=exif.tobytes())
    bgr = read_image(f)
    assert np.array_equal(bgr, images.decode_array(f)[:, :, ::-1])  # the pixels training crops are cut from
    assert np.array_equal(bgr, cv2.imdecode(np.fromfile(f, np.uint8), cv2.IMREAD_COLOR))  # and OpenCV's own
    assert bgr.shape == ((60, 30, 3) if orientation in (6, 8) else (30, 60, 3))
    red = bgr[..., 2] > 200
    where = {1: red[:, :20], 3: red[:, -20:], 6: red[:20], 8: red[-20:]}[orientation]  # the red third, displayed
    assert where.mean() > 0.9 and red.mean() < 0.4
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match="cannot decode image .*bad.jpg"):
        read_image(tmp_path / "bad.jpg")
