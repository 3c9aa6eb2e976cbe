"""Dataset readers registered by name: ``load(name, root=..., labels=...)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from merkit.datasets.base import ClipDataset
from merkit.errors import DatasetError, check_choice


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    reader: Callable[..., ClipDataset]
    summary: str


_READERS: dict[str, DatasetInfo] = {}


def register_dataset(name: str, summary: str):
    """Decorator registering ``reader(root, labels, **options) -> ClipDataset`` under ``name``."""

    def decorate(reader):
        _READERS[name] = DatasetInfo(name, reader, summary)
        return reader

    return decorate


def list_datasets() -> list[DatasetInfo]:
    return [_READERS[k] for k in sorted(_READERS)]


def load(name: str, *, root: str | Path, labels: str = "seed4", **options) -> ClipDataset:
    """Read the dataset ``name`` from the folder ``root`` as distributed.

    Parameters
    ----------
    name : str
        A registered dataset (``merkit list datasets``).
    root : path
        The folder the user holds, as distributed.
    labels : str
        Label scheme (``merkit list labels``).

    Raises
    ------
    DatasetError
        The root is missing or does not match the layout; the message lists every problem.
    ConfigError
        Unknown dataset or label scheme.
    """
    info = _READERS[check_choice("dataset", name, _READERS)]
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"Dataset root {root} does not exist; pass --root pointing at your copy of {name}.")
    return info.reader(root, labels=labels, **options)
