"""SMIC (Li et al. 2013): HS, VIS and NIR, raw or cropped, as distributed.

X. Li, T. Pfister, X. Huang, G. Zhao, M. Pietikainen, "A Spontaneous Micro-expression Database:
Inducement, Collection and Baseline", IEEE FG 2013.

HS: 16 subjects, 164 clips at 100 fps; VIS and NIR: 8 subjects, 71 clips each at 25 fps. Layout::

    ROOT/SMIC_all_raw/HS/s1/micro/negative/s1_ne_01/image586130.bmp
    ROOT/SMIC_all_cropped/HS/...        (and VIS/, NIR/ beside HS/)

There is no annotation sheet: the label is the folder (negative, positive, surprise), the subject
is ``sN``, and the clip is the micro-expression itself (onset is the first frame, offset the
last, the apex unknown). Used to estimate recognition of three emotion classes, and how it
changes with frame rate (HS vs VIS) and modality (VIS vs NIR).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from merkit.datasets.base import ClipDataset, Problem, assemble
from merkit.datasets.labels import LabelScheme
from merkit.datasets.registry import register_dataset
from merkit.errors import DatasetError, check_choice
from merkit.io.frames import list_frames

VARIANTS = {"hs": ("HS", 100.0, 16), "vis": ("VIS", 25.0, 8), "nir": ("NIR", 25.0, 8)}
FRAME_FOLDERS = {"raw": "SMIC_all_raw", "cropped": "SMIC_all_cropped"}
EMOTIONS = ("negative", "positive", "surprise")


def _number(name: str) -> int:
    digits = re.findall(r"\d+", name)
    return int(digits[0]) if digits else -1


def smic_base(root: Path, variant: str, frames: str | None) -> Path:
    """The folder of one SMIC variant (``.../HS``) from the user's root."""
    folder = VARIANTS[variant][0]
    tops = (
        [FRAME_FOLDERS[check_choice("SMIC frames", frames, FRAME_FOLDERS)]] if frames else list(FRAME_FOLDERS.values())
    )
    for candidate in [root / top / folder for top in tops] + [root / folder]:
        if candidate.is_dir():
            return candidate
    raise DatasetError(
        f"No SMIC {folder}/ folder under {root} (looked in {', '.join(tops)} and the root itself); "
        "pass --root pointing at the SMIC folder that holds SMIC_all_raw/ or SMIC_all_cropped/."
    )


def load_smic(root: Path, *, scheme: LabelScheme, variant: str, frames: str | None = None) -> ClipDataset:
    """Read one SMIC variant; ``frames`` picks 'raw' or 'cropped' (default: raw if present)."""
    base = smic_base(root, variant, frames)
    _, fps, _ = VARIANTS[variant]
    rows, paths, problems = [], [], []
    for subject in sorted(
        (p for p in base.iterdir() if p.is_dir() and p.name.lower().startswith("s")), key=lambda p: _number(p.name)
    ):
        micro = subject / "micro"
        if not micro.is_dir():
            continue
        for emotion in sorted(p for p in micro.iterdir() if p.is_dir()):
            if emotion.name.lower() not in EMOTIONS:
                problems.append(Problem(str(emotion), 0, f"unknown emotion folder; SMIC's are {', '.join(EMOTIONS)}."))
                continue
            for clip in sorted((p for p in emotion.iterdir() if p.is_dir()), key=lambda p: p.name):
                clip_frames = list_frames(clip)
                if not clip_frames:
                    problems.append(
                        Problem(str(clip.parent), 0, f"clip folder {clip} holds no frames.", subject.name, clip.name)
                    )
                    continue
                rows.append(
                    {
                        "dataset": f"smic_{variant}",
                        "subject": subject.name,
                        "clip": clip.name,
                        "emotion": emotion.name.lower(),
                        "onset": 0,
                        "apex": None,
                        "offset": len(clip_frames) - 1,
                        "n_frames": len(clip_frames),
                        "fps": fps,
                        "source": str(clip),
                    }
                )
                paths.append(tuple(clip_frames))
    if not rows and not problems:
        problems.append(Problem(str(base), 0, "no clip folders under sN/micro/<emotion>/."))
    return assemble(f"smic_{variant}", scheme, rows, paths, problems=problems)


for _variant, (_folder, _fps, _subjects) in VARIANTS.items():
    register_dataset(
        f"smic_{_variant}",
        f"SMIC-{_folder}: {_subjects} subjects, {_fps:g} fps, label from the folder",
        default_labels="seed4",
    )(functools.partial(load_smic, variant=_variant))
