"""The CLI's consoles and progress bars, shared by every command module."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

console = Console()
errors = Console(stderr=True)


def progress_bar(*extra: ProgressColumn, transient: bool = True) -> Progress:
    """description | bar | done/total | extra columns | time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )
