"""Command-line options generated from a typed config: one --option per pydantic field, with its type, choices,
help and default, so a command's flags and its config (and the Python function's keywords) never drift apart.
Used by ``visionlab detect`` and ``visionlab serve`` (``DetectConfig``). Kept free of the main CLI so a sub-app
(serve/cli.py) can import it.
"""
from __future__ import annotations

import inspect
import typing
from typing import Any, Optional

import typer


def cli_type(ann: Any) -> Any:
    args = typing.get_args(ann)
    origin = typing.get_origin(ann)
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)][0]
        return cli_type(inner)
    if origin is list and typing.get_origin(args[0]) is typing.Literal:
        return list[str]  # a repeatable flag (--track tensorboard --track mlflow)
    if origin is typing.Literal or origin in (tuple, list):
        return str
    return ann


def options_from(model_cls: Any, names: Optional[tuple[str, ...]] = None):
    """Give ``fn`` one --option per field of the pydantic ``model_cls`` (or those ``names``): its type, choices,
    help and default come from the field; every option defaults to None, so only what is given overrides."""
    def deco(fn):
        params = [p for p in inspect.signature(fn).parameters.values() if p.kind != p.VAR_KEYWORD]
        for name, f in model_cls.model_fields.items():
            if names is not None and name not in names:
                continue
            typ = cli_type(f.annotation)
            choices = typing.get_args(f.annotation) if typing.get_origin(f.annotation) is typing.Literal else ()
            choices = choices or next((typing.get_args(a) for a in typing.get_args(f.annotation)
                                       if typing.get_origin(a) is typing.Literal), ())
            extra = f" [{'|'.join(map(str, choices))}]" if choices else ""
            default = "" if f.default is None or typ is bool else f" (default: {f.default})"
            flag = "--" + name.replace("_", "-")
            decls = [f"{flag}/--no-{name.replace('_', '-')}"] if typ is bool else [flag]
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[typ],
                                            default=typer.Option(None, *decls, help=f"{f.description or ''}{extra}"
                                                                 f"{default}", show_default=False)))
        fn.__signature__ = inspect.Signature(params)
        return fn
    return deco
