"""Clips and datasets of clips: metadata in a DataFrame, frames read only when asked for."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from merkit.io.frames import read_frames

METADATA_COLUMNS = (
    "dataset", "subject", "clip", "emotion", "label", "onset", "apex", "offset", "n_frames", "fps", "source",
)


@dataclass(frozen=True)
class Clip:
    """One micro-expression clip.

    ``onset``, ``apex`` and ``offset`` are 0-based positions in ``frame_paths`` (numeric order);
    ``apex`` is None where the annotation has none. ``label`` is the class under the dataset's
    label scheme. ``source`` says where the frames come from (a folder or a file).
    """

    dataset: str
    subject: str
    clip: str
    emotion: str
    label: str
    onset: int
    apex: int | None
    offset: int
    fps: float
    frame_paths: tuple[Path, ...]
    source: str = ""

    @property
    def n_frames(self) -> int:
        return len(self.frame_paths)

    @property
    def key(self) -> str:
        """Unique id of the clip across datasets: ``dataset/subject/clip``."""
        return f"{self.dataset}/{self.subject}/{self.clip}"

    def read(self, *, grey: bool = False) -> np.ndarray:
        """All frames, uint8 (T, H, W, 3) RGB or (T, H, W) grey."""
        return read_frames(self.frame_paths, grey=grey)

    def fingerprint(self) -> str:
        """SHA-256 of the frames' bytes in order: the content key of every cached step."""
        digest = hashlib.sha256()
        for path in self.frame_paths:
            digest.update(Path(path).read_bytes())
        return digest.hexdigest()


class ClipDataset:
    """Clips of one or several datasets under one label scheme.

    Parameters
    ----------
    name : str
        Dataset name as given to :func:`merkit.datasets.load`.
    metadata : DataFrame
        One row per clip with at least the columns of ``METADATA_COLUMNS``.
    frame_paths : sequence of tuple of Path
        Each clip's frame files in numeric order, aligned with ``metadata``'s rows.
    classes : tuple of str
        Class order of the label scheme.
    labels : str
        The label scheme's name.
    dropped : DataFrame, optional
        Clips the label scheme left out (same columns, ``label`` empty).

    Nothing is read here: readers build the table, frames are read by :meth:`Clip.read`.
    """

    def __init__(
        self,
        name: str,
        metadata: pd.DataFrame,
        frame_paths: Sequence[tuple[Path, ...]],
        classes: tuple[str, ...],
        *,
        labels: str,
        dropped: pd.DataFrame | None = None,
    ):
        self.name = name
        self.metadata = metadata.reset_index(drop=True)
        self.frame_paths = list(frame_paths)
        self.classes = tuple(classes)
        self.labels = labels
        self.dropped = dropped if dropped is not None else self.metadata.iloc[0:0]

    def __len__(self) -> int:
        return len(self.metadata)

    def __getitem__(self, index: int) -> Clip:
        row = self.metadata.iloc[index]
        apex = row["apex"]
        return Clip(
            dataset=row["dataset"],
            subject=row["subject"],
            clip=row["clip"],
            emotion=row["emotion"],
            label=row["label"],
            onset=int(row["onset"]),
            apex=None if pd.isna(apex) else int(apex),
            offset=int(row["offset"]),
            fps=float(row["fps"]),
            frame_paths=self.frame_paths[index],
            source=row["source"],
        )

    def __iter__(self) -> Iterator[Clip]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"ClipDataset({self.name!r}, {len(self)} clips, labels={self.labels!r}, classes={self.classes})"

    @property
    def y(self) -> np.ndarray:
        """(n_clips,) int class codes in the order of ``classes``."""
        return pd.Categorical(self.metadata["label"], categories=self.classes).codes.astype(np.int64)

    @property
    def groups(self) -> np.ndarray:
        """(n_clips,) subject ids namespaced by dataset (``casme2/sub01``): LOSO's groups."""
        return (self.metadata["dataset"] + "/" + self.metadata["subject"]).to_numpy()

    @property
    def keys(self) -> np.ndarray:
        """(n_clips,) unique clip ids ``dataset/subject/clip``."""
        return (self.metadata["dataset"] + "/" + self.metadata["subject"] + "/" + self.metadata["clip"]).to_numpy()

    def subset(self, indices: Sequence[int] | np.ndarray) -> ClipDataset:
        """The clips at ``indices``, same classes and scheme (used for a fold's train and test)."""
        indices = np.asarray(indices, dtype=np.int64)
        return ClipDataset(
            self.name,
            self.metadata.iloc[indices],
            [self.frame_paths[i] for i in indices],
            self.classes,
            labels=self.labels,
            dropped=self.dropped,
        )


def make_metadata(rows: list[dict]) -> pd.DataFrame:
    """A metadata table with the standard columns first and nullable integer positions."""
    frame = pd.DataFrame(rows, columns=list(METADATA_COLUMNS) + sorted({k for r in rows for k in r} - set(METADATA_COLUMNS)))
    for column in ("onset", "apex", "offset", "n_frames"):
        frame[column] = frame[column].astype("Int64")
    frame["fps"] = frame["fps"].astype(float)
    return frame
