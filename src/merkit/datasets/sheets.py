"""Annotation spreadsheets: find them, read them, check their columns, parse frame numbers."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from merkit.errors import DatasetError

MISSING_MARKS = frozenset({"", "/", "-", "-1", "nan", "none"})


def find_one(root: Path, pattern: str, *, what: str) -> Path:
    """The single file matching ``pattern`` in ``root``; an error names the pattern otherwise."""
    matches = sorted(root.glob(pattern))
    if not matches:
        raise DatasetError(f"No {what} ({pattern}) in {root}; put the file as distributed in that folder.")
    if len(matches) > 1:
        names = ", ".join(m.name for m in matches)
        raise DatasetError(f"Several files match {pattern} in {root} ({names}); keep only the one to use.")
    return matches[0]


def read_sheets(path: Path, sheet: int | None = None) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """The cells of ``path`` (.xlsx, .xls or .csv) as text, no header row taken: sheet number
    ``sheet``, or every sheet by name with None; a file no reader can open raises DatasetError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas warns that its xlrd engine (for .xls) is old
            if path.suffix.lower() == ".csv":
                frame = pd.read_csv(path, dtype=object, header=None)
                return frame if sheet is not None else {path.stem: frame}
            return pd.read_excel(path, dtype=object, header=None, sheet_name=sheet)
    except Exception as error:  # the reader libraries raise many kinds
        raise DatasetError(f"Cannot read annotation file {path}: {error}") from error


@dataclass
class Record:
    """One spreadsheet row: ``row`` is its 1-based row number as a spreadsheet program shows it."""

    row: int
    values: Mapping[str, object]
    columns: Mapping[str, str]

    def __getitem__(self, field: str):
        return self.values[self.columns[field]]

    def get(self, column: str, default=None):
        value = self.values.get(column, default)
        return default if value is None or (isinstance(value, float) and pd.isna(value)) else value

    def frame_number(self, field: str, reasons: list[str], *, optional: bool = False) -> int | None:
        """The integer in ``field``; a missing mark gives None (a reason in ``reasons`` unless ``optional``)."""
        value = self[field]
        text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip()
        if text.lower() in MISSING_MARKS:
            if not optional:
                reasons.append(f"{self.columns[field]} is empty.")
            return None
        try:
            number = float(text)
        except ValueError:
            reasons.append(f"{self.columns[field]} {text!r} is not a frame number.")
            return None
        if number != int(number):
            reasons.append(f"{self.columns[field]} {text!r} is not a whole frame number.")
            return None
        return int(number)


@dataclass
class AnnotationTable:
    """An annotation sheet read as text cells, with its required columns checked."""

    path: Path
    frame: pd.DataFrame
    columns: Mapping[str, str]
    header_row: int

    @classmethod
    def read(cls, path: Path, columns: Mapping[str, str], *, header_row: int | None = 0) -> AnnotationTable:
        """Read ``path`` (.xlsx, .xls or .csv); ``columns`` maps merkit fields to required headers.

        ``header_row`` is the 0-based row holding the headers; None finds it as the first row that
        holds the first required header (SAMM has about 13 preamble rows above it).
        """
        frame = read_sheets(path, sheet=0)
        if header_row is None:
            first = next(iter(columns.values()))
            hits = [i for i in range(min(len(frame), 40)) if first in {str(v).strip() for v in frame.iloc[i]}]
            if not hits:
                raise DatasetError(
                    f"Annotation file {path} has no header row with {first!r} in its first 40 rows; "
                    "restore the header as distributed."
                )
            header_row = hits[0]
        header = [str(c).strip() if not pd.isna(c) else f"Unnamed: {i}" for i, c in enumerate(frame.iloc[header_row])]
        frame = frame.iloc[header_row + 1 :].set_axis(header, axis=1)
        frame.index = range(len(frame))
        missing = [c for c in columns.values() if c not in frame.columns]
        if missing:
            raise DatasetError(
                f"Annotation file {path} lacks the column(s) {', '.join(repr(m) for m in missing)}; "
                f"its header row has {', '.join(repr(c) for c in frame.columns)}. "
                "Restore the header as distributed."
            )
        frame = frame.dropna(how="all")
        return cls(path, frame, columns, header_row)

    def rows(self) -> Iterator[tuple[Record, list[str]]]:
        """Every row, with the required columns it leaves empty (none for a usable row)."""
        required = [self.columns[f] for f in self.columns if not f.startswith("apex")]
        for index, values in self.frame.iterrows():
            empty = [c for c in required if pd.isna(values[c]) or str(values[c]).strip() == ""]
            yield Record(int(index) + self.header_row + 2, values.to_dict(), self.columns), empty

    def records(self, problems: list[str]) -> Iterator[Record]:
        """Rows with every required cell filled; rows missing one are reported in ``problems``."""
        for record, empty in self.rows():
            if empty:
                problems.append(f"{self.path.name} row {record.row}: empty {', '.join(empty)}.")
                continue
            yield record
