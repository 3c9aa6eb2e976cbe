"""Dataset readers registered by name: ``load(name, root=..., labels=...)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from merkit.datasets.base import ClipDataset
from merkit.datasets.labels import get_scheme
from merkit.errors import ConfigError, DatasetError, check_choice


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    reader: Callable[..., ClipDataset]
    summary: str
    default_labels: str


_READERS: dict[str, DatasetInfo] = {}


def register_dataset(name: str, summary: str, *, default_labels: str):
    """Decorator registering ``reader(root, *, scheme, **options) -> ClipDataset`` under ``name``."""

    def decorate(reader):
        _READERS[name] = DatasetInfo(name, reader, summary, default_labels)
        return reader

    return decorate


def list_datasets() -> list[DatasetInfo]:
    return [_READERS[k] for k in sorted(_READERS)]


def load(name: str, *, root: str | Path | None = None, labels: str | None = None, strict: bool = True, **options) -> ClipDataset:
    """Read the dataset ``name`` from the folder ``root`` as distributed.

    Parameters
    ----------
    name : str
        A registered dataset (``merkit list datasets``).
    root : path
        The folder the user holds, as distributed (for ``manifest``, the CSV file).
    labels : str, optional
        Label scheme (``merkit list labels``); by default the dataset's usual one.
    strict : bool
        Raise on any unusable annotation row (default); with False, keep the usable clips and
        list the rest in ``dataset.problems`` (what ``merkit datasets check`` shows).
    **options
        Reader options, e.g. ``variant='cropped'`` for CASME II, ``smic_root=...`` for MEGC 2019.

    Raises
    ------
    DatasetError
        The root is missing or does not match the layout; the message lists every problem.
    ConfigError
        Unknown dataset, label scheme or option.
    """
    info = _READERS[check_choice("dataset", name, _READERS)]
    scheme = get_scheme(labels or info.default_labels)
    if root is None and not options.get("roots"):  # a composite may be given its members' folders instead
        raise ConfigError(f"Dataset {name!r} needs root=<its folder> (the cross composite: roots={{...}}).")
    if root is not None:
        root = Path(root).expanduser()
        if not root.exists():
            raise DatasetError(f"Dataset root {root} does not exist; pass --root pointing at your copy of {name}.")
    where = root if root is not None else "the folders given"
    try:
        dataset = info.reader(root, scheme=scheme, **options)
    except TypeError as error:
        if "unexpected keyword" not in str(error):
            raise
        raise ConfigError(f"Dataset {name!r} takes no option among {sorted(options)} ({error}).") from None
    if strict and len(dataset) == 0 and len(dataset.dropped):
        words = ", ".join(f"{w} ({n})" for w, n in dataset.dropped["emotion"].value_counts().items())
        raise DatasetError(f"The label scheme {scheme.name!r} keeps no clip of {name} at {where}: it drops every emotion "
                           f"there ({words}). Choose another --labels (merkit list labels).")
    if strict and dataset.problems:
        raise DatasetError(
            f"{name} at {where} does not match its layout ({len(dataset.problems)} problems; "
            f"`merkit datasets check --dataset {name} --root {root}` lists them all):", dataset.problems,
        )
    return dataset
