"""What a labeller sees around a queued face: the photo or video frame it came from, with the face outlined.

A face queue item (facequery.py) carries ``context``: the frame image inside the project (``frames/...``), the
face's box in that image's pixels, the source file's name and the time in the video. The frame is read from the
project only (never from the user's file, which may have moved), and only from its ``frames/`` folder: a
hand-edited queue.json cannot make a labeller read anything else.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

from PIL import Image, ImageDraw

from ..errors import DataError
from .store import read_regular

FRAMES = "frames"
OUTLINE = (255, 196, 0)  # amber: visible on skin, masks and most backgrounds; a dark rim keeps it visible on light


def frame_path(project: Path, item: dict) -> Optional[Path]:
    """The item's frame file, if it has one and it lies in PROJECT/frames; else None."""
    ctx = item.get("context")
    if not isinstance(ctx, dict) or not isinstance(ctx.get("frame"), str):
        return None
    root = (Path(project) / FRAMES).resolve()
    p = (Path(project) / ctx["frame"]).resolve()
    return p if root in p.parents and p.is_file() else None


def outlined(project: Path, item: dict, max_side: int = 768) -> Optional[Image.Image]:
    """The frame (at most ``max_side`` px a side) with the face's box drawn, or None without a context."""
    p = frame_path(project, item)
    if p is None:
        return None
    try:
        with Image.open(io.BytesIO(read_regular(p))) as im:
            im = im.convert("RGB")
    except DataError:
        return None
    except Exception as e:  # PIL raises many types for a damaged file
        raise DataError(f"the context frame {p.name} cannot be decoded ({e})") from None
    scale = min(1.0, max_side / max(im.size))
    if scale < 1:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR)
    box = item["context"].get("box")
    if isinstance(box, list) and len(box) == 4:
        x, y, w, h = (float(v) * scale for v in box)
        pad = max(2.0, 0.15 * max(w, h))  # a little outside the face, so the outline does not hide it
        width = max(2, round(max(im.size) / 250))
        d = ImageDraw.Draw(im)
        d.rectangle([x - pad - width, y - pad - width, x + w + pad + width, y + h + pad + width], outline=(0, 0, 0),
                    width=1)
        d.rectangle([x - pad, y - pad, x + w + pad, y + h + pad], outline=OUTLINE, width=width)
    return im


def outlined_jpeg(project: Path, item: dict, max_side: int = 768) -> Optional[bytes]:
    im = outlined(project, item, max_side)
    if im is None:
        return None
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=88)
    return buf.getvalue()


def caption(item: dict) -> str:
    """'clip.mp4 at 12.5 s' or 'IMG_0042.jpg', plus the face probability when known."""
    ctx = item.get("context") or {}
    where = str(ctx.get("source", ""))
    if ctx.get("time_s") is not None:
        where += f" at {float(ctx['time_s']):.1f} s"
    if item.get("face_prob") is not None:
        where += f" · face probability {float(item['face_prob']):.2f}"
    return where
