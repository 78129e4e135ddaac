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
    if origin is list and (typing.get_origin(args[0]) is typing.Literal or args[0] is str):
        return list[str]  # a repeatable flag (--track tensorboard --track mlflow; --alert R1 --alert R2)
    if origin is typing.Literal or origin in (tuple, list):
        return str
    return ann


def choices(ann: Any) -> Optional[tuple[str, ...]]:
    """The values a Literal field (or Optional[Literal], or a list of Literals) allows, else None."""
    if typing.get_origin(ann) is typing.Union:
        ann = [a for a in typing.get_args(ann) if a is not type(None)][0]
    if typing.get_origin(ann) is list:
        ann = typing.get_args(ann)[0]
    return tuple(map(str, typing.get_args(ann))) if typing.get_origin(ann) is typing.Literal else None


def shown_default(default: Any) -> str:
    """What --help adds for a field's default: ``[default: VALUE]``; nothing for None or an empty list (the
    description says what happens then, e.g. 'default per model')."""
    if default is None or default == []:
        return ""
    if isinstance(default, (list, tuple)):
        default = ",".join(map(str, default))
    return f" \\[default: {str(default).lower() if isinstance(default, bool) else default}]"  # \\[: not rich markup


def options_from(model_cls: Any, names: Optional[tuple[str, ...]] = None):
    """Give ``fn`` one --option per field of the pydantic ``model_cls`` (or those ``names``): its type, help and
    real default come from the field, and --help lists a Literal field's choices (typer reads Literal types as
    choices); every option defaults to None, so only what is given overrides."""
    def deco(fn):
        params = [p for p in inspect.signature(fn).parameters.values() if p.kind != p.VAR_KEYWORD]
        for name, f in model_cls.model_fields.items():
            if names is not None and name not in names:
                continue
            typ = cli_type(f.annotation)
            allowed = choices(f.annotation)
            flag = "--" + name.replace("_", "-")
            decls = [f"{flag}/--no-{name.replace('_', '-')}"] if typ is bool else [flag]
            help_ = (f.description or "") + shown_default(f.get_default(call_default_factory=True))
            if allowed and typ is str:
                typ = typing.Literal[allowed]
            elif allowed:  # a repeatable list of choices: typer shows the element type, so the help names them
                help_ += f" (one or more of: {', '.join(allowed)})"
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[typ],
                                            default=typer.Option(None, *decls, show_default=False, help=help_)))
        fn.__signature__ = inspect.Signature(params)
        return fn
    return deco
