"""The data layer: folders, CIFAR-10 or synthetic images -> checked, decoded once, cached uint8 tensors -> splits.

``build(cfg)`` is the one entry point; ``decode_image`` is shared with prediction and serving so a model sees
the same pixels everywhere.
"""
from ..images import decode_image
from .sources import SOURCES, build
from .types import ImageData, Split

__all__ = ["build", "decode_image", "ImageData", "Split", "SOURCES"]
