"""The HTTP service and its page: ``create_app`` builds the FastAPI app, ``serve`` runs it under uvicorn.

Imported lazily so that mounting ``visionlab serve`` on the CLI costs no FastAPI or torch import."""
from __future__ import annotations

import sys

__all__ = ["create_app", "serve"]


def _serve(*args, **kwargs):
    from .cli import serve
    return serve(*args, **kwargs)


def _install() -> None:
    import functools
    import inspect

    from ..verbs import make_callable
    from . import cli  # typer only: cheap; the signature must be the real one for the API-mirror test

    verb = functools.wraps(cli.serve)(_serve)
    verb.__signature__ = inspect.signature(cli.serve)
    make_callable(__name__, verb)


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app
        return create_app
    if name == "serve":
        from .cli import serve
        return serve
    raise AttributeError(name)


_install()  # visionlab.serve(...) mirrors `visionlab serve ...` (verbs.py)
