"""The one wrapper every visionlab command line runs under: an error a user can cause is one red line.

``visionlab`` and the sub-apps' own entry points (``python -m visionlab.active.cli``, ``python -m
visionlab.studies.cli``) all call ``run_app``. A ``VisionlabError`` (``ConfigError``, ``DataError`` and its
``WriteError`` from visionlab/io.py, ``ModelError``) is printed as ``error: <message>`` on stderr, unwrapped,
and exits 2; so does a ``ModuleNotFoundError`` for an optional extra's module (extras.py: the line names the
extra to install). Ctrl-C prints ``interrupted`` and exits 130. Anything else is a bug and keeps its traceback.
Kept free of typer, rich and the config so a sub-app can import it without importing the main CLI.
"""
from __future__ import annotations

import sys
from typing import Any, Optional

from .errors import VisionlabError
from .extras import missing_extra

USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130


def escape(text: str) -> str:
    """``text`` with rich's markup brackets escaped, so ``visionlab[train]`` or ``[0, 1]`` print as written."""
    from rich.markup import escape as _escape

    return _escape(text)


def run_app(app: Any, argv: Optional[list[str]] = None) -> None:
    """Run a typer app (standalone mode: it exits itself) with visionlab's error handling. A file name that is
    not UTF-8 (held as surrogate escapes) is printed with its bytes escaped, never a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # (a TextIOWrapper; a test's capture may lack it)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        app(args=argv, standalone_mode=True)
    except VisionlabError as e:
        from .progress import console

        console.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(USER_ERROR_EXIT)
    except ModuleNotFoundError as e:
        line = missing_extra(e)
        if line is None:
            raise
        from .progress import console

        console.print(f"[red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
        sys.exit(USER_ERROR_EXIT)
    except KeyboardInterrupt:
        from .progress import console

        console.print("[yellow]interrupted[/]")
        sys.exit(INTERRUPTED_EXIT)
