"""Clips and datasets of clips: metadata in a DataFrame, frames read only when asked for."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from merkit.datasets.aus import parse_aus
from merkit.datasets.labels import is_multilabel
from merkit.errors import DatasetError
from merkit.io.frames import read_frame, read_frames
from merkit.io.video import read_video

METADATA_COLUMNS = (
    "dataset",
    "subject",
    "clip",
    "emotion",
    "label",
    "onset",
    "apex",
    "offset",
    "n_frames",
    "fps",
    "source",
    "kind",
)
KINDS = ("frames", "video", "flow_image", "array")
SKIPPED_COLUMNS = ("dataset", "file", "row", "subject", "clip", "reason")

FLOW_CHANNELS = "uvs"  # u, v, optical strain


@dataclass(frozen=True)
class Problem:
    """Why an annotation row (or a clip folder) did not become a clip.

    ``file`` is the workbook (or folder) and ``row`` its 1-based row as a spreadsheet program shows
    it (0: no row); ``subject`` and ``clip`` what the row names, where it got that far; ``dataset``
    the member of a composite it comes from.
    """

    file: str
    row: int
    reason: str
    subject: str = ""
    clip: str = ""
    dataset: str = ""

    def __str__(self) -> str:
        where = f"{self.file} row {self.row}" if self.row else self.file
        names = f" ({self.subject}/{self.clip})" if self.subject or self.clip else ""
        return f"{self.dataset + ': ' if self.dataset else ''}{where}{names}: {self.reason}"


class SkippedRows(tuple):
    """The Problems of the skipped rows, as ``metadata.attrs["skipped"]`` holds them. Immutable, so
    every copy pandas makes of the metadata (one per row read) shares it instead of copying it."""

    def __deepcopy__(self, memo):
        return self


@dataclass(frozen=True)
class Clip:
    """One micro-expression clip.

    ``onset``, ``apex`` and ``offset`` are 0-based positions in ``frame_paths`` (numeric order);
    ``apex`` is None where the annotation has none. ``label`` is the class under the dataset's
    label scheme. ``source`` says where the frames come from (a folder or a file); ``kind`` how:
    ``frames`` (image files), ``video`` (one video file) or ``flow_image`` (one onset-to-apex
    optical-flow image, whose channels ``flow_channels`` names in R, G, B order) or ``array``
    (frames held in memory as ``array``, uint8 (T, H, W, 3) RGB; ``frame_paths`` is empty).
    ``face_image`` is an image of the clip's face (a manifest's column, for clips without
    frames, such as flow images), or empty.
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
    n_frames: int
    source: str = ""
    kind: str = "frames"
    flow_channels: str = FLOW_CHANNELS
    array: np.ndarray | None = field(default=None, compare=False, repr=False)
    face_image: str = ""

    @property
    def key(self) -> str:
        """Unique id of the clip across datasets: ``dataset/subject/clip``."""
        return f"{self.dataset}/{self.subject}/{self.clip}"

    def read(self, *, grey: bool = False) -> np.ndarray:
        """All frames, uint8 (T, H, W, 3) RGB or (T, H, W) grey."""
        if self.kind == "video":
            return read_video(self.frame_paths[0], grey=grey)
        if self.kind == "array":
            return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in self.array]) if grey else self.array
        if self.kind == "flow_image":
            raise DatasetError(f"Clip {self.key} is an optical-flow image, not frames: read it with read_flow().")
        return read_frames(self.frame_paths, grey=grey)

    def read_flow(self) -> np.ndarray:
        """The onset-to-apex flow image as float32 (H, W, 3) channels u, v, strain, scaled to [0, 1]."""
        if self.kind != "flow_image":
            raise DatasetError(f"Clip {self.key} holds {self.kind}, not an optical-flow image.")
        rgb = read_frame(self.frame_paths[0]).astype(np.float32) / 255.0
        return rgb[..., [self.flow_channels.index(c) for c in FLOW_CHANNELS]]

    def fingerprint(self) -> str:
        """SHA-256 of the frames' bytes in order: the content key of every cached step."""
        digest = hashlib.sha256()
        if self.kind == "array":
            digest.update(repr(self.array.shape).encode())
            digest.update(np.ascontiguousarray(self.array).tobytes())
        for path in self.frame_paths:
            digest.update(Path(path).read_bytes())
        if self.face_image:  # what is read of the clip includes its face
            digest.update(Path(self.face_image).read_bytes())
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
    problems : list of Problem
        Rows that could not become clips and were skipped (a load with ``strict=True`` refuses
        them instead); also in ``metadata.attrs["skipped"]`` and, as a table, :attr:`skipped`.
    orphans : list of str
        Clip folders on disk that no annotation row names.
    arrays : sequence of ndarray or None, optional
        Frames held in memory, for clips of kind ``array`` (None for the others).

    Notes
    -----
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
        problems: Sequence[str] = (),
        orphans: Sequence[str] = (),
        arrays: Sequence[np.ndarray | None] | None = None,
    ):
        self.name = name
        self.metadata = metadata.reset_index(drop=True)
        self.frame_paths = list(frame_paths)
        self.classes = tuple(classes)
        self.labels = labels
        self.dropped = dropped if dropped is not None else self.metadata.iloc[0:0]
        self.problems = list(problems)
        self.metadata.attrs["skipped"] = SkippedRows(self.problems)
        self.orphans = list(orphans)
        self.arrays = list(arrays) if arrays is not None else [None] * len(self.frame_paths)

    def __len__(self) -> int:
        return len(self.metadata)

    def __getitem__(self, index: int) -> Clip:
        row = self.metadata.iloc[index]
        apex = row["apex"]
        channels, face = row.get("flow_channels"), row.get("face_image")
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
            n_frames=int(row["n_frames"]),
            source=row["source"],
            kind=row["kind"],
            flow_channels=channels if isinstance(channels, str) else FLOW_CHANNELS,
            array=self.arrays[index],
            face_image=face if isinstance(face, str) else "",
        )

    def __iter__(self) -> Iterator[Clip]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"ClipDataset({self.name!r}, {len(self)} clips, labels={self.labels!r}, classes={self.classes})"

    @property
    def skipped(self) -> pd.DataFrame:
        """The skipped annotation rows, one line per reason: columns ``SKIPPED_COLUMNS``."""
        records = [p if isinstance(p, Problem) else Problem("", 0, str(p)) for p in self.problems]
        return pd.DataFrame([[getattr(p, c) for c in SKIPPED_COLUMNS] for p in records], columns=list(SKIPPED_COLUMNS))

    @property
    def y(self) -> np.ndarray:
        """(n_clips,) int class codes in the order of ``classes``."""
        return pd.Categorical(self.metadata["label"], categories=self.classes).codes.astype(np.int64)

    @property
    def multilabel(self) -> bool:
        """Whether each clip has a set of classes (action units) rather than one."""
        return is_multilabel(self.labels)

    @property
    def targets(self) -> np.ndarray:
        """(n_clips, n_classes) uint8 multi-hot targets of a multi-label dataset."""
        return multi_hot(self.metadata["label"], self.classes)

    @property
    def groups(self) -> np.ndarray:
        """(n_clips,) subject ids namespaced by dataset (``casme2/sub01``): LOSO's groups."""
        return (self.metadata["dataset"] + "/" + self.metadata["subject"]).to_numpy()

    @property
    def keys(self) -> np.ndarray:
        """(n_clips,) unique clip ids ``dataset/subject/clip``."""
        return (self.metadata["dataset"] + "/" + self.metadata["subject"] + "/" + self.metadata["clip"]).to_numpy()

    def digest(self) -> str:
        """A short SHA-256 of the clip ids, in order: which clips a run or a model saw."""
        return hashlib.sha256("\n".join(self.keys).encode()).hexdigest()[:16]

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
            problems=self.problems,
            arrays=[self.arrays[i] for i in indices],
        )

    def with_apex(self, positions: Sequence[int | None], source: str) -> ClipDataset:
        """A copy whose missing apexes are filled with ``positions``, recorded in ``apex_source``."""
        metadata = self.metadata.copy()
        missing = metadata["apex"].isna().to_numpy()
        metadata.loc[missing, "apex"] = [p for p, m in zip(positions, missing) if m]
        metadata["apex_source"] = np.where(missing, source, metadata.get("apex_source", "annotation"))
        return ClipDataset(
            self.name,
            metadata,
            self.frame_paths,
            self.classes,
            labels=self.labels,
            dropped=self.dropped,
            problems=self.problems,
            orphans=self.orphans,
            arrays=self.arrays,
        )


