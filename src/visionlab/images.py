"""The ground floor for images: which file names are images or videos, and the one decoder every part of
visionlab reads a photo with (training data, prediction, serving, face crops), so a model sees the same pixels
everywhere.

No torch import at module level: the active-learning store lists pool images with ``IMAGE_SUFFIXES`` and its
terminal labeller starts without torch (``decode_image`` imports it when called). Every decoding failure is a
``DataError`` that names the file and says what to do, never a Pillow traceback.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
from PIL import Image, ImageFile, ImageOps

from .errors import DataError
from .files import read_regular

if TYPE_CHECKING:
    import torch

# Photos both OpenCV (detection, face crops) and Pillow (everything else) decode, by their suffix in any case.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                            ".pgm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
                            ".mjpeg", ".mjpg"})  # the last two: an IP camera's MJPEG saved to a file

# Keras' image_dataset_from_directory resizes with bilinear interpolation; Pillow's is antialiased.
RESAMPLE = Image.Resampling.BILINEAR
WHITE = (255, 255, 255)


def _name(src: str | Path | bytes) -> str:
    return "<bytes>" if isinstance(src, (bytes, bytearray, memoryview)) else str(src)


def _truncation_hidden(data: bytes, fmt: Optional[str]) -> bool:
    """True when Pillow was told to pad truncated files (LOAD_TRUNCATED_IMAGES) and this one lacks its end marker.

    Pillow raises on truncation by default; this guard only runs when some library turned that off globally.
    """
    if fmt == "JPEG":  # the end-of-image marker must follow the start of the scan data
        return data.rfind(b"\xff\xd9") < data.find(b"\xff\xda")
    if fmt == "PNG":
        return data.rfind(b"IEND") < 0
    return False


# bytes per pixel of a decoded Pillow image, by mode (what ``im.load()`` allocates)
MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "La": 2, "PA": 2, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3,
              "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4, "I": 4, "F": 4, "I;16": 2, "I;16L": 2, "I;16B": 2,
              "I;16N": 2}


def decoded_bytes(im: Image.Image) -> int:
    """Peak bytes decoding ``im`` to 8-bit RGB costs, from its header: the decoded buffer (16-bit, 32-bit and
    many-channel images count by their real sample size) plus the RGB result, every frame counted once."""
    w, h = im.size
    per = MODE_BYTES.get(im.mode)
    if per is None:  # an unusual mode: count its bands at up to 4 bytes each
        per = 4 * max(1, len(im.getbands()))
    return w * h * (per + 3)


def _gray16_to_rgb(a: np.ndarray, scale: float) -> Image.Image:
    """16/32-bit or float gray samples to 8-bit RGB in row blocks, so memory is the result plus one block,
    not several float64 copies of the whole image (a 36 MP 16-bit PNG cost about 1 GB that way)."""
    h, w = a.shape[:2]
    out = np.empty((h, w, 3), np.uint8)
    step = max(1, (1 << 22) // max(1, w))  # ~4 M samples per block
    for r in range(0, h, step):
        block = np.nan_to_num(a[r:r + step].astype(np.float32) * np.float32(scale))
        g = np.clip(block, 0, 255).round().astype(np.uint8)
        out[r:r + step] = g[:, :, None]
    return Image.fromarray(out, "RGB")


def _to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB from any Pillow mode: alpha is composited on white, high bit depths are scaled, not clipped."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "P":  # palette: its transparency (an index or a table) becomes alpha first
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        return _to_rgb(im)
    if mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im)  # the samples as they are (uint16, int32 or float32): no float64 copy
        scale = 1.0
        if mode.startswith("I;16"):
            scale = 1 / 257.0  # 65535 -> 255
        elif mode == "F" and a.size and np.nanmax(a) <= 1.0:
            scale = 255.0  # float images in 0..1
        elif a.size and np.nanmax(a) > 255:
            scale = 1 / 257.0  # 32-bit modes holding 16-bit samples (older Pillow opens 16-bit PNGs as "I")
        return _gray16_to_rgb(a, scale)
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, RGBX, ...


def pil_to_rgb_array(im: Image.Image) -> np.ndarray:
    """H x W x 3 uint8 RGB of an in-memory Pillow image, converted exactly as ``decode_array`` converts a file's
    (EXIF orientation; palette and its transparency, alpha on white, 16/32-bit and float scaled, CMYK, 1-bit):
    ``visionlab.detect(image)`` sees the pixels ``visionlab.detect(path)`` would."""
    try:
        im = ImageOps.exif_transpose(im) or im
    except Exception:  # a broken EXIF block should not cost an otherwise good image (as decode_array)
        pass
    arr = np.asarray(_to_rgb(im), dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3 or not arr.size:
        raise DataError(f"a Pillow image of mode {im.mode} and size {im.size} cannot be used: it has no pixels")
    return arr


def array_to_uint8(a: np.ndarray) -> np.ndarray:
    """An image array in 8 bits per sample, scaled as the decoder scales the same samples in a file: uint16 by
    1/257 (65535 -> 255), floats in 0..1 by 255 (others clipped to 0..255), wider integers holding 16-bit values
    by 1/257, bool to 0/255. Any other dtype (complex, object, strings) is a ``DataError`` naming it."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * np.uint8(255)
    if a.dtype.kind not in "uif":
        raise DataError(f"expected an image array of numbers (uint8, uint16, float), got dtype {a.dtype}")
    if a.dtype.kind == "u" and a.dtype.itemsize == 2:
        scale = 1 / 257.0
    elif a.dtype.kind == "f":
        top = float(np.nanmax(a)) if a.size else 0.0
        scale = 255.0 if top <= 1.0 else 1.0
    else:
        scale = 1 / 257.0 if a.size and int(a.max()) > 255 else 1.0
    return np.clip(np.nan_to_num(a.astype(np.float32) * np.float32(scale)), 0, 255).round().astype(np.uint8)


