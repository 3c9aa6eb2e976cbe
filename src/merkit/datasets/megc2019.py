"""The MEGC 2019 composite (See et al. 2019): SMIC-HS + CASME II + SAMM in three classes.

J. See, M. H. Yap, J. Li, X. Hong, S.-J. Wang, "MEGC 2019 - The Second Facial Micro-Expressions
Grand Challenge", IEEE FG 2019.

442 clips of 68 subjects (SMIC-HS 164/16, CASME II 145/24, SAMM 133/28); classes negative,
positive, surprise; LOSO over all subjects, scored by UF1 and UAR on the pooled predictions.
``combined_3class_gt.csv`` (no header) lists ``Dataset, Subject, Filename, Class`` with classes
coded 0 negative, 1 positive, 2 surprise (words are accepted too). Subjects are namespaced by
dataset (``casme2/sub01``); SMIC rows may say ``s01`` and ``s01_ne_01`` for folders ``s1`` and
``s1_ne_01``. Used to estimate cross-dataset recognition, the field's standard comparison.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from merkit.datasets.base import ClipDataset, Problem, assemble
from merkit.datasets.casme2 import numbered_folder
from merkit.datasets.labels import LabelScheme
from merkit.datasets.registry import read, register_dataset
from merkit.datasets.sheets import find_one
from merkit.errors import DatasetError

CLASSES = {"0": "negative", "1": "positive", "2": "surprise"}


def _smic_subject(value) -> str:
    return f"s{int(re.sub(r'^[sS]', '', str(value).strip()))}"


def _smic_clip(value) -> str:
    return re.sub(r"^[sS]0*(\d+)_", lambda m: f"s{m.group(1)}_", str(value).strip())


# csv name -> (reader, how to find its root, subject key, clip key)
SOURCES: dict[str, tuple[str, Callable[[Path], bool], Callable, Callable]] = {
    "casme2": (
        "casme2",
        lambda p: any(p.glob("CASME2-coding-*.xlsx")),
        lambda s: numbered_folder(s, "sub", 2),
        lambda c: str(c).strip(),
    ),
    "samm": (
        "samm",
        lambda p: any(p.glob("SAMM_Micro_FACS_Codes*.xlsx")),
        lambda s: numbered_folder(s, "", 3),
        lambda c: str(c).strip(),
    ),
    "smic": (
        "smic_hs",
        lambda p: any((p / d).is_dir() for d in ("SMIC_all_raw", "SMIC_all_cropped", "HS")),
        _smic_subject,
        _smic_clip,
    ),
}


def _find_root(root: Path, name: str, option: str | None) -> Path:
    if option is not None:
        return Path(option).expanduser()
    _, found, _, _ = SOURCES[name]
    for candidate in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        if found(candidate):
            return candidate
    raise DatasetError(f"No {name} dataset found in {root} or its sub-folders; pass --option {name}_root=PATH.")


@register_dataset(
    "megc2019", "MEGC 2019 composite: SMIC-HS + CASME II + SAMM, 3 classes, 68 subjects", default_labels="megc3"
)
def load_megc2019(root: Path, *, scheme: LabelScheme, casme2_root=None, samm_root=None, smic_root=None) -> ClipDataset:
    """Read the composite from ``root``, the folder holding ``combined_3class_gt.csv``.

    The three datasets are found among ``root``'s sub-folders, or given as options. With the
    ``megc3`` scheme the classes are the csv's; with another, each clip's own emotion word is mapped.
    """
    csv = find_one(root, "combined_3class_gt.csv", what="MEGC 2019 ground-truth file")
    table = pd.read_csv(csv, header=None, names=["Dataset", "Subject", "Filename", "Class"], dtype=str)
    options = {"casme2": casme2_root, "samm": samm_root, "smic": smic_root}
    sources, index = {}, {}
    for name in sorted(set(table["Dataset"].str.strip().str.lower()) & set(SOURCES)):
        reader, _, subject_key, clip_key = SOURCES[name]
        sources[name] = read(reader, root=_find_root(root, name, options[name]), labels="original")
        meta = sources[name].metadata
        index[name] = {(subject_key(s), clip_key(c)): i for i, (s, c) in enumerate(zip(meta["subject"], meta["clip"]))}

    rows, paths, problems = [], [], []
    for i, record in table.iterrows():
        problem = functools.partial(Problem, csv.name, i + 1)
        name = str(record["Dataset"]).strip().lower()
        if name not in SOURCES:
            problems.append(
                problem(f"unknown dataset {record['Dataset']!r}; the composite's are {', '.join(SOURCES)}.")
            )
            continue
        _, _, subject_key, clip_key = SOURCES[name]
        try:
            key = (subject_key(record["Subject"]), clip_key(record["Filename"]))
        except ValueError:
            problems.append(problem(f"subject {record['Subject']!r} is not a subject number."))
            continue
        position = index[name].get(key)
        if position is None:
            problems.append(
                problem(
                    f"no usable clip {name}/{key[0]}/{key[1]} (see `merkit datasets check --dataset {SOURCES[name][0]}`)."
                )
            )
            continue
        code = str(record["Class"]).strip().lower()
        label = CLASSES.get(code, code)
        if label not in CLASSES.values():
            problems.append(problem(f"class {record['Class']!r} is none of 0, 1, 2 (negative, positive, surprise)."))
            continue
        source = sources[name]
        row = source.metadata.iloc[position].drop(labels=["label"]).to_dict()
        row["apex"] = None if pd.isna(row["apex"]) else int(row["apex"])
        row["megc_class"] = label
        rows.append(row | ({"label": label} if scheme.name == "megc3" else {}))
        paths.append(source.frame_paths[position])
    return assemble("megc2019", scheme, rows, paths, problems=problems)
