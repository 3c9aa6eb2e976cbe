"""The ``merkit`` command: parses arguments, calls the library, renders progress and tables.

One module per command group (``data``, ``experiments``, ``models``, ``live``, ``demo``); what they share (the
app, the error boundary, common options) is in ``common``, the tables they print in ``tables``.
"""

from merkit.cli import data, demo, experiments, live, models  # noqa: F401  (each registers its commands)
from merkit.cli.common import app


def main() -> None:  # pragma: no cover
    app()


__all__ = ["app", "main"]
