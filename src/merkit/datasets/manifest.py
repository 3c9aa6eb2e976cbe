"""Manifests: data a user already preprocessed, described by a CSV.

One row per clip with at least ``subject`` and ``label`` and one path column:

- ``frames_dir``: a folder of frames (numeric order, as everywhere);
- ``video``: a video file, read with PyAV;
- ``flow_image``: one onset-to-apex optical-flow image whose channels are u, v and optical strain,
  as the MEGC-era repositories distribute them.

Optional columns: ``dataset`` (default ``manifest``), ``clip`` (default: the path's stem),
``onset``, ``apex``, ``offset`` (0-based positions; default the first frame, none, the last
frame), ``fps``, ``face_image`` (an image of the clip's face, such as its onset frame cropped as
its flow image was: methods that place facial regions find its landmarks). Paths are relative
to the manifest's folder and may not leave it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from merkit.datasets.base import FLOW_CHANNELS, ClipDataset, Problem, assemble
from merkit.datasets.labels import LabelScheme
from merkit.datasets.registry import register_dataset
from merkit.errors import ConfigError, DatasetError
from merkit.io.frames import list_frames
from merkit.io.video import count_video_frames

PATH_COLUMNS = {"frames_dir": "frames", "video": "video", "flow_image": "flow_image"}


def _filled(value) -> bool:
    return not (value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() == "")


@register_dataset(
    "manifest", "a CSV of preprocessed clips: frames_dir, video or flow_image per row", default_labels="original"
)
def load_manifest(root: Path, *, scheme: LabelScheme, flow_channels: str = FLOW_CHANNELS) -> ClipDataset:
    """Read the manifest CSV ``root``.

    Parameters
    ----------
    flow_channels : str
        What the R, G and B channels of the flow images hold, as a permutation of ``uvs``. A file
        written with OpenCV's ``imwrite`` from an array stacked (u, v, strain) holds them as B, G,
        R: pass ``svu``.
    """
    if sorted(flow_channels) != sorted(FLOW_CHANNELS):
        raise ConfigError(f"flow_channels must be a permutation of 'uvs' (R, G, B); got {flow_channels!r}.")
    if root.is_dir() or root.suffix.lower() != ".csv":
        raise DatasetError(f"A manifest is a .csv file; {root} is not. Pass --root path/to/manifest.csv.")
    try:  # header=None: a row with more fields than the header is an error, not extra index columns
        table = pd.read_csv(root, dtype=str, header=None, skip_blank_lines=True)
        table = pd.DataFrame(table.iloc[1:].to_numpy(), columns=[str(c) for c in table.iloc[0]])
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        reason = (
            "it is empty"
            if isinstance(error, pd.errors.EmptyDataError)
            else f"it is not valid CSV ({str(error).strip()})"
        )
        raise DatasetError(
            f"Cannot read manifest {root}: {reason}. A manifest has a header row with subject, label and "
            "frames_dir, video or flow_image, then one row per clip."
        ) from None
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in ("subject", "label") if c not in table.columns]
    path_columns = [c for c in PATH_COLUMNS if c in table.columns]
    if missing or not path_columns:
        need = missing + ([] if path_columns else ["one of frames_dir, video, flow_image"])
        raise DatasetError(f"Manifest {root} lacks the column(s) {', '.join(need)}; it has {', '.join(table.columns)}.")
    base = root.parent.resolve()
    rows, paths, problems = [], [], []
    for i, record in table.iterrows():
        problem = functools.partial(Problem, root.name, i + 2)
        filled = [c for c in path_columns if _filled(record[c])]
        if len(filled) != 1 or not _filled(record["subject"]) or not _filled(record["label"]):
            problems.append(problem(f"needs a subject, a label and exactly one of {', '.join(path_columns)}."))
            continue
        column = filled[0]
        path = (base / str(record[column]).strip()).resolve()
        if not path.is_relative_to(base):
            problems.append(
                problem(
                    f"{column} {record[column]!r} leaves the manifest's folder {base}; keep the data beside the manifest."
                )
            )
            continue
        kind = PATH_COLUMNS[column]
        try:
            if kind == "frames":
                frames = tuple(list_frames(path)) if path.is_dir() else ()
                if not frames:
                    problems.append(problem(f"frames_dir {path} is missing or holds no frames."))
                    continue
                n_frames = len(frames)
            else:
                if not path.is_file():
                    problems.append(problem(f"{column} {path} does not exist."))
                    continue
                frames = (path,)
                n_frames = count_video_frames(path) if kind == "video" else 1
        except DatasetError as error:
            problems.append(problem(str(error)))
            continue

        def position(name, default):
            return int(float(record[name])) if name in table.columns and _filled(record[name]) else default

        onset, offset = position("onset", 0), position("offset", n_frames - 1)
        apex = position("apex", None)
        if not 0 <= onset <= offset < n_frames or (apex is not None and not onset <= apex <= offset):
            problems.append(
                problem(f"onset/apex/offset {onset}/{apex}/{offset} do not fit {n_frames} frames (0-based).")
            )
            continue
        face = ""
        if "face_image" in table.columns and _filled(record["face_image"]):
            face_path = (base / str(record["face_image"]).strip()).resolve()
            if not face_path.is_relative_to(base) or not face_path.is_file():
                problems.append(
                    problem(
                        f"face_image {record['face_image']!r} is not a file inside the manifest's folder {base}; "
                        "give the path of the clip's face image relative to the manifest, or leave it empty."
                    )
                )
                continue
            face = str(face_path)
        label = str(record["label"]).strip()
        rows.append(
            {
                "dataset": str(record["dataset"]).strip()
                if "dataset" in table.columns and _filled(record["dataset"])
                else "manifest",
                "subject": str(record["subject"]).strip(),
                "clip": str(record["clip"]).strip()
                if "clip" in table.columns and _filled(record["clip"])
                else path.stem,
                "emotion": label.lower(),
                "onset": onset,
                "apex": apex,
                "offset": offset,
                "n_frames": n_frames,
                "fps": float(record["fps"]) if "fps" in table.columns and _filled(record["fps"]) else float("nan"),
                "source": str(path),
                "kind": kind,
                "flow_channels": flow_channels,
                **({"face_image": face} if face else {}),
            }
        )
        paths.append(frames)
    return assemble("manifest", scheme, rows, paths, problems=problems)
