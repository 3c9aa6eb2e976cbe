"""Training-only augmentation. Temporal jittering (MER-RCNN): keep a share of a clip's frames,
chosen at random in temporal order, and bring them to a fixed length with one of MATLAB's eight
``imresize`` kernels; six shares x eight kernels = 48 versions of every training clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from merkit.preprocess.temporal import KERNELS, resize_time

KEEP_RATIOS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)


@dataclass(frozen=True)
class JitterVersion:
    """One version of a clip: which frames are kept (ascending) and the kernel that resamples them."""

    ratio: float
    kernel: str
    frames: tuple[int, ...]


def jitter_versions(n_frames: int, rng: np.random.Generator, *, ratios=KEEP_RATIOS, kernels=tuple(KERNELS)) -> list[JitterVersion]:
    """len(ratios) x len(kernels) versions of a clip of ``n_frames`` frames.

    Each version draws its own frames (at least 2), so versions of one share differ in which frames
    they keep as well as in their kernel; at 100% every version keeps all frames, and there the
    kernels MATLAB makes identical (bilinear = triangle, bicubic = cubic, and, growing, box =
    nearest) give identical clips.
    """
    versions = []
    for ratio in ratios:
        keep = max(2, int(round(ratio * n_frames)))
        for kernel in kernels:
            chosen = np.arange(n_frames) if keep >= n_frames else np.sort(rng.choice(n_frames, keep, replace=False))
            versions.append(JitterVersion(ratio, kernel, tuple(int(i) for i in chosen)))
    return versions


def apply_version(frames: np.ndarray, version: JitterVersion, n_out: int) -> np.ndarray:
    """The version's frames resampled to ``n_out`` frames, (n_out, ...) float."""
    return resize_time(frames[list(version.frames)], n_out, method=version.kernel)
