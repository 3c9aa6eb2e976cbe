"""A cross-dataset composite: whichever of CASME, CASME II, SAMM, MMEW, CAS(ME)³ and 4DME the user holds.

For leave-one-dataset-out evaluation, the action-unit benchmark above all (emotion words do not
agree across datasets, action units do). Each dataset is read by its own reader under the chosen
label scheme; subjects stay namespaced by dataset (``casme2/sub01``), so no two datasets share one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from merkit.datasets.base import ClipDataset
from merkit.datasets.labels import LabelScheme
from merkit.datasets.registry import read, register_dataset
from merkit.errors import DatasetError

MEMBERS = {
    "casme": "CASME",
    "casme2": "CASME2",
    "samm": "SAMM",
    "mmew": "MMEW",
    "casme3": "CASME3",
    "4dme": "4DME",
}  # reader -> usual folder


def _member_roots(root: Path | None, roots: dict | None) -> dict[str, Path]:
    """{reader: folder}: ``roots`` as given, else the sub-folders of ``root`` named as the datasets."""
    if roots:
        unknown = sorted(set(roots) - set(MEMBERS))
        if unknown:
            raise DatasetError(
                f"The cross composite reads {', '.join(MEMBERS)}; it has no member {', '.join(unknown)}."
            )
        return {name: Path(path) for name, path in roots.items() if path}
    found = {}
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()) if root else []:
        for name, usual in MEMBERS.items():
            if folder.name.lower().replace("(", "").replace(")", "").replace("_", "") == usual.lower():
                found[name] = folder
    return found


@register_dataset(
    "cross",
    "CASME, CASME II, SAMM, MMEW, CAS(ME)3, 4DME together, for leave-one-dataset-out (AUs)",
    default_labels="aus",
)
def load_cross(root: Path | None, *, scheme: LabelScheme, roots: dict | None = None, **paths) -> ClipDataset:
    """The composite of the datasets found in ``root``'s sub-folders (``CASME2``, ``SAMM``, ...) or
    named in ``roots`` (``{"casme2": path, ...}``; on the command line ``--option casme2=PATH``)."""
    members = _member_roots(root if root is not None and root.is_dir() else None, roots or paths or None)
    if not members:
        raise DatasetError(
            f"No dataset of the cross composite found in {root}: name sub-folders {', '.join(MEMBERS.values())}, "
            "or give each one's folder (--option casme2=PATH, load('cross', roots={...}))."
        )
    parts = {name: read(name, root=path, labels=scheme.name) for name, path in members.items()}
    metadata = pd.concat([p.metadata for p in parts.values()], ignore_index=True)
    return ClipDataset(
        "cross",
        metadata,
        [paths for p in parts.values() for paths in p.frame_paths],
        scheme.class_order(metadata["label"]),
        labels=scheme.name,
        dropped=pd.concat([p.dropped for p in parts.values()], ignore_index=True),
        problems=[dataclasses.replace(problem, dataset=name) for name, p in parts.items() for problem in p.problems],
        orphans=[o for p in parts.values() for o in p.orphans],
    )