def multi_hot(labels, classes) -> np.ndarray:
    """(n, n_classes) uint8: ``AU1+AU4`` -> ones in the AU1 and AU4 columns (``none``: all zero)."""
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(labels), len(classes)), dtype=np.uint8)
    for row, label in enumerate(labels):
        for name in str(label).split("+"):
            if name in index:
                out[row, index[name]] = 1
    return out


def make_metadata(rows: list[dict]) -> pd.DataFrame:
    """A metadata table with the standard columns first and nullable integer positions."""
    rows = [{"kind": "frames", **r} for r in rows]
    frame = pd.DataFrame(
        rows, columns=list(METADATA_COLUMNS) + sorted({k for r in rows for k in r} - set(METADATA_COLUMNS))
    )
    for column in ("onset", "apex", "offset", "n_frames"):
        frame[column] = frame[column].astype("Int64")
    frame["fps"] = frame["fps"].astype(float)
    return frame


def assemble(
    name: str, scheme, rows: list[dict], frame_paths: list[tuple[Path, ...]], *, problems=(), orphans=()
) -> ClipDataset:
    """A ClipDataset from reader rows: the scheme's label of each row decides kept or dropped.

    Each row carries the fields of ``METADATA_COLUMNS``; a row without a ``label`` gets the
    scheme's class of its emotion. ``frame_paths`` aligns with ``rows``. Rows whose emotion the
    scheme drops go to ``dropped``.
    """
    kept, kept_paths, dropped = [], [], []
    for row, paths in zip(rows, frame_paths):
        label = row.get("label")
        if label is None:
            label = (
                scheme.label_of_aus(row.get("action_units"))
                if scheme.multilabel
                else scheme.map(row["dataset"], row["emotion"])
            )
        row = {**row, "label": label}
        if "action_units" in row:  # the spreadsheet's AU cell as numbers: "4+L10" -> "4+10"
            row["aus"] = "+".join(map(str, parse_aus(row["action_units"])))
        row.setdefault("apex_source", "annotation" if row["apex"] is not None else "")
        if row["label"] is None:
            dropped.append(row)
        else:
            kept.append(row)
            kept_paths.append(paths)
    metadata = make_metadata(kept)
    return ClipDataset(
        name,
        metadata,
        kept_paths,
        scheme.class_order(metadata["label"]),
        labels=scheme.name,
        dropped=make_metadata(dropped),
        problems=problems,
        orphans=orphans,
    )
