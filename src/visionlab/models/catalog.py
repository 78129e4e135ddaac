"""The model registry itself, in its own module so that the model families which register into it
(backbones.py, scratch_adapter.py) import it without importing the package that loads them."""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..config import RunConfig
from ..registry import Registry

Builder = Callable[[RunConfig, int, int], nn.Module]
MODELS: Registry[Builder] = Registry("model")
