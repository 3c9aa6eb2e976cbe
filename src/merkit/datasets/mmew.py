"""MMEW (Ben et al. 2021), micro-expressions, as distributed.

X. Ben, Y. Ren, J. Zhang, S.-J. Wang, K. Kpalma, W. Meng, Y.-J. Liu, "Video-based Facial
Micro-Expression Analysis: A Survey of Datasets, Features and Algorithms", IEEE TPAMI 44(9), 2022
(introducing MMEW).

36 subjects, 300 micro-expressions, 90 fps, 1920x1080. Layout::

    ROOT/MMEW_Micro_Exp.xlsx
    ROOT/Micro_Expression/<emotion>/<Filename>/<n>.jpg

Columns ``Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated
Emotion, remarks``; clip folders are grouped by emotion word. Used to estimate recognition of
six emotion words plus others, with macro-expressions of the same people available separately.
"""

from __future__ import annotations

from pathlib import Path

from merkit.datasets.annotated import read_rows
from merkit.datasets.base import ClipDataset, assemble
from merkit.datasets.labels import LabelScheme
from merkit.datasets.registry import register_dataset
from merkit.datasets.sheets import AnnotationTable, find_one
from merkit.errors import DatasetError

FPS = 90.0
COLUMNS = {
    "subject": "Subject",
    "clip": "Filename",
    "onset": "OnsetFrame",
    "apex": "ApexFrame",
    "offset": "OffsetFrame",
    "emotion": "Estimated Emotion",
}


def _emotion_folder(frames_root: Path, emotion: str) -> Path:
    """The emotion's folder, whatever the case of its name."""
    word = emotion.strip()
    for name in (word, word.lower(), word.capitalize()):
        if (frames_root / name).is_dir():
            return frames_root / name
    return frames_root / word


@register_dataset("mmew", "MMEW: 36 subjects, 90 fps, clips grouped by emotion folder", default_labels="seed4")
def load_mmew(root: Path, *, scheme: LabelScheme) -> ClipDataset:
    """Read MMEW from ``root``, the folder holding ``Micro_Expression/`` and ``MMEW_Micro_Exp.xlsx``."""
    frames_root = root / "Micro_Expression"
    if not frames_root.is_dir():
        raise DatasetError(f"No Micro_Expression/ under {root}; pass --root pointing at the MMEW folder that holds it.")
    table = AnnotationTable.read(find_one(root, "MMEW_Micro_Exp.xlsx", what="MMEW micro-expression sheet"), COLUMNS)
    parts = read_rows(
        table,
        dataset="mmew",
        fps=FPS,
        subject_of=lambda r: str(r["subject"]).strip(),
        folder_of=lambda r, subject: _emotion_folder(frames_root, str(r["emotion"])) / str(r["clip"]).strip(),
        extra=lambda r: {"action_units": str(r.get("Action Units", ""))},
    )
    return assemble(
        "mmew",
        scheme,
        parts.rows,
        parts.frame_paths,
        problems=parts.problems,
        orphans=parts.orphans(frames_root.glob("*/*")),
    )
