"""Progress bars for long work: the library reports progress, the CLI decides whether to show it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

_ENABLED = {"value": False}


def show_progress(enabled: bool) -> None:
    """Switch progress bars on (the CLI does) or off (the default for library use)."""
    _ENABLED["value"] = enabled


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A bar for ``total`` steps; yields ``advance(n=1)``."""
    if not _ENABLED["value"] or total == 0:
        yield lambda n=1: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
