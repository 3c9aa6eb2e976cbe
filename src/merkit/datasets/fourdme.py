"""4DME (Li et al. 2022), its 2D grey micro-expression clips, as the public loaders read the release.

X. Li, S. Cheng, Y. Li, M. Behzad, J. Shen, S. Zafeiriou, M. Pantic, G. Zhao, "4DME: A
Spontaneous 4D Micro-Expression Dataset With Multimodalities", IEEE Transactions on Affective
Computing 14(4), 2023 (online 2022).

267 clips of 41 subjects; the sixth dataset of the cross-dataset action-unit benchmark. Layout::

    ROOT/4DME_Labelling_Micro_release v1.xlsx
    ROOT/gray_micro/<sub_ID>/<fold_name>/<frames>      (or gray_micro_crop/, variant='cropped')

The workbook's first sheet, header in its first row: ``sub_ID, fold_name, Emotion, Onset, Apex,
Offset, AUs``, one 0/1 column per action unit after ``AUs``, and 0/1 columns ``Positive,
Negative, Surprise, Repression, Others``. Emotions are multi-label: ``Emotion`` may join two
words (``Surprise+Positive``); ``emotion`` keeps the cell in lower case (a scheme that has no
class for a joined pair drops the clip) and ``emotions`` the words whose 0/1 column is set. AU
cells join items with ``+``, an item may start with ``AU``, carry a side ``L``/``R`` and end with
``(k)``: ``AU4(k)+L7``. A ``(k)`` AU is static, not part of the movement: as the public loader
(MEB) does by default, it is left out of ``action_units`` (the labels of ``--labels aus``) and
kept in ``aus_static``.

Each folder holds the frames onset..offset, the absolute frame number in the file name. No
public code states the name pattern or the frame rate: merkit accepts any image name with a
number (jpg, bmp, png, as MEB does) and assumes 60 fps (the rate of the release's 4D capture;
unverified for the grey clips) unless ``fps=`` is given.

Errata of the release fixed here (each has one evident reading):

- ``release v1``: rows 144 and 145 (0-based, after the header) have their AU data (``AUs`` and
  every column after it) swapped; they are swapped back, as MEB does.
"""

from __future__ import annotations

import re
from pathlib import Path

from merkit.datasets.annotated import read_rows
from merkit.datasets.base import ClipDataset, assemble
from merkit.datasets.labels import LabelScheme
from merkit.datasets.registry import register_dataset
from merkit.datasets.sheets import AnnotationTable, Record, find_one
from merkit.errors import ConfigError, DatasetError, check_choice

FPS = 60.0  # unverified: see the module docstring
SHEET_PATTERN = "4DME_Labelling_Micro_release*.xlsx"
FRAME_FOLDERS = {"gray": "gray_micro", "cropped": "gray_micro_crop"}
COLUMNS = {
    "subject": "sub_ID",
    "clip": "fold_name",
    "onset": "Onset",
    "apex": "Apex",
    "offset": "Offset",
    "emotion": "Emotion",
}
EMOTION_COLUMNS = ("Positive", "Negative", "Surprise", "Repression", "Others")
SWAPPED_ROWS = {"release v1": (144, 145)}  # workbook version -> rows whose AU data the release swapped
_STATIC = re.compile(r"\(k\)\s*$", re.IGNORECASE)


def split_aus(cell) -> tuple[str, str]:
    """An AU cell as (moving items, static ``(k)`` items), each joined by ``+``.

    Examples
    --------
    >>> split_aus("AU4(k)+L7"), split_aus("AUR2+12(k)+45")
    (('L7', 'AU4'), ('AUR2+45', '12'))
    """
    items = [i.strip() for i in str(cell if isinstance(cell, str) else "").split("+") if i.strip()]
    moving = [i for i in items if not _STATIC.search(i)]
    static = [_STATIC.sub("", i) for i in items if _STATIC.search(i)]
    return "+".join(moving), "+".join(static)


def fix_swapped_rows(table: AnnotationTable) -> AnnotationTable:
    """Swap back the AU data of the rows the release swapped (``SWAPPED_ROWS``), in place."""
    for version, (a, b) in SWAPPED_ROWS.items():
        if version in table.path.name and {a, b} <= set(table.frame.index):
            columns = list(table.frame.columns[list(table.frame.columns).index("AUs") :])
            table.frame.loc[[a, b], columns] = table.frame.loc[[b, a], columns].to_numpy()
    return table


def _extra(record: Record) -> dict:
    moving, static = split_aus(record.get("AUs"))
    set_words = [w.lower() for w in EMOTION_COLUMNS if str(record.get(w, "")).strip() in ("1", "1.0")]
    words = set_words or [w.strip().lower() for w in str(record["emotion"]).split("+")]
    return {"action_units": moving, "aus_static": static, "emotions": "+".join(words)}


@register_dataset(
    "4dme", "4DME: 2D grey clips, multi-label emotions, AUs with (k) marks, fps unverified", default_labels="seed4"
)
def load_fourdme(root: Path, *, scheme: LabelScheme, variant: str | None = None, fps: float | str = FPS) -> ClipDataset:
    """Read 4DME from ``root``, the folder holding the labelling workbook and ``gray_micro/``.

    Parameters
    ----------
    variant : {'gray', 'cropped'}, optional
        ``gray_micro/`` or ``gray_micro_crop/``; by default the first present.
    fps : float
        The clips' frame rate (no public loader states it; 60 assumed).
    """
    try:
        fps = float(fps)
    except ValueError:
        raise ConfigError(f"4DME option fps={fps!r} must be a number of frames per second.") from None
    if not fps > 0:
        raise ConfigError(f"4DME option fps={fps!r} must be positive.")
    candidates = (
        [FRAME_FOLDERS[check_choice("4DME variant", variant, FRAME_FOLDERS)]]
        if variant
        else list(FRAME_FOLDERS.values())
    )
    frames_root = next((root / c for c in candidates if (root / c).is_dir()), None)
    if frames_root is None:
        raise DatasetError(
            f"No {' or '.join(candidates)}/ under {root}; pass --root pointing at the 4DME folder that holds it "
            "and the labelling workbook."
        )
    table = fix_swapped_rows(
        AnnotationTable.read(find_one(root, SHEET_PATTERN, what="4DME labelling workbook"), COLUMNS)
    )
    parts = read_rows(
        table,
        dataset="4dme",
        fps=fps,
        subject_of=lambda r: str(r["subject"]).strip(),
        folder_of=lambda r, subject: frames_root / subject / str(r["clip"]).strip(),
        extra=_extra,
    )
    return assemble(
        "4dme",
        scheme,
        parts.rows,
        parts.frame_paths,
        problems=parts.problems,
        orphans=parts.orphans(frames_root.glob("*/*")),
    )
