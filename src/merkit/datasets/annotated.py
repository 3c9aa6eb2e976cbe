"""The path shared by every dataset with an annotation sheet: rows -> clip folders -> clips.

A reader says how a row names its subject and its clip folder; this module turns the frame
numbers of the row into 0-based positions in the folder's numerically ordered frames, checks
them, and collects every problem (with file and row) rather than stopping at the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from merkit.datasets.sheets import AnnotationTable, Record
from merkit.io.frames import frame_number, list_frames


@dataclass
class Parts:
    """What a reader gathered: rows and their frames, problems, and the folders it used."""

    rows: list[dict] = field(default_factory=list)
    frame_paths: list[tuple[Path, ...]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    used: set[Path] = field(default_factory=set)

    def orphans(self, folders) -> list[str]:
        """Clip folders among ``folders`` that no row named."""
        used = {p.resolve() for p in self.used}
        return sorted(str(f) for f in folders if f.is_dir() and f.resolve() not in used)


def locate(
    frames: list[Path], numbers: dict[str, int | None], where: str, columns: dict[str, str], problems: list[str], *, trim: bool
) -> tuple[list[Path], dict[str, int | None]] | None:
    """Positions of onset/apex/offset among ``frames`` from their frame numbers.

    With ``trim`` the clip is the frames from onset to offset of a longer recording (CAS(ME)³),
    and the positions are counted from the onset. Returns None (and records why) if unusable.
    """
    position = {frame_number(p): i for i, p in enumerate(frames)}
    marks: dict[str, int | None] = {}
    ok = True
    for mark in ("onset", "apex", "offset"):
        number = numbers.get(mark)
        if number is None:
            marks[mark] = None
        elif number in position:
            marks[mark] = position[number]
        else:
            problems.append(f"{where}: {columns[mark]} {number} is not among the folder's frames "
                            f"({frame_number(frames[0])}..{frame_number(frames[-1])}).")
            ok = False
    if not ok or marks["onset"] is None or marks["offset"] is None:
        return None
    if marks["onset"] > marks["offset"]:
        problems.append(f"{where}: onset {numbers['onset']} comes after offset {numbers['offset']}.")
        return None
    if marks["apex"] is not None and not marks["onset"] <= marks["apex"] <= marks["offset"]:
        problems.append(f"{where}: apex {numbers['apex']} lies outside onset..offset ({numbers['onset']}..{numbers['offset']}).")
        return None
    if trim:
        start = marks["onset"]
        frames = frames[start : marks["offset"] + 1]
        marks = {k: (v - start if v is not None else None) for k, v in marks.items()}
    return frames, marks


def read_rows(
    table: AnnotationTable,
    *,
    dataset: str,
    fps: float,
    subject_of: Callable[[Record], str],
    folder_of: Callable[[Record, str], Path],
    clip_of: Callable[[Record], str] = lambda r: str(r["clip"]).strip(),
    apex_fields: tuple[str, ...] = ("apex",),
    trim: bool = False,
    extra: Callable[[Record], dict] = lambda r: {},
) -> Parts:
    """Clips of every usable row of ``table``; unusable rows become problems naming file and row.

    ``apex_fields``: the first of these columns with a value is the apex (CASME has two).
    """
    parts = Parts()
    problems = parts.problems
    for record in table.records(problems):
        where = f"{table.path.name} row {record.row}"
        try:
            subject = subject_of(record)
        except ValueError:
            problems.append(f"{where}: subject {record['subject']!r} is not a subject number.")
            continue
        clip_id = clip_of(record)
        folder = folder_of(record, subject)
        where = f"{where} ({subject}/{clip_id})"
        if not folder.is_dir():
            problems.append(f"{where}: no frame folder {folder}.")
            continue
        parts.used.add(folder)
        frames = list_frames(folder)
        if not frames:
            problems.append(f"{where}: clip folder {folder} holds no frames.")
            continue
        n_problems = len(problems)
        numbers = {m: record.frame_number(m, problems, where) for m in ("onset", "offset")}
        apexes = [record.frame_number(f, problems, where, optional=True) for f in apex_fields]
        numbers["apex"] = next((a for a in apexes if a is not None), None)
        if len(problems) > n_problems:
            continue
        located = locate(frames, numbers, where, table.columns | {"apex": table.columns[apex_fields[0]]}, problems, trim=trim)
        if located is None:
            continue
        clip_frames, marks = located
        if trim:
            clip_id = f"{clip_id}_{numbers['onset']}"
        parts.rows.append({
            "dataset": dataset, "subject": subject, "clip": clip_id, "emotion": str(record["emotion"]).strip().lower(),
            "n_frames": len(clip_frames), "fps": fps, "source": str(folder), **marks, **extra(record),
        })
        parts.frame_paths.append(tuple(clip_frames))
    return parts
