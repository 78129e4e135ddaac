"""decode_image: every documented conversion by pixel content, every bad input as a DataError naming the file;
check_layout: each layout mistake as a DataError naming the folder."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from data_helpers import write_tree
from visionlab.data.checks import check_layout
from visionlab.errors import DataError
from visionlab.images import decode_image


def _px(t: torch.Tensor, y: int, x: int) -> tuple[int, ...]:
    return tuple(int(v) for v in t[:, y, x])


def _jpeg(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


def _png16_rgb(arr: np.ndarray) -> bytes:
    """A 16-bit RGB PNG written by hand (Pillow cannot write one): H x W x 3 uint16."""
    h, w, _ = arr.shape
    raw = b"".join(b"\0" + arr[r].astype(">u2").tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# ---------------------------------------------------------------------------------------------------- good input
def test_rgb_png_is_exact_and_channels_first(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (30, 20, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    t = decode_image(tmp_path / "a.png", None)
    assert t.dtype == torch.uint8 and t.shape == (3, 30, 20)
    assert torch.equal(t, torch.from_numpy(arr).permute(2, 0, 1))
    assert torch.equal(decode_image(str(tmp_path / "a.png")), t)  # str paths too
    assert torch.equal(decode_image((tmp_path / "a.png").read_bytes()), t)  # and bytes


def test_resize_is_square_bilinear_and_ignores_aspect(tmp_path):
    arr = np.zeros((40, 80, 3), np.uint8)
    arr[:, 40:] = 200  # right half bright
    Image.fromarray(arr).save(tmp_path / "wide.png")
    t = decode_image(tmp_path / "wide.png", 16)
    assert t.shape == (3, 16, 16)
    assert _px(t, 8, 0) == (0, 0, 0) and _px(t, 8, 15) == (200, 200, 200)  # stretched, not cropped or padded
    assert 0 < int(t[0, 8, 8]) < 200 or 0 < int(t[0, 8, 7]) < 200  # bilinear blend at the edge


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)  # stored landscape: left half red, right half blue
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    (tmp_path / "rot.jpg").write_bytes(_jpeg(arr, exif=exif.tobytes()))
    t = decode_image(tmp_path / "rot.jpg", None)
    assert t.shape == (3, 40, 20)  # shown portrait
    top, bottom = _px(t, 5, 10), _px(t, 34, 10)
    assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_grayscale_and_bilevel_become_gray_rgb(tmp_path):
    g = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    t = decode_image(tmp_path / "g.png")
    assert torch.equal(t[0], torch.from_numpy(g)) and torch.equal(t[0], t[1]) and torch.equal(t[1], t[2])
    b = Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("1")
    b.save(tmp_path / "b.png")
    assert decode_image(tmp_path / "b.png").flatten().tolist() == [0, 255, 255, 0] * 3


def test_palette_with_transparency_goes_on_white(tmp_path):
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0, 10, 200, 30] + [0] * (254 * 3))
    im.putpixel((1, 1), 1)
    im.info["transparency"] = 0
    im.save(tmp_path / "p.png", transparency=0)
    assert Image.open(tmp_path / "p.png").mode == "P"
    t = decode_image(tmp_path / "p.png")
    assert _px(t, 0, 0) == (255, 255, 255)  # transparent index -> white, not black
    assert _px(t, 1, 1) == (10, 200, 30)
    del im.info["transparency"]
    im.save(tmp_path / "p.gif")  # GIF palette without transparency: index 0 stays black
    assert _px(decode_image(tmp_path / "p.gif"), 0, 0) == (0, 0, 0)


def test_alpha_is_composited_on_white(tmp_path):
    a = np.zeros((2, 2, 4), np.uint8)
    a[0, 0] = (255, 0, 0, 255)
    a[0, 1] = (255, 0, 0, 0)
    a[1, 0] = (255, 0, 0, 128)
    a[1, 1] = (0, 0, 0, 0)
    Image.fromarray(a, "RGBA").save(tmp_path / "rgba.png")
    t = decode_image(tmp_path / "rgba.png")
    assert _px(t, 0, 0) == (255, 0, 0)
    assert _px(t, 0, 1) == (255, 255, 255) and _px(t, 1, 1) == (255, 255, 255)
    r, g, b = _px(t, 1, 0)
    assert r == 255 and abs(g - 127) <= 2 and abs(b - 127) <= 2
    la = Image.fromarray(np.array([[[50, 0], [50, 255]]], np.uint8), "LA")
    la.save(tmp_path / "la.png")
    assert decode_image(tmp_path / "la.png")[:, 0].T.tolist() == [[255] * 3, [50] * 3]


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk = np.zeros((16, 16, 4), np.uint8)
    cmyk[..., 0] = 255  # pure cyan
    cmyk[8:, :, 3] = 255  # bottom half: black
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.jpg", quality=95)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    t = decode_image(tmp_path / "c.jpg").int()
    r, g, b = t[:, 2, 8].tolist()
    assert r < 30 and g > 225 and b > 225
    assert t[:, 13, 8].max() < 30


def test_16_bit_pngs_are_scaled_not_clipped(tmp_path):
    v = np.array([[0, 257 * 100], [32896, 65535]], np.uint16)  # 8-bit 0, 100, 128, 255
    Image.fromarray(v).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    t = decode_image(tmp_path / "g16.png")
    assert t[0].tolist() == [[0, 100], [128, 255]] and torch.equal(t[0], t[2])
    rgb = np.zeros((2, 2, 3), np.uint16)
    rgb[0, 0] = (65535, 0, 257 * 100)
    rgb[1, 1] = (32896, 32896, 32896)
    (tmp_path / "rgb16.png").write_bytes(_png16_rgb(rgb))
    t = decode_image(tmp_path / "rgb16.png")
    assert _px(t, 0, 0) == (255, 0, 100) and _px(t, 1, 1) == (128, 128, 128)


def test_big_jpeg_downscaled_matches_full_decode(tmp_path):
    yy, xx = np.mgrid[0:400, 0:300]
    arr = np.stack([xx * 255 // 300, yy * 255 // 400, (xx + yy) % 256], -1).astype(np.uint8)
    (tmp_path / "big.jpg").write_bytes(_jpeg(arr))
    fast = decode_image(tmp_path / "big.jpg", 32).int()  # reduced-scale JPEG decode, then resize
    full = torch.from_numpy(np.array(Image.open(tmp_path / "big.jpg").resize((32, 32), Image.BILINEAR)))
    assert (fast - full.permute(2, 0, 1).int()).abs().float().mean() < 4


# ----------------------------------------------------------------------------------------------------- bad input
@pytest.fixture
def bad_files(tmp_path) -> dict[str, Path]:
    good = _jpeg(np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8))
    files = {
        "empty": (b"", "empty"),
        "corrupt": (np.random.default_rng(2).bytes(2000), "not an image"),
        "truncated": (good[: len(good) * 2 // 3], "truncated"),
        "text": (b"hello, I am not a picture\n" * 10, "not an image"),
        "header_only": (good[:200], ""),
    }
    out = {}
    for name, (data, _) in files.items():
        p = tmp_path / f"{name}.jpg"
        p.write_bytes(data)
        out[name] = p
    return out


@pytest.mark.parametrize("name,says", [("empty", "empty"), ("corrupt", "not an image"), ("truncated", "truncated"),
                                       ("text", "not an image"), ("header_only", "")])
def test_bad_files_raise_data_error_naming_the_file(bad_files, name, says):
    with pytest.raises(DataError) as e:
        decode_image(bad_files[name], 32)
    assert str(bad_files[name]) in str(e.value) and says in str(e.value)


def test_truncation_is_caught_even_if_pillow_is_told_to_hide_it(bad_files, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as some other library might do globally
    with pytest.raises(DataError, match="truncated"):
        decode_image(bad_files["truncated"], 32)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found") as e:
        decode_image(tmp_path / "nope.jpg")
    assert str(tmp_path / "nope.jpg") in str(e.value)


# -------------------------------------------------------------------------------------------------------- layout
def test_layouts_that_are_fine(tmp_path):
    flat = check_layout(write_tree(tmp_path / "flat", {"b": 2, "a": 1}))
    assert not flat.is_split and flat.classes == ["a", "b"] and len(flat.files["all"]["b"]) == 2
    split = check_layout(write_tree(tmp_path / "s", {"Train": {"x": 2, "y": 2}, "VALID": {"x": 1, "y": 1},
                                                     "test": {"x": 1, "y": 1}}))
    assert split.is_split and list(split.splits) == ["train", "val", "test"] and split.classes == ["x", "y"]


def _error(path: Path) -> str:
    with pytest.raises(DataError) as e:
        check_layout(path)
    msg = str(e.value)
    return msg


def test_missing_path(tmp_path):
    msg = _error(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in msg and "does not exist" in msg and "--data" in msg


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "f.jpg").write_bytes(b"x")
    assert "not a folder" in _error(tmp_path / "f.jpg")


def test_no_class_folders(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "loose.jpg").write_bytes(b"x")
    msg = _error(tmp_path / "d")
    assert str(tmp_path / "d") in msg and "no class folders" in msg and "<class>" in msg


def test_only_one_class(tmp_path):
    msg = _error(write_tree(tmp_path / "one", {"cats": 3}))
    assert str(tmp_path / "one") in msg and "only one class" in msg and "cats" in msg


def test_split_class_names_differ(tmp_path):
    root = write_tree(tmp_path / "m", {"train": {"a": 1, "b": 1}, "test": {"a": 1, "c": 1}})
    msg = _error(root)
    assert str(root / "test") in msg and "['a', 'c']" in msg and "same class folder names" in msg


def test_empty_split(tmp_path):
    root = write_tree(tmp_path / "e", {"train": {"a": 2, "b": 2}})
    (root / "validation" / "a").mkdir(parents=True)
    (root / "validation" / "b").mkdir(parents=True)
    msg = _error(root)
    assert str(root / "validation") in msg and "empty split" in msg


def test_empty_class_folder(tmp_path):
    root = write_tree(tmp_path / "ec", {"a": 2, "b": 2})
    (root / "c").mkdir()
    msg = _error(root)
    assert str(root / "c") in msg and "no files" in msg


def test_split_folders_without_train(tmp_path):
    root = write_tree(tmp_path / "nt", {"val": {"a": 1, "b": 1}, "test": {"a": 1, "b": 1}})
    msg = _error(root)
    assert str(root) in msg and "no train folder" in msg
