"""SAMM (Davison et al. 2018), as distributed.

A. K. Davison, C. Lansley, N. Costen, K. Tan, M. H. Yap, "SAMM: A Spontaneous Micro-Facial
Movement Dataset", IEEE Transactions on Affective Computing 9(1), 2018.

32 subjects of 13 ethnicities, 159 micro-movements, 200 fps, 2040x1088 grey frames. Layout::

    ROOT/SAMM_Micro_FACS_Codes_v2.xlsx
    ROOT/SAMM/006/006_1_2/006_05562.jpg        (or ROOT/006/006_1_2/... )

The sheet has about 13 preamble rows, then ``Subject, Filename, Inducement Code, Onset Frame,
Apex Frame, Offset Frame, Duration, Micro, Action Units, Estimated Emotion, Objective Classes,
Notes``; subject ``6`` is folder ``006``; an apex of ``-1`` means none. Used to estimate recognition
of micro-expressions across ethnicities (emotion words or FACS-based objective classes).
"""

from __future__ import annotations

from pathlib import Path

from merkit.datasets.annotated import read_rows
from merkit.datasets.base import ClipDataset, assemble
from merkit.datasets.casme2 import numbered_folder
from merkit.datasets.labels import LabelScheme
from merkit.datasets.registry import register_dataset
from merkit.datasets.sheets import AnnotationTable, find_one

FPS = 200.0
SHEET_PATTERN = "SAMM_Micro_FACS_Codes*.xlsx"
COLUMNS = {
    "subject": "Subject",
    "clip": "Filename",
    "onset": "Onset Frame",
    "apex": "Apex Frame",
    "offset": "Offset Frame",
    "emotion": "Estimated Emotion",
}


@register_dataset("samm", "SAMM: 32 subjects, 200 fps, grey, FACS sheet with preamble rows", default_labels="seed4")
def load_samm(root: Path, *, scheme: LabelScheme) -> ClipDataset:
    """Read SAMM from ``root``, the folder holding the FACS sheet and the subject folders (or ``SAMM/``)."""
    table = AnnotationTable.read(find_one(root, SHEET_PATTERN, what="SAMM FACS code sheet"), COLUMNS, header_row=None)
    frames_root = root / "SAMM" if (root / "SAMM").is_dir() else root
    parts = read_rows(
        table,
        dataset="samm",
        fps=FPS,
        subject_of=lambda r: numbered_folder(r["subject"], "", 3),
        folder_of=lambda r, subject: frames_root / subject / str(r["clip"]).strip(),
        extra=lambda r: {
            "action_units": str(r.get("Action Units", "")),
            "objective_class": str(r.get("Objective Classes", "")),
        },
    )
    return assemble(
        "samm",
        scheme,
        parts.rows,
        parts.frame_paths,
        problems=parts.problems,
        orphans=parts.orphans(p for p in frames_root.glob("*/*") if p.parent.name.isdigit()),
    )
