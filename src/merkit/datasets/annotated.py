"""The path shared by every dataset with an annotation sheet: rows -> clip folders -> clips.

A reader says how a row names its subject and its clip folder; this module turns the frame
numbers of the row into 0-based positions in the folder's numerically ordered frames, checks
them, and collects every problem (with file and row) rather than stopping at the first: a row
with a problem is skipped, the others become clips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from merkit.datasets.base import Problem
from merkit.datasets.sheets import AnnotationTable, Record
from merkit.io.frames import frame_number, list_frames


@dataclass
class Parts:
    """What a reader gathered: rows and their frames, the rows it skipped, and the folders it used."""

    rows: list[dict] = field(default_factory=list)
    frame_paths: list[tuple[Path, ...]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    used: set[Path] = field(default_factory=set)

    def orphans(self, folders) -> list[str]:
        """Clip folders among ``folders`` that no row named."""
        used = {p.resolve() for p in self.used}
        return sorted(str(f) for f in folders if f.is_dir() and f.resolve() not in used)

    def merge(self, other: Parts) -> Parts:
        """This and ``other`` together (a dataset read from several sheets)."""
        return Parts(
            self.rows + other.rows,
            self.frame_paths + other.frame_paths,
            self.problems + other.problems,
            self.used | other.used,
        )


def locate(
    frames: list[Path], numbers: dict[str, int | None], columns: dict[str, str], reasons: list[str], *, trim: bool
) -> tuple[list[Path], dict[str, int | None]] | None:
    """Positions of onset/apex/offset among ``frames`` from their frame numbers.

    The annotation is checked before the folder: an offset before the onset (an offset of 0 among
    them) or an apex outside onset..offset is an erratum of the release, whatever the folder holds.
    With ``trim`` the clip is the frames from onset to offset of a longer recording (CAS(ME)³),
    and the positions are counted from the onset. Returns None (and records why) if unusable.
    """
    onset, apex, offset = numbers["onset"], numbers["apex"], numbers["offset"]
    if offset < onset:
        reasons.append(
            f"{columns['offset']} {offset} comes before {columns['onset']} {onset}"
            + (" (an offset of 0: none was coded)." if offset == 0 else ".")
        )
        return None
    if apex is not None and not onset <= apex <= offset:
        reasons.append(
            f"{columns['apex']} {apex} lies outside {columns['onset']}..{columns['offset']} ({onset}..{offset})."
        )
        return None
    position = {frame_number(p): i for i, p in enumerate(frames)}
    missing = [m for m in ("onset", "apex", "offset") if numbers[m] is not None and numbers[m] not in position]
    for mark in missing:
        reasons.append(
            f"{columns[mark]} {numbers[mark]} is not among the folder's frames "
            f"({frame_number(frames[0])}..{frame_number(frames[-1])})."
        )
    if missing:
        return None
    marks = {m: (position[n] if n is not None else None) for m, n in numbers.items()}
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
    zero_is_first: tuple[str, ...] = (),
) -> Parts:
    """Clips of every usable row of ``table``; the others are skipped, each reason a Problem
    naming the file, the row and (where known) the subject and clip.

    This is where every annotated reader's rows are checked, the errata of real releases among
    them: an empty or non-numeric frame cell, an offset before the onset (or of 0), an apex outside
    onset..offset, a frame number not in the folder, a missing or empty clip folder, and a row that
    repeats an earlier row's clip. ``apex_fields``: the first of these columns with a value is the
    apex (CASME has two). ``extra(record)`` adds columns to the row (and may override ``fps``:
    DFME's frame rate is per clip); a ValueError it raises skips the row, its message the reason.
    ``zero_is_first``: marks whose 0, in a folder without a frame 0, means its first frame (DFME
    test A's onsets).
    """
    parts = Parts()
    seen: dict[tuple[str, str], int] = {}

    def skip(record: Record, subject: str, clip_id: str, reasons: list[str]) -> None:
        parts.problems.extend(Problem(table.path.name, record.row, r, subject, clip_id) for r in reasons)

    for record, empty in table.rows():
        reasons: list[str] = []
        subject = clip_id = ""
        if empty:
            reasons.append(f"empty {', '.join(empty)}.")
            skip(record, subject, clip_id, reasons)
            continue
        try:
            subject = subject_of(record)
        except ValueError:
            reasons.append(f"subject {record['subject']!r} is not a subject number.")
            skip(record, subject, clip_id, reasons)
            continue
        clip_id = clip_of(record)
        folder = folder_of(record, subject)
        if not folder.is_dir():
            reasons.append(f"no frame folder {folder} (missing from this copy).")
            skip(record, subject, clip_id, reasons)
            continue
        parts.used.add(folder)
        frames = list_frames(folder)
        if not frames:
            reasons.append(f"clip folder {folder} holds no frames.")
            skip(record, subject, clip_id, reasons)
            continue
        numbers = {m: record.frame_number(m, reasons) for m in ("onset", "offset")}
        apexes = [record.frame_number(f, reasons, optional=True) for f in apex_fields]
        numbers["apex"] = next((a for a in apexes if a is not None), None)
        for mark in zero_is_first:
            if numbers[mark] == 0 and frame_number(frames[0]) > 0:
                numbers[mark] = frame_number(frames[0])
        if reasons:
            skip(record, subject, clip_id, reasons)
            continue
        key = (subject, f"{clip_id}_{numbers['onset']}" if trim else clip_id)
        if key in seen:
            reasons.append(f"repeats row {seen[key]} (the same clip {key[1]} of {subject} annotated twice).")
            skip(record, subject, clip_id, reasons)
            continue
        located = locate(frames, numbers, table.columns | {"apex": table.columns[apex_fields[0]]}, reasons, trim=trim)
        if located is None:
            skip(record, subject, clip_id, reasons)
            continue
        try:
            added = extra(record)
        except ValueError as error:  # a cell the reader needs (DFME's Fps) cannot be read
            reasons.append(str(error))
            skip(record, subject, clip_id, reasons)
            continue
        seen[key] = record.row
        clip_frames, marks = located
        parts.rows.append(
            {
                "dataset": dataset,
                "subject": subject,
                "clip": key[1],
                "emotion": str(record["emotion"]).strip().lower(),
                "n_frames": len(clip_frames),
                "fps": fps,
                "source": str(folder),
                **marks,
                **added,
            }
        )
        parts.frame_paths.append(tuple(clip_frames))
    return parts
