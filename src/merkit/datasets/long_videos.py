"""Long-video datasets for spotting, read from their release layouts and workbooks.

A :class:`LongVideo` is one recording: its frames (read lazily, one at a time) and the annotated
intervals, micro and macro, as 0-based positions among its frames. Every folder of the release is
a video, with or without intervals (MEGC scores spotted intervals on all of them).

=============  ==============================================================================
name           layout (confirmed from public loaders: MEGC spotting baselines, SOFTNet, MDMD)
=============  ==============================================================================
casme2_long    ``rawpic/s15/15_0101disgustingteeth/img1.jpg``; ``CAS(ME)^2code_final*.xlsx``
               with no header: sheet ``CASMEcode_final`` (participant number, expression
               ``anger1_1``, onset, apex, offset, AUs, estimated emotion, ``micro-expression`` /
               ``macro-expression``, self-reported emotion), ``naming rule1`` (folder number,
               prefix, participant number) and ``naming rule2`` (video code, video name). An
               offset of 0 ends the interval at its apex. 30 fps.
samm_lv        ``SAMM_longvideos/006_1/006_1_0001.jpg``; ``SAMM_LongVideos_V*_Release.xlsx``:
               preamble rows, then ``Subject, Filename, Inducement Code, Onset, Apex, Offset,
               Duration, Type, Action Units, Notes``; ``Filename`` ``006_1_2`` is interval 2 of
               video ``006_1``; ``Type`` is ``Micro - 1/2`` or ``Macro``. 200 fps.
casme3_long    ``part_A/data/part_A_split/ME_A/spNO.1/a/color/1.jpg``, one folder a recording;
               ``cas(me)3_part_A_ME_label*.xlsx`` (``Subject, Filename, Onset, Apex, Offset, AU,
               emotion``) gives the micro intervals. The macro workbook was not confirmed from a
               public loader: merkit reads ``cas(me)3_part_A_MaE_label*.xlsx`` with the same
               columns when it is there, and otherwise scores micro intervals only. 30 fps.
=============  ==============================================================================
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from merkit.datasets.intervals import Interval
from merkit.datasets.sheets import AnnotationTable, find_one, read_sheets
from merkit.errors import DatasetError, DatasetWarning, check_choice
from merkit.io.frames import frame_number, list_frames, read_frame


@dataclass(frozen=True)
class LongVideo:
    """One long recording: frames on disk, the annotated intervals (positions in ``frame_paths``)."""

    dataset: str
    subject: str
    video: str
    fps: float
    frame_paths: tuple[Path, ...]
    intervals: tuple[Interval, ...]
    kinds: tuple[str, ...] = ("micro", "macro")  # the kinds the release annotates

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.subject}/{self.video}"

    @property
    def n_frames(self) -> int:
        return len(self.frame_paths)

    def frames(self, start: int = 0) -> Iterator[np.ndarray]:
        """uint8 (H, W, 3) RGB frames from position ``start``, read one at a time."""
        for path in self.frame_paths[start:]:
            yield read_frame(path)


def _number(value) -> int | None:
    """A frame number cell: an int, or None for empty, 0, -1 and other marks."""
    try:
        number = int(float(str(value).strip()))
    except ValueError:
        return None
    return number if number > 0 else None


def make_interval(
    onset, apex, offset, kind: str, positions: dict[int, int], where: str, problems: list[str], **coded
) -> Interval | None:
    """An annotated interval from frame numbers (an offset of 0 ends it at the apex), or None
    (recorded in ``problems``) where its frames are not in the video."""
    onset, apex, offset = _number(onset), _number(apex), _number(offset)
    offset = offset or apex
    if onset is None or offset is None:
        problems.append(f"{where}: onset or offset is missing.")
        return None
    missing = [n for n in (onset, apex, offset) if n is not None and n not in positions]
    if missing:
        problems.append(f"{where}: frame {missing[0]} is not among the video's frames.")
        return None
    if not onset <= offset or (apex is not None and not onset <= apex <= offset):
        problems.append(f"{where}: onset {onset}, apex {apex}, offset {offset} are out of order.")
        return None
    return Interval(positions[onset], positions[offset], kind, 1.0, positions[apex] if apex else None, **coded)


def _kind(text: str) -> str | None:
    text = str(text).lower()
    return "micro" if "micro" in text else "macro" if "macro" in text else None


class _Gathering:
    """What a reader gathers from a workbook: intervals by video folder (every folder listed once)
    and the problems, each with its file and row."""

    def __init__(self):
        self.problems: list[str] = []
        self.intervals: dict[Path, list[Interval]] = {}
        self._listed: dict[Path, tuple[tuple[Path, ...], dict[int, int]]] = {}

    def frames(self, folder: Path) -> tuple[Path, ...]:
        return self._listing(folder)[0]

    def _listing(self, folder: Path) -> tuple[tuple[Path, ...], dict[int, int]]:
        if folder not in self._listed:
            frames = tuple(list_frames(folder))
            self._listed[folder] = frames, {frame_number(p): i for i, p in enumerate(frames)}
        return self._listed[folder]

    def add(self, folder: Path, onset, apex, offset, kind: str, where: str, **coded) -> None:
        interval = make_interval(onset, apex, offset, kind, self._listing(folder)[1], where, self.problems, **coded)
        if interval:
            self.intervals.setdefault(folder, []).append(interval)

    def videos(
        self,
        name: str,
        root: Path,
        dataset: str,
        fps: float,
        folders,
        subject_of: Callable[[Path], str],
        video_of: Callable[[Path], str],
        kinds: tuple[str, ...] = ("micro", "macro"),
        *,
        strict: bool = False,
    ) -> list[LongVideo]:
        """A LongVideo per folder of ``folders``, sorted by key. The workbook rows with a problem
        are left out with one DatasetWarning naming each; with ``strict``, one DatasetError instead."""
        if self.problems and strict:
            raise DatasetError(f"{name} under {root} has {len(self.problems)} problem(s):", self.problems)
        videos = [
            LongVideo(
                dataset,
                subject_of(f),
                video_of(f),
                fps,
                self.frames(f),
                tuple(sorted(self.intervals.get(f, ()), key=lambda i: i.onset)),
                kinds,
            )
            for f in folders
        ]
        if not videos:
            raise DatasetError(f"No {name} videos under {root}; pass the folder as distributed.")
        if self.problems:
            kept = sum(len(v.intervals) for v in videos)
            warnings.warn(
                DatasetWarning(
                    f"{name} under {root}: skipped {len(self.problems)} annotation row(s) that cannot become intervals, kept {kept} "
                    "intervals (strict=True refuses them instead):\n" + "\n".join(f"  - {p}" for p in self.problems)
                ),
                stacklevel=3,
            )
        return sorted(videos, key=lambda v: v.key)


def read_casme2_long(root: Path, *, strict: bool = False) -> list[LongVideo]:
    frames_root = root / "rawpic"
    if not frames_root.is_dir():
        raise DatasetError(
            f"No rawpic/ under {root}; pass the CAS(ME)^2 folder that holds rawpic/ and the code workbook."
        )
    path = find_one(root, "CAS(ME)^2code_final*.xlsx", what="CAS(ME)^2 code workbook")
    sheets = read_sheets(path)
    codes = [n for n in sheets if n.lower().endswith("code_final")]
    if not codes or "naming rule1" not in sheets or "naming rule2" not in sheets:
        raise DatasetError(
            f"{path} needs the sheets CASMEcode_final, naming rule1 and naming rule2; it has {', '.join(sheets)}."
        )
    folder_of = {
        _number(r[2]): int(float(r[0])) for r in sheets["naming rule1"].itertuples(index=False) if _number(r[2])
    }
    code_of = {
        str(r[1]).strip(): int(float(r[0])) for r in sheets["naming rule2"].itertuples(index=False) if _number(r[0])
    }
    gathered = _Gathering()
    problems = gathered.problems
    for i, row in enumerate(sheets[codes[0]].itertuples(index=False), start=1):
        where = f"{path.name} sheet {codes[0]} row {i}"
        if _number(row[2]) is None and _number(row[0]) is None:
            continue  # a header or empty row
        participant, name = _number(row[0]), str(row[1]).strip()
        video_name = re.sub(r"_\d+$", "", name)
        if participant not in folder_of or video_name not in code_of:
            problems.append(f"{where}: participant {row[0]} or video {video_name!r} is not in the naming rules.")
            continue
        number = folder_of[participant]
        matches = sorted((frames_root / f"s{number:02d}").glob(f"{number:02d}_{code_of[video_name]:04d}*"))
        if not matches:
            problems.append(f"{where}: no folder rawpic/s{number:02d}/{number:02d}_{code_of[video_name]:04d}*.")
            continue
        kind = _kind(row[7])
        if kind is None:
            problems.append(f"{where}: expression type {row[7]!r} is neither micro nor macro.")
            continue
        gathered.add(
            matches[0], row[2], row[3], row[4], kind, where, aus=str(row[5]).strip(), emotion=str(row[6]).strip()
        )
    return gathered.videos(
        "CAS(ME)^2",
        root,
        "casme2_long",
        30.0,
        [f for f in frames_root.glob("s*/*") if f.is_dir()],
        subject_of=lambda f: f.parent.name,
        video_of=lambda f: f.name,
        strict=strict,
    )


def read_samm_lv(root: Path, *, strict: bool = False) -> list[LongVideo]:
    frames_root = root / "SAMM_longvideos"
    if not frames_root.is_dir():
        raise DatasetError(f"No SAMM_longvideos/ under {root}; pass the folder that holds it and the release workbook.")
    path = find_one(root, "SAMM_LongVideos_V*_Release.xlsx", what="SAMM long videos workbook")
    columns = {
        "clip": "Filename",
        "subject": "Subject",
        "onset": "Onset",
        "apex": "Apex",
        "offset": "Offset",
        "type": "Type",
    }
    table = AnnotationTable.read(path, columns, header_row=None)
    gathered = _Gathering()
    problems = gathered.problems
    for record in table.records(problems):
        where = f"{path.name} row {record.row}"
        video = "_".join(str(record["clip"]).strip().split("_")[:2])
        folder = frames_root / video
        if not folder.is_dir():
            problems.append(f"{where}: no folder SAMM_longvideos/{video}.")
            continue
        kind = _kind(record["type"])
        if kind is None:
            problems.append(f"{where}: Type {record['type']!r} is neither micro nor macro.")
            continue
        gathered.add(
            folder,
            record["onset"],
            record["apex"],
            record["offset"],
            kind,
            where,
            aus=str(record.get("Action Units", "")).strip(),
        )
    return gathered.videos(
        "SAMM long videos",
        root,
        "samm_lv",
        200.0,
        [f for f in frames_root.iterdir() if f.is_dir()],
        subject_of=lambda f: f.name.split("_")[0],
        video_of=lambda f: f.name,
        strict=strict,
    )


def read_casme3_long(root: Path, *, strict: bool = False) -> list[LongVideo]:
    part_a = root / "part_A" if (root / "part_A").is_dir() else root
    frames_root = part_a / "data" / "part_A_split" / "ME_A"
    if not frames_root.is_dir():
        raise DatasetError(f"No data/part_A_split/ME_A under {part_a}; pass the folder that holds part_A/.")
    sheet_dir = root if list(root.glob("cas(me)3_part_A_ME_label*.xlsx")) else part_a
    columns = {"subject": "Subject", "clip": "Filename", "onset": "Onset", "apex": "Apex", "offset": "Offset"}
    sheets = [("micro", find_one(sheet_dir, "cas(me)3_part_A_ME_label*.xlsx", what="CAS(ME)3 part A ME workbook"))]
    macro = sorted(sheet_dir.glob("cas(me)3_part_A_MaE_label*.xlsx"))
    sheets += [("macro", macro[0])] if macro else []
    gathered = _Gathering()
    for kind, path in sheets:
        table = AnnotationTable.read(path, columns)
        for record in table.records(gathered.problems):
            where = f"{path.name} row {record.row}"
            folder = frames_root / str(record["subject"]).strip() / str(record["clip"]).strip() / "color"
            if not folder.is_dir():
                gathered.problems.append(f"{where}: no folder {folder.relative_to(part_a)}.")
                continue
            gathered.add(
                folder,
                record["onset"],
                record["apex"],
                record["offset"],
                kind,
                where,
                aus=str(record.get("AU", "")).strip(),
                emotion=str(record.get("emotion", "")).strip(),
            )
    return gathered.videos(
        "CAS(ME)3 part A",
        root,
        "casme3_long",
        30.0,
        list(frames_root.glob("*/*/color")),
        subject_of=lambda f: f.parent.parent.name,
        video_of=lambda f: f.parent.name,
        kinds=("micro", "macro") if macro else ("micro",),
        strict=strict,
    )


LONG_DATASETS: dict[str, tuple[Callable[..., list[LongVideo]], str]] = {
    "casme2_long": (read_casme2_long, "CAS(ME)^2 long videos: 22 subjects, 98 videos, 30 fps, micro and macro"),
    "samm_lv": (read_samm_lv, "SAMM long videos: 147 videos, 200 fps, micro and macro"),
    "casme3_long": (read_casme3_long, "CAS(ME)3 part A recordings, 30 fps, micro (macro where its workbook is there)"),
}


def load_long_videos(name: str, root: str | Path, *, strict: bool = False) -> list[LongVideo]:
    """The long videos of dataset ``name`` (``casme2_long``, ``samm_lv``, ``casme3_long``) under
    ``root`` as distributed, sorted by key. Workbook rows that cannot become intervals (errata of
    the release, a missing folder) are left out with one DatasetWarning listing each; with
    ``strict`` every problem of the workbook is listed in one DatasetError instead."""
    reader, _ = LONG_DATASETS[check_choice("long-video dataset", name, LONG_DATASETS)]
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; pass the {name} folder as distributed.")
    return reader(root, strict=strict)
