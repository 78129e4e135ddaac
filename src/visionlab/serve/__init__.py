"""The HTTP service and its page: ``create_app`` builds the FastAPI app, ``serve`` runs it under uvicorn.

Imported lazily so that mounting ``visionlab serve`` on the CLI costs no FastAPI or torch import."""
from __future__ import annotations

from ..verbs import make_callable
from .cli import serve as _serve  # typer and the detection config only: no FastAPI yet

__all__ = ["create_app", "serve"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app
        return create_app
    if name == "serve":
        from .cli import serve
        return serve
    raise AttributeError(name)


make_callable(__name__, _serve)  # visionlab.serve(...) mirrors `visionlab serve ...` (verbs.py)
