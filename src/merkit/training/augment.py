"""Training-only augmentation.

Temporal jittering (MER-RCNN): keep a share of a clip's frames, chosen at random in temporal
order, and bring them to a fixed length with one of MATLAB's eight ``imresize`` kernels; six
shares x eight kernels = 48 versions of every training clip.

Crops, rescaling and flips of optical-flow sequences (STANet): flow is a displacement, so
resizing scales its vectors and a mirror negates u. How the paper crops is not said; merkit's
reading: one of six views, drawn with equal chance: a crop of 0.9 of the side at one of the four
corners or the centre, brought back to the full size, or the full view itself (so training also
sees faces at the scale of the test clips, which are never cropped); then rescaled by 0.9, 1.0 or
1.1 about the centre (zero flow fills what a shrink uncovers), or mirrored half the time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from merkit.preprocess.temporal import KERNELS, resize_time

KEEP_RATIOS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
SCALES = (0.9, 1.0, 1.1)
CROP = 0.9
VIEWS = 6  # corner_crop's views: four corners, the centre, the full view


@dataclass(frozen=True)
class JitterVersion:
    """One version of a clip: which frames are kept (ascending) and the kernel that resamples them."""

    ratio: float
    kernel: str
    frames: tuple[int, ...]


def jitter_versions(
    n_frames: int, rng: np.random.Generator, *, ratios=KEEP_RATIOS, kernels=tuple(KERNELS)
) -> list[JitterVersion]:
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


def augment_flows(x, rng: np.random.Generator, mode: str):
    """Training-only augmentation of a batch of flow sequences (B, T, 2, H, W), one draw per clip.

    ``crop_scale``: one of the six views of :func:`corner_crop`, then rescaling by 0.9, 1.0 or 1.1;
    ``crop_flip``: one of the six views, then a horizontal flip half the time.
    """
    import torch

    out = []
    for clip in x:
        clip = corner_crop(clip, int(rng.integers(VIEWS)))
        if mode == "crop_flip" and rng.random() < 0.5:
            clip = flip_flows(clip)
        elif mode == "crop_scale":
            clip = rescale_flows(clip, float(rng.choice(SCALES)))
        out.append(clip)
    return torch.stack(out)


def resize_flows(frames, size: tuple[int, int]):
    """(T, 2, H, W) flows resized (bilinear) to ``size`` = (h, w), each vector scaled with its axis."""
    from torch.nn import functional as F

    h, w = frames.shape[-2:]
    resized = F.interpolate(frames, size=size, mode="bilinear", align_corners=False)
    return resized * resized.new_tensor([size[1] / w, size[0] / h]).view(1, 2, 1, 1)


def corner_crop(frames, corner: int, fraction: float = CROP):
    """(T, 2, H, W) flows cropped to ``fraction`` of each side at corner 0-3 (top left, top right,
    bottom left, bottom right) or 4 (centre), resized back to (H, W), vectors in the new pixels;
    corner 5 is the full view, returned as it is."""
    if corner == VIEWS - 1:
        return frames
    h, w = frames.shape[-2:]
    ch, cw = int(round(fraction * h)), int(round(fraction * w))
    top, left = [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2)][corner]
    return resize_flows(frames[..., top : top + ch, left : left + cw], (h, w))


def flip_flows(frames):
    """(T, 2, H, W) flows of the horizontally mirrored clip: columns reversed, u negated."""
    return frames.flip(-1) * frames.new_tensor([-1.0, 1.0]).view(1, 2, 1, 1)


def rescale_flows(frames, factor: float):
    """(T, 2, H, W) flows zoomed by ``factor`` about the centre, same size; vectors scaled too.
    Zero flow (no motion) fills what a shrink uncovers."""
    import torch

    if factor == 1.0:
        return frames
    h, w = frames.shape[-2:]
    zoomed = resize_flows(frames, (int(round(factor * h)), int(round(factor * w))))
    zh, zw = zoomed.shape[-2:]
    if factor > 1:
        top, left = (zh - h) // 2, (zw - w) // 2
        return zoomed[..., top : top + h, left : left + w].contiguous()
    out = torch.zeros_like(frames)
    top, left = (h - zh) // 2, (w - zw) // 2
    out[..., top : top + zh, left : left + zw] = zoomed
    return out
