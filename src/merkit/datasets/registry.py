"""Dataset readers registered by name: ``load(name, root=..., labels=...)``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from merkit.datasets.base import ClipDataset
from merkit.datasets.labels import get_scheme
from merkit.errors import BOOLEAN_WORDS, ConfigError, DatasetError, DatasetWarning, check_choice


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


def read(name: str, *, root: str | Path | None = None, labels: str | None = None, **options) -> ClipDataset:
    """The dataset ``name`` as its reader gives it: rows with problems skipped and listed in
    ``problems``, nothing refused or warned about (``merkit datasets check``, and the composites,
    which report their members' rows themselves). Arguments as for :func:`load`."""
    info = _READERS[check_choice("dataset", name, _READERS)]
    scheme = get_scheme(labels or info.default_labels)
    if root is None and not options.get("roots"):  # a composite may be given its members' folders instead
        raise ConfigError(f"Dataset {name!r} needs root=<its folder> (the cross composite: roots={{...}}).")
    if root is not None:
        root = Path(root).expanduser()
        if not root.exists():
            raise DatasetError(f"Dataset root {root} does not exist; pass --root pointing at your copy of {name}.")
    try:
        return info.reader(root, scheme=scheme, **options)
    except TypeError as error:
        if "unexpected keyword" not in str(error):
            raise
        raise ConfigError(f"Dataset {name!r} takes no option among {sorted(options)} ({error}).") from None


def load(
    name: str, *, root: str | Path | None = None, labels: str | None = None, strict: bool | str = False, **options
) -> ClipDataset:
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
        Refuse the dataset if any annotation row is unusable. By default (False) such rows
        (errata of the release: an offset of 0 or before the onset, an apex outside onset..offset,
        a repeated row; a clip folder missing from the copy) are skipped with one DatasetWarning
        listing each, and recorded in ``dataset.problems``, ``dataset.skipped`` and
        ``dataset.metadata.attrs["skipped"]``. ``'true'``/``'false'`` are accepted (``--option strict=true``).
    **options
        Reader options, e.g. ``variant='cropped'`` for CASME II, ``smic_root=...`` for MEGC 2019.

    Raises
    ------
    DatasetError
        The root is missing or does not match the layout (no workbook, an unknown column layout,
        no usable clip at all; with ``strict``, any unusable row); the message lists every problem.
    ConfigError
        Unknown dataset, label scheme or option.
    """
    strict = _boolean("strict", strict)
    dataset = read(name, root=root, labels=labels, **options)
    where = root if root is not None else "the folders given"
    if dataset.problems and (strict or len(dataset) + len(dataset.dropped) == 0):
        raise DatasetError(
            f"{name} at {where} does not match its layout ({len(dataset.problems)} problems; "
            f"`merkit datasets check --dataset {name} --root {root}` lists them all):",
            dataset.problems,
        )
    if len(dataset) == 0 and len(dataset.dropped):
        words = ", ".join(f"{w} ({n})" for w, n in dataset.dropped["emotion"].value_counts().items())
        raise DatasetError(
            f"The label scheme {dataset.labels!r} keeps no clip of {name} at {where}: it drops every emotion "
            f"there ({words}). Choose another --labels (merkit list labels)."
        )
    if dataset.problems:
        rows = len(set(zip(dataset.skipped["dataset"], dataset.skipped["file"], dataset.skipped["row"])))
        warnings.warn(
            DatasetWarning(
                f"{name} at {where}: skipped {rows} annotation row(s) that cannot become clips, kept {len(dataset)} clips "
                f"(strict=True, on the command line --option strict=true, refuses them instead):\n"
                + "\n".join(f"  - {p}" for p in dataset.problems)
            ),
            stacklevel=2,
        )
    return dataset


def _boolean(name: str, value: bool | str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in BOOLEAN_WORDS:
        raise ConfigError(f"Option {name}={value!r} must be a boolean: one of {', '.join(BOOLEAN_WORDS)}.")
    return BOOLEAN_WORDS[word]
