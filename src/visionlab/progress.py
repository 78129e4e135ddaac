"""Rich progress bars shared by long work (training, decoding, studies, feature extraction)."""
from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

console = Console(stderr=True)


def progress(disable: bool = False, transient: bool = False) -> Progress:
    """A progress display with ETA; silent when disabled or when stderr is not a terminal and CI is set."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=disable or not sys.stderr.isatty(),
        transient=transient,
    )
