"""Progress bars for long work: the library reports progress, the CLI decides whether to show it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

_ENABLED = {"value": False}


def show_progress(enabled: bool) -> None:
    """Switch progress bars on (the CLI does) or off (the default for library use)."""
    _ENABLED["value"] = enabled


class RateColumn(ProgressColumn):
    """Steps per second, e.g. ``41 frames/s``."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        return Text(f"{task.speed:.0f} {self.unit}/s" if task.speed else f"- {self.unit}/s")


@contextmanager
def progress_bar(description: str, total: int, *, unit: str | None = None) -> Iterator[Callable[[int], None]]:
    """A bar for ``total`` steps (0: unknown); yields ``advance(n=1)``. With ``unit`` it shows the
    rate, e.g. frames per second."""
    if not _ENABLED["value"] or (total == 0 and unit is None):
        yield lambda n=1: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        *([RateColumn(unit)] if unit else []),
    )
    with Progress(*columns) as bar:
        task = bar.add_task(description, total=total or None)
        yield lambda n=1: bar.advance(task, n)
