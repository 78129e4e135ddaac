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

        console.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(USER_ERROR_EXIT)
    except KeyboardInterrupt:
        from .progress import console

        console.print("[yellow]interrupted[/]")
        sys.exit(INTERRUPTED_EXIT)
