"""CASME (Yan et al. 2013), sections A and B, as distributed.

W.-J. Yan, Q. Wu, Y.-J. Liu, S.-J. Wang, X. Fu, "CASME database: a dataset of spontaneous
micro-expressions collected from neutralized faces", IEEE FG 2013.

19 subjects (section A 640x480, section B 1280x720), 195 clips, 60 fps. Layout::

    ROOT/CASME_A/Section A/sub01/EP01_5/<frame>.jpg      ROOT/CASME_A/<annotation>.xls
    ROOT/CASME_B/Section B/sub08/EP01_2/<frame>.jpg      ROOT/CASME_B/<annotation>.xls

Each section's ``.xls`` has ``Subject, Filename, OnsetF, ApexF1, ApexF2, OffsetF, AU, Emotion``;
the apex is ``ApexF1``, or ``ApexF2`` where ``ApexF1`` is empty, and empty in some rows. Used to
estimate recognition of eight emotion words (amusement, sadness, disgust, surprise, contempt,
fear, repression, tense) at a low frame rate.
"""

from __future__ import annotations

from pathlib import Path

from merkit.datasets.annotated import Parts, read_rows
from merkit.datasets.base import ClipDataset, assemble
from merkit.datasets.casme2 import numbered_folder
from merkit.datasets.labels import LabelScheme
from merkit.datasets.registry import register_dataset
from merkit.datasets.sheets import AnnotationTable, find_one
from merkit.errors import DatasetError

FPS = 60.0
SECTIONS = {"A": ("CASME_A", "Section A"), "B": ("CASME_B", "Section B")}
COLUMNS = {
    "subject": "Subject",
    "clip": "Filename",
    "onset": "OnsetF",
    "apex": "ApexF1",
    "apex2": "ApexF2",
    "offset": "OffsetF",
    "emotion": "Emotion",
}


@register_dataset("casme", "CASME: 19 subjects, 60 fps, sections A and B, .xls per section", default_labels="seed4")
def load_casme(root: Path, *, scheme: LabelScheme) -> ClipDataset:
    """Read CASME from ``root``, the folder holding ``CASME_A/`` and/or ``CASME_B/``."""
    present = {k: v for k, v in SECTIONS.items() if (root / v[0]).is_dir()}
    if not present:
        raise DatasetError(
            f"No CASME_A/ or CASME_B/ under {root}; pass --root pointing at the CASME folder that holds them."
        )
    merged, folders = Parts(), []
    for section, (top, frames) in present.items():
        sheet = find_one(root / top, "*.xls*", what=f"CASME section {section} annotation sheet")
        frames_root = root / top / frames
        parts = read_rows(
            AnnotationTable.read(sheet, COLUMNS),
            dataset="casme",
            fps=FPS,
            apex_fields=("apex", "apex2"),
            subject_of=lambda r: numbered_folder(r["subject"], "sub", 2),
            folder_of=lambda r, subject, frames_root=frames_root: frames_root / subject / str(r["clip"]).strip(),
            extra=lambda r, section=section: {"section": section, "action_units": str(r.get("AU", ""))},
        )
        merged = merged.merge(parts)
        folders += list(frames_root.glob("*/*"))
    return assemble(
        "casme", scheme, merged.rows, merged.frame_paths, problems=merged.problems, orphans=merged.orphans(folders)
    )
