"""DFME (Zhao et al. 2023), the largest micro-expression set, as its public scripts read it.

S. Zhao, H. Tang, X. Mao, S. Liu, Y. Zhang, H. Wang, T. Xue, E. Chen, "DFME: A New Benchmark for
Dynamic Facial Micro-expression Recognition", IEEE Transactions on Affective Computing, 2023.

7,526 clips of 671 subjects, seven emotions, recorded at 200, 300 or 500 fps: the frame rate is
per clip (``fps`` in ``metadata``; methods that resample in time read it from each clip). The
release comes in splits, each a sheet and a folder of clip folders::

    ROOT/training_full_with_AU.xlsx     ROOT/<train folder>/sub0008_01/00095.png
    ROOT/testA_full_with_AU.xlsx        ROOT/<test A folder>/sub0450_02/00000.png
    ROOT/testB_full_with_AU.xlsx        ROOT/<test B folder>/...

Each sheet (first sheet, header in its first row): ``Subject, Filename, OnsetFrame, ApexFrame,
OffsetFrame, Emotion, EmotionId, Fps, AU``; subjects ``sub0008``, clips ``sub0008_01``; emotions
anger, contempt, disgust, fear, happiness, sadness, surprise (``EmotionId`` 0-6 in that order);
AU cells ``12``, ``L12``, ``7+14``. Frames are PNGs named by their 5-digit zero-padded frame
number. The name of each split's folder is not documented: a row's clip folder is looked up by
its ``Filename`` in any folder beside the sheets (the split's own when several have it). The
split of each clip is kept (``split``: train, testA, testB) for the ``given`` protocol, which
trains on train and tests each test split, besides LOSO.

About half of test A's rows have ``OnsetFrame`` 0: where the clip folder has a frame 0 it is that
frame, otherwise (frames numbered from 1) it is read as the folder's first frame.
"""

from __future__ import annotations

from pathlib import Path

from merkit.datasets.annotated import Parts, read_rows
from merkit.datasets.base import ClipDataset, assemble
from merkit.datasets.labels import LabelScheme
from merkit.datasets.registry import register_dataset
from merkit.datasets.sheets import AnnotationTable, Record
from merkit.errors import DatasetError

SPLITS = {"train": "training*.xlsx", "testA": "testA*.xlsx", "testB": "testB*.xlsx"}  # split -> its sheet
COLUMNS = {
    "subject": "Subject",
    "clip": "Filename",
    "onset": "OnsetFrame",
    "apex": "ApexFrame",
    "offset": "OffsetFrame",
    "emotion": "Emotion",
    "fps": "Fps",
}


def _clip_folders(root: Path) -> dict[str, list[Path]]:
    """Every clip folder one level below the split folders of ``root``, by name."""
    folders: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        folders.setdefault(folder.name, []).append(folder)
    return folders


def _folder(folders: dict[str, list[Path]], root: Path, split: str, name: str) -> Path:
    """The clip folder ``name``: the only one, or the one in a folder named like ``split``."""
    found = folders.get(name, [])
    if len(found) > 1:
        found = [
            f for f in found if split.lower() in f.parent.name.lower().replace("_", "").replace("training", "train")
        ] or found
    return found[0] if found else root / split / name


def _fps(record: Record) -> dict:
    text = str(record["fps"]).strip()
    try:
        fps = float(text)
    except ValueError:
        raise ValueError(f"Fps {text!r} is not a frame rate.") from None
    if not fps > 0:
        raise ValueError(f"Fps {text!r} is not a frame rate.")
    return {"fps": fps}


@register_dataset(
    "dfme",
    "DFME: 671 subjects, 7 emotions, 200/300/500 fps per clip, train/test A/test B splits",
    default_labels="dfme_7",
)
def load_dfme(root: Path, *, scheme: LabelScheme) -> ClipDataset:
    """Read DFME from ``root``, the folder holding the split sheets and the split folders (any of the splits)."""
    sheets = {split: sorted(root.glob(pattern)) for split, pattern in SPLITS.items()}
    sheets = {split: found[0] for split, found in sheets.items() if found}
    if not sheets:
        raise DatasetError(
            f"No DFME sheet ({', '.join(SPLITS.values())}) in {root}; pass --root pointing at the DFME folder "
            "that holds the split sheets and folders."
        )
    folders = _clip_folders(root)
    parts = Parts()
    for split, sheet in sheets.items():
        parts = parts.merge(
            read_rows(
                AnnotationTable.read(sheet, COLUMNS),
                dataset="dfme",
                fps=float("nan"),
                zero_is_first=("onset",),
                subject_of=lambda r: str(r["subject"]).strip(),
                folder_of=lambda r, subject, split=split: _folder(folders, root, split, str(r["clip"]).strip()),
                extra=lambda r, split=split: {
                    **_fps(r),
                    "split": split,
                    "action_units": str(r.get("AU", "")),
                    "emotion_id": str(r.get("EmotionId", "")).strip(),
                },
            )
        )
    return assemble(
        "dfme",
        scheme,
        parts.rows,
        parts.frame_paths,
        problems=parts.problems,
        orphans=parts.orphans(f for found in folders.values() for f in found),
    )
