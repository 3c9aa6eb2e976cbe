"""Annotation errata of real releases, written into a synthetic release on purpose.

Official workbooks carry rows no user's copy can fix (DATASETS.md, "Errata in real releases"),
and partial downloads lack clip folders. ``write_dataset(..., errata=True)`` (``merkit synth
--errata``) spoils a few rows of the release it writes, one of each kind in ``ERRATA``, so that
every reader's handling of them is exercised: the reader skips each such row and names it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ERRATA = {
    "offset_zero": "the offset cell is 0 (CAS(ME)2 and CAS(ME)3 both have some)",
    "offset_before_onset": "the offset is one frame before the onset",
    "apex_outside": "the apex is one frame after the offset",
    "duplicate": "the row is repeated right below itself (the copy is skipped, the first kept)",
    "missing_folder": "the row's clip folder is missing, as from a partial download",
    "empty_folder": "a clip folder holds no frames (SMIC's only kind: it has no workbook)",
}


@dataclass(frozen=True)
class Erratum:
    """One spoilt row: its ``kind`` (a key of ``ERRATA``), the workbook ``file`` (relative to the
    release root) and its 1-based ``row`` as a spreadsheet program shows it, the clip it names."""

    kind: str
    file: str
    row: int
    subject: str
    clip: str


@dataclass(frozen=True)
class SheetSpec:
    """Where a layout's sheet rows keep the marks (column indices) and how a row names its folder."""

    onset: int
    apex: int
    offset: int
    folder: Callable[[Path, Sequence], Path]


def spoil_rows(
    pairs: list, spec: SheetSpec, root: Path, file: str, first_row: int, seed: int
) -> tuple[list, list[Erratum]]:
    """Spoil one row of each kind of ``ERRATA`` among ``pairs`` (``(truth, row)`` in sheet order).

    Returns the new pairs (a spoilt row's truth is None: the reader must not yield it; a repeated
    row comes right below its original) and the errata with their spreadsheet rows, counted from
    ``first_row`` (the row number of the first data row). Needs at least six rows; the clip folder
    of the ``missing_folder`` row is deleted (every row naming it is then that kind of erratum).
    """
    if len(pairs) < 6:
        raise ValueError(f"Writing errata into {file} needs at least 6 rows; it has {len(pairs)}. Write more subjects.")
    rng = np.random.default_rng([seed, 31])
    folders = [spec.folder(root, row) for _, row in pairs]
    alone = [i for i, f in enumerate(folders) if folders.count(f) == 1] or list(range(len(pairs)))
    missing = int(rng.choice(alone))
    elsewhere = [i for i in range(len(pairs)) if folders[i] != folders[missing]]
    if len(elsewhere) < 5:
        raise ValueError(f"Writing errata into {file} needs five rows outside one clip folder. Write more subjects.")
    others = [int(i) for i in rng.permutation(elsewhere)[:4]]
    kind_of = {i: "missing_folder" for i in range(len(pairs)) if folders[i] == folders[missing]}
    kind_of |= dict(zip(others, ("offset_zero", "offset_before_onset", "apex_outside", "duplicate")))
    shutil.rmtree(folders[missing])
    out, spoilt = [], []
    for i, (truth, row) in enumerate(pairs):
        kind, row = kind_of.get(i), list(row)
        names = (truth.subject, truth.clip)
        if kind == "offset_zero":
            row[spec.offset] = 0
        elif kind == "offset_before_onset":
            row[spec.offset] = int(row[spec.onset]) - 1
        elif kind == "apex_outside":
            row[spec.apex] = int(row[spec.offset]) + 1
        if kind is not None and kind != "duplicate":
            spoilt.append(Erratum(kind, file, first_row + len(out), *names))
        out.append((None if kind is not None and kind != "duplicate" else truth, row))
        if kind == "duplicate":
            spoilt.append(Erratum(kind, file, first_row + len(out), *names))
            out.append((None, list(row)))
    return out, spoilt
