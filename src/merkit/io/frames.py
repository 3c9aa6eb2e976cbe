"""Frames of a clip on disk, in the numeric order of their file names.

A frame's position comes from the last number in its file name (``img46``, ``006_05562``,
``image586130``, ``reg_img46``), never from the directory listing order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from merkit.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def frame_number(path: str | Path) -> int:
    """The last integer in a frame file's stem: ``sub01/EP02_01f/img46.jpg`` -> 46."""
    stem = Path(path).stem
    match = _LAST_NUMBER.search(stem)
    if match is None:
        raise DatasetError(f"Frame file {path} has no number in its name, so its position is unknown.")
    return int(match.group(1))


def list_frames(folder: str | Path) -> list[Path]:
    """Image files of ``folder`` sorted by :func:`frame_number` (empty if there are none)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    numbers = [frame_number(p) for p in files]
    if len(set(numbers)) != len(numbers):
        seen: dict[int, Path] = {}
        for n, p in zip(numbers, files):
            if n in seen:
                raise DatasetError(
                    f"Folder {folder} holds two frames numbered {n} ({seen[n].name}, {p.name}); "
                    "remove one so the frame order is unambiguous."
                )
            seen[n] = p
    return [p for _, p in sorted(zip(numbers, files))]


def read_frame(path: str | Path, *, grey: bool = False) -> np.ndarray:
    """One frame as uint8, (H, W, 3) RGB or (H, W) grey."""
    flag = cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR
    image = cv2.imread(str(path), flag)
    if image is None:
        raise DatasetError(f"Cannot read frame {path}: the file is missing, empty or not an image.")
    return image if grey else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frames(paths: Sequence[str | Path], *, grey: bool = False) -> np.ndarray:
    """Frames as one uint8 array, (T, H, W, 3) RGB or (T, H, W) grey; all must share a size."""
    if not paths:
        raise DatasetError("No frames to read.")
    first = read_frame(paths[0], grey=grey)
    out = np.empty((len(paths),) + first.shape, dtype=np.uint8)
    out[0] = first
    for i, path in enumerate(paths[1:], start=1):
        frame = read_frame(path, grey=grey)
        if frame.shape != first.shape:
            raise DatasetError(
                f"Frame {path} is {frame.shape[1]}x{frame.shape[0]} but {Path(paths[0]).name} is "
                f"{first.shape[1]}x{first.shape[0]}; every frame of a clip must have the same size."
            )
        out[i] = frame
    return out
