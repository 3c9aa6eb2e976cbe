"""CAS(ME)³ part A (Li et al. 2022), as distributed.

J. Li, Z. Dong, S. Lu, S.-J. Wang, W.-J. Yan, Y. Ma, Y. Liu, C. Huang, X. Fu, "CAS(ME)³: A Third
Generation Facial Spontaneous Micro-Expression Database with Depth Information and High
Ecological Validity", IEEE TPAMI 45(3), 2023.

Part A: 100 subjects, 860 micro-expressions, 30 fps. Layout::

    ROOT/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx
    ROOT/part_A/data/part_A_split/ME_A/spNO.1/b/color/175.jpg

Columns ``Subject, Filename, Onset, Apex, Offset, AU, Objective class, emotion``. A folder holds
a whole recording, of which each row is a stretch: the clip is frames onset..offset, and since
the same ``Filename`` repeats within a subject a clip is named ``<Filename>_<Onset>``. Used to
estimate recognition of seven emotion words in a large, ecologically valid set at a low frame rate.
"""

from __future__ import annotations

from pathlib import Path

from merkit.datasets.annotated import read_rows
from merkit.datasets.base import ClipDataset, assemble
from merkit.datasets.labels import LabelScheme
from merkit.datasets.registry import register_dataset
from merkit.datasets.sheets import AnnotationTable, find_one
from merkit.errors import DatasetError

FPS = 30.0
SHEET_PATTERN = "cas(me)3_part_A_ME_label*.xlsx"
FRAMES = Path("data") / "part_A_split" / "ME_A"
COLUMNS = {
    "subject": "Subject",
    "clip": "Filename",
    "onset": "Onset",
    "apex": "Apex",
    "offset": "Offset",
    "emotion": "emotion",
}


@register_dataset(
    "casme3", "CAS(ME)3 part A: 100 subjects, 30 fps, clips cut from long recordings", default_labels="seed4"
)
def load_casme3(root: Path, *, scheme: LabelScheme) -> ClipDataset:
    """Read CAS(ME)³ part A from ``root``, the folder holding ``part_A/`` (or ``part_A`` itself) and the label sheet."""
    part_a = root / "part_A" if (root / "part_A").is_dir() else root
    if not (part_a / FRAMES).is_dir():
        raise DatasetError(f"No {FRAMES} under {part_a}; pass --root pointing at the folder that holds part_A/.")
    sheet_dir = root if list(root.glob(SHEET_PATTERN)) else part_a
    table = AnnotationTable.read(find_one(sheet_dir, SHEET_PATTERN, what="CAS(ME)3 part A label sheet"), COLUMNS)
    frames_root = part_a / FRAMES
    parts = read_rows(
        table,
        dataset="casme3",
        fps=FPS,
        trim=True,
        subject_of=lambda r: str(r["subject"]).strip(),
        folder_of=lambda r, subject: frames_root / subject / str(r["clip"]).strip() / "color",
        extra=lambda r: {"action_units": str(r.get("AU", "")), "objective_class": str(r.get("Objective class", ""))},
    )
    return assemble(
        "casme3",
        scheme,
        parts.rows,
        parts.frame_paths,
        problems=parts.problems,
        orphans=parts.orphans(frames_root.glob("*/*/color")),
    )
