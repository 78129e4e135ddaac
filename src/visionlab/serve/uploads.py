"""Checking what a client uploads before any pixel is decoded, and the service's JSON errors.

Order of checks: the body size (``limits.BodyLimit``, before parsing), then here: empty or not an image
(415), more pixels than allowed from the header alone (413: a 50 MP PNG of one colour is a few kB and
would decode to 150 MB), then the full decode through the data layer (400 for truncated or corrupt).
"""
from __future__ import annotations

import io
import warnings
from typing import Callable, Optional

import numpy as np
from PIL import Image
from starlette.exceptions import HTTPException

from ..images import decode_array, decoded_bytes
from ..errors import DataError

# Formats a browser or camera produces. Pillow reads many more (EPS, PSD, FITS, ...); each is attack
# surface a photo upload does not need.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "MPO")


class ApiError(Exception):
    """An error the client caused or can retry; becomes ``{"error": code, "detail": message}``."""

    def __init__(self, status: int, error: str, detail: str, headers: Optional[dict[str, str]] = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers or {}


def decode_upload(data: bytes, max_pixels: float) -> np.ndarray:
    """The upload as an H x W x 3 uint8 RGB array (EXIF orientation applied), or an ``ApiError``."""
    if not data:
        raise ApiError(415, "unsupported_media_type", "the uploaded file is empty; send a JPEG, PNG or WebP photo")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as im:  # reads the header only
                width, height = im.size
                cost = decoded_bytes(im)
    except Image.DecompressionBombError:
        raise ApiError(413, "image_too_large", f"the image has more than {max_pixels / 1e6:g} megapixels; "
                                               f"send a smaller one") from None
    except Exception:
        raise ApiError(415, "unsupported_media_type",
                       f"the upload is not an image of a supported format ({', '.join(FORMATS)})") from None
    if width * height > max_pixels:
        raise ApiError(413, "image_too_large", f"the image is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
                                               f"the limit is {max_pixels / 1e6:g} megapixels, send a smaller one")
    # memory, not pixels, is what a decode costs: a 16-bit or many-channel image counts by its decoded bytes,
    # against what an 8-bit RGB image of max_pixels costs (its buffer plus the RGB result: 6 bytes a pixel)
    if cost > max_pixels * 6:
        raise ApiError(413, "image_too_large",
                       f"the image is {width}x{height} in mode {im.mode}: decoding it needs {cost / 2 ** 20:.0f} MiB, "
                       f"over the {max_pixels * 6 / 2 ** 20:.0f} MiB that {max_pixels / 1e6:g} megapixels of 8-bit "
                       f"RGB need; send a smaller or 8-bit image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return decode_array(data)
    except DataError as e:
        detail = str(e).removeprefix("<bytes>: ")
        raise ApiError(400, "invalid_image", f"the image cannot be decoded: {detail}") from None


class MultipartEnd:
    """ASGI middleware: a multipart body must reach its closing delimiter (``--BOUNDARY--``). A body cut before
    it (a client that died mid-upload, a truncating proxy) is 400 ``bad_request`` as docs/service.md promises;
    the multipart parser itself drops the unfinished part silently, which routing then reported as a 422 for a
    missing field. The delimiter is looked for across chunk edges; an epilogue after it is allowed."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        closing = _closing_delimiter(scope) if scope["type"] == "http" else None
        if closing is None:
            return await self.app(scope, receive, send)
        seen, tail = False, b""

        async def checking_receive() -> dict:
            nonlocal seen, tail
            msg = await receive()
            if msg["type"] == "http.request" and not seen:
                window = tail + msg.get("body", b"")
                seen = closing in window
                tail = window[-len(closing):]
                if not seen and not msg.get("more_body", False):
                    raise HTTPException(400, "broken multipart body: it ends before its closing boundary "
                                             "(the upload was cut off); send the whole file again")
            return msg

        await self.app(scope, checking_receive, send)


def _closing_delimiter(scope: dict) -> Optional[bytes]:
    """``--BOUNDARY--`` of a multipart request, else None (python-multipart parses the header, quotes and all)."""
    from python_multipart.multipart import parse_options_header

    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            kind, options = parse_options_header(value)
            boundary = options.get(b"boundary")
            if kind.startswith(b"multipart/") and boundary:
                return b"--" + boundary + b"--"
    return None