def decode_array(src: str | Path | bytes, size: Optional[int] = None) -> np.ndarray:
    """Like ``decode_image`` but returns a H x W x 3 uint8 NumPy array (what the cache fills its buffer with)."""
    name = _name(src)
    data = bytes(src) if isinstance(src, (bytes, bytearray, memoryview)) else read_regular(src)
    if not data:
        raise DataError(f"{name}: empty file (0 bytes); delete or replace it")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            if size is not None and fmt == "JPEG":
                im.draft("RGB", (size, size))  # decode a big JPEG at 1/2, 1/4 or 1/8 scale: same result, faster
            im.load()
            if ImageFile.LOAD_TRUNCATED_IMAGES and _truncation_hidden(data, fmt):
                raise OSError("image file is truncated")
            try:  # in place: without an orientation tag the default returns a copy of the whole image
                ImageOps.exif_transpose(im, in_place=True)
            except Exception:  # a broken EXIF block should not cost an otherwise good image
                pass
            im = _to_rgb(im)
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), RESAMPLE)  # aspect not kept, as Keras does
            arr = np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except Image.DecompressionBombError as e:
        raise DataError(f"{name}: image too large to decode safely ({e})") from None
    except Exception as e:  # Pillow raises many types (UnidentifiedImageError, OSError, SyntaxError, ...)
        msg = str(e) or type(e).__name__
        if "cannot identify image file" in msg:
            msg = "not an image Pillow can read (corrupt, or not an image despite its name); delete or replace it"
        elif "truncat" in msg.lower():
            msg = f"truncated image file ({msg}); copy it again or delete it"
        else:
            msg = f"corrupt or unsupported image ({msg}); delete or replace it"
        raise DataError(f"{name}: {msg}") from None
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise DataError(f"{name}: decoded to an unexpected shape {arr.shape}")
    return arr


def decode_image(src: str | Path | bytes, size: Optional[int] = None) -> "torch.Tensor":
    """Decode one image into a uint8 RGB tensor 3 x S x S (3 x H x W when ``size`` is None).

    EXIF orientation is applied; grayscale, palette, alpha (composited on white), CMYK and 16-bit images become
    8-bit RGB. Resizing is bilinear with antialiasing and does not keep the aspect ratio. Raises ``DataError``
    naming the file for a missing, empty, truncated, corrupt or non-image file.
    """
    import torch

    return torch.from_numpy(np.ascontiguousarray(decode_array(src, size).transpose(2, 0, 1)))
