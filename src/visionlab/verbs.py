"""Packages that are also verbs: ``visionlab.detect(...)``, ``visionlab.models()``, ``visionlab.serve(...)``
mirror the CLI's `visionlab detect`, `visionlab models`, `visionlab serve` although ``visionlab.detect`` (and the
others) are subpackages. Python lets a module's class be replaced by a ModuleType subclass (the documented way to
give a module ``__call__``); every attribute still comes from the module itself.
"""
from __future__ import annotations

import functools
import inspect
import sys
import types
from typing import Callable


def make_callable(module_name: str, verb: Callable) -> None:
    """Calling the module ``module_name`` calls ``verb`` (whose signature and docstring the module shows)."""

    class _Verb(types.ModuleType):
        @functools.wraps(verb)
        def __call__(self, *args, **kwargs):
            return verb(*args, **kwargs)

    module = sys.modules[module_name]
    module.__class__ = _Verb
    module.__signature__ = inspect.signature(verb)  # inspect.signature(visionlab.detect) is the verb's, in full
