"""CASME II (Yan et al. 2014), as distributed.

W.-J. Yan, X. Li, S.-J. Wang, G. Zhao, Y.-J. Liu, Y.-H. Chen, X. Fu, "CASME II: An Improved
Spontaneous Micro-Expression Database and the Baseline Evaluation", PLoS ONE 9(1), 2014.

26 subjects, 255 clips, 200 fps, about 280x340-pixel faces. Layout::

    ROOT/CASME2-coding-20140508.xlsx       (or -20190701, -updated)
    ROOT/CASME2_RAW_selected/sub01/EP02_01f/img46.jpg
    ROOT/Cropped/sub01/EP02_01f/reg_img46.jpg   (some releases drop ``reg_``)

Spreadsheet columns ``Subject, Filename, Unnamed: 2, OnsetFrame, ApexFrame, OffsetFrame,
Unnamed: 6, Action Units, Estimated Emotion``. ``Subject`` is an int while folders are ``sub01``;
frame numbers are the images' own numbers, turned here into 0-based positions in the folder's
numerically ordered frames; an ``ApexFrame`` of ``/`` means no apex. Used to estimate recognition
of spontaneous micro-expressions of five to seven emotion words from frontal high-speed video.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from merkit.datasets.base import ClipDataset, make_metadata
from merkit.datasets.labels import get_scheme
from merkit.datasets.registry import register_dataset
from merkit.datasets.sheets import AnnotationTable, find_one
from merkit.errors import DatasetError, check_choice
from merkit.io.frames import frame_number, list_frames

FPS = 200.0
SHEET_PATTERN = "CASME2-coding-*.xlsx"
FRAME_FOLDERS = {"raw": "CASME2_RAW_selected", "cropped": "Cropped"}
COLUMNS = {
    "subject": "Subject",
    "clip": "Filename",
    "onset": "OnsetFrame",
    "apex": "ApexFrame",
    "offset": "OffsetFrame",
    "emotion": "Estimated Emotion",
}


def subject_folder(value) -> str:
    """``1`` or ``'1'`` or ``'sub01'`` -> ``'sub01'``."""
    text = str(value).strip()
    if text.lower().startswith("sub"):
        text = text[3:]
    return f"sub{int(float(text)):02d}"


@register_dataset("casme2", "CASME II: 26 subjects, 200 fps, raw or cropped frames, coding .xlsx")
def load_casme2(root: Path, *, labels: str = "seed4", variant: str | None = None) -> ClipDataset:
    """Read CASME II from ``root``.

    Parameters
    ----------
    root : Path
        The folder holding ``CASME2-coding-*.xlsx`` and ``CASME2_RAW_selected/`` or ``Cropped/``.
    labels : str
        Label scheme.
    variant : {'raw', 'cropped'}, optional
        Which frames to read; by default the raw frames if present, else the cropped ones.
    """
    scheme = get_scheme(labels)
    scheme.check_dataset("casme2")
    frames_root = _frames_root(root, variant)
    table = AnnotationTable.read(find_one(root, SHEET_PATTERN, what="CASME II coding spreadsheet"), COLUMNS)

    rows, frame_paths, dropped, problems = [], [], [], []
    for record in table.records(problems):
        where = f"{table.path.name} row {record.row}"
        try:
            subject = subject_folder(record["subject"])
        except ValueError:
            problems.append(f"{where}: Subject {record['subject']!r} is not a subject number.")
            continue
        clip_id = str(record["clip"]).strip()
        folder = frames_root / subject / clip_id
        where = f"{where} ({subject}/{clip_id})"
        if not folder.is_dir():
            problems.append(f"{where}: no frame folder {folder}.")
            continue
        frames = list_frames(folder)
        if not frames:
            problems.append(f"{where}: clip folder {folder} holds no frames.")
            continue
        positions = {frame_number(p): i for i, p in enumerate(frames)}
        marks = {}
        for mark in ("onset", "apex", "offset"):
            number = record.frame_number(mark, problems, where, optional=(mark == "apex"))
            if number is None:
                marks[mark] = None
                continue
            if number not in positions:
                problems.append(
                    f"{where}: {COLUMNS[mark]} {number} is not among the folder's frames "
                    f"({frame_number(frames[0])}..{frame_number(frames[-1])})."
                )
                number = None
            marks[mark] = positions.get(number) if number is not None else None
        if marks["onset"] is None or marks["offset"] is None:
            continue
        if marks["onset"] > marks["offset"]:
            problems.append(f"{where}: onset comes after offset.")
            continue
        if marks["apex"] is not None and not marks["onset"] <= marks["apex"] <= marks["offset"]:
            problems.append(f"{where}: apex lies outside onset..offset.")
            continue
        emotion = str(record["emotion"]).strip().lower()
        row = {
            "dataset": "casme2", "subject": subject, "clip": clip_id, "emotion": emotion,
            "label": scheme.map("casme2", emotion), "n_frames": len(frames), "fps": FPS,
            "source": str(folder), "action_units": str(record.get("Action Units", "")), **marks,
        }
        if row["label"] is None:
            dropped.append(row)
        else:
            rows.append(row)
            frame_paths.append(tuple(frames))

    if problems:
        raise DatasetError(f"CASME II at {root} does not match its layout ({len(problems)} problems):", problems)
    metadata = make_metadata(rows)
    return ClipDataset(
        "casme2", metadata, frame_paths, scheme.class_order(metadata["label"]),
        labels=labels, dropped=make_metadata(dropped),
    )


def _frames_root(root: Path, variant: str | None) -> Path:
    if variant is not None:
        check_choice("CASME II variant", variant, FRAME_FOLDERS)
        candidates = [FRAME_FOLDERS[variant]]
    else:
        candidates = list(FRAME_FOLDERS.values())
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    raise DatasetError(
        f"No frame folder {' or '.join(candidates)} under {root}; pass --root pointing at the CASME II "
        "folder that holds it and the coding spreadsheet."
    )
