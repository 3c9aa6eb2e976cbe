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

from merkit.datasets.annotated import read_rows
from merkit.datasets.base import ClipDataset, assemble
from merkit.datasets.labels import LabelScheme
from merkit.datasets.registry import register_dataset
from merkit.datasets.sheets import AnnotationTable, find_one
from merkit.errors import DatasetError, check_choice

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


def numbered_folder(value, prefix: str, digits: int) -> str:
    """A subject cell as its folder name: ``1``, ``'01'`` or ``'sub01'`` -> ``'sub01'``."""
    text = str(value).strip()
    if prefix and text.lower().startswith(prefix):
        text = text[len(prefix) :]
    return f"{prefix}{int(float(text)):0{digits}d}"


@register_dataset(
    "casme2", "CASME II: 26 subjects, 200 fps, raw or cropped frames, coding .xlsx", default_labels="seed4"
)
def load_casme2(root: Path, *, scheme: LabelScheme, variant: str | None = None) -> ClipDataset:
    """Read CASME II from ``root``, the folder holding the coding sheet and the frame folder.

    Parameters
    ----------
    variant : {'raw', 'cropped'}, optional
        Which frames to read; by default the raw frames if present, else the cropped ones.
    """
    frames_root = _frames_root(root, variant)
    table = AnnotationTable.read(find_one(root, SHEET_PATTERN, what="CASME II coding spreadsheet"), COLUMNS)
    parts = read_rows(
        table,
        dataset="casme2",
        fps=FPS,
        subject_of=lambda r: numbered_folder(r["subject"], "sub", 2),
        folder_of=lambda r, subject: frames_root / subject / str(r["clip"]).strip(),
        extra=lambda r: {"action_units": str(r.get("Action Units", ""))},
    )
    return assemble(
        "casme2",
        scheme,
        parts.rows,
        parts.frame_paths,
        problems=parts.problems,
        orphans=parts.orphans(frames_root.glob("*/*")),
    )


def _frames_root(root: Path, variant: str | None) -> Path:
    candidates = (
        [FRAME_FOLDERS[check_choice("CASME II variant", variant, FRAME_FOLDERS)]]
        if variant
        else list(FRAME_FOLDERS.values())
    )
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    raise DatasetError(
        f"No frame folder {' or '.join(candidates)} under {root}; pass --root pointing at the CASME II "
        "folder that holds it and the coding spreadsheet."
    )
