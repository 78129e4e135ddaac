"""The one wrapper every visionlab command line runs under: an error a user can cause is one red line.

``visionlab`` and the sub-apps' own entry points (``python -m visionlab.active.cli``, ``python -m
visionlab.studies.cli``) all call ``run_app``. A ``VisionlabError`` (``ConfigError``, ``DataError`` and its
``WriteError`` from visionlab/io.py, ``ModelError``) is printed as ``error: <message>`` on stderr, unwrapped,
and exits 2; Ctrl-C prints ``interrupted`` and exits 130. Anything else is a bug and keeps its traceback.
Kept free of typer, rich and the config so a sub-app can import it without importing the main CLI.
"""
from __future__ import annotations

import sys
from typing import Any, Optional

from .errors import VisionlabError

USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130


def run_app(app: Any, argv: Optional[list[str]] = None) -> None:
    """Run a typer app (standalone mode: it exits itself) with visionlab's error handling."""
    try:
        app(args=argv, standalone_mode=True)
    except VisionlabError as e:
        from rich.markup import escape

        from .progress import console

        # escaped: a message such as "pip install 'visionlab[track]'" must print its brackets
        console.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(USER_ERROR_EXIT)
    except KeyboardInterrupt:
        from .progress import console

        console.print("[yellow]interrupted[/]")
        sys.exit(INTERRUPTED_EXIT)
