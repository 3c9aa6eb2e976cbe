"""The feature-difference spotter (Moilanen, Zhao and Pietikäinen, ICPR 2014).

For each frame, the uniform LBP histograms of a grid of face blocks are compared (chi-square)
with the average of the histograms ``k`` frames before and after it: an expression that comes and
goes within ``2k`` frames makes the frame in its middle differ from that average. The frame's
value is the sum of its ``top`` largest block distances; a contrast, the value minus the mean of
the values ``k`` frames away (negatives set to 0), suppresses slow changes. Frames whose contrast
is a peak above ``T = mean + p (max - mean)``, peaks at least ``k`` frames apart, are spotted; each
gives the interval ``[peak - k, peak + k]``.

The paper spots one kind with ``N = 2k + 1`` frames about the longest micro-expression; merkit runs
the analysis twice, with windows given in seconds so that it works at 30 and 200 fps alike:
``micro_window`` (0.5 s, the micro-expression's upper bound) and ``macro_window`` (2 s), each kind
spotted on its own (MEGC scores them apart; a macro-expression's rise and fall can also fire the
micro window, which counts as a false micro interval). Choices the paper leaves open: 6 x 6
blocks, the 12 largest distances (as the paper's 36-block grid and its "one third"), ``p = 0.5``.
The input is the face, cropped and aligned (for example by ``merkit.preprocess.align``).

References
----------
A. Moilanen, G. Zhao, M. Pietikäinen, "Spotting Rapid Facial Movements from Videos Using
Appearance-Based Feature Difference Analysis", ICPR 2014.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from merkit.datasets.intervals import Interval
from merkit.errors import ConfigError, check_array
from merkit.features.lbp_top import plane_codes, uniform_mapping
from merkit.spotting.registry import Spotter, Spotting, register_spotter


def block_histograms(frames: np.ndarray, blocks: int, chunk: int = 256) -> np.ndarray:
    """(T, blocks * blocks, 59) uniform LBP histograms (each summing to 1) of each frame's blocks;
    frames are processed ``chunk`` at a time, so memory does not grow with the video."""
    frames = check_array("frames", frames, ndim=(3,))
    t, h, w = frames.shape
    inner_h, inner_w = h - 2, w - 2  # radius-1 codes leave a pixel at each edge
    if inner_h < blocks or inner_w < blocks:
        raise ConfigError(
            f"Frames of {h}x{w} cannot be cut into {blocks}x{blocks} blocks; use fewer blocks or larger faces."
        )
    rows = np.minimum(np.arange(inner_h) * blocks // inner_h, blocks - 1)
    cols = np.minimum(np.arange(inner_w) * blocks // inner_w, blocks - 1)
    block_of = (rows[:, None] * blocks + cols[None, :]).ravel()
    mapping = uniform_mapping(8)
    n_bins = int(mapping.max()) + 1
    out = np.empty((t, blocks * blocks, n_bins))
    for start in range(0, t, chunk):
        part = frames[start : start + chunk]
        codes = plane_codes(part, "XY", radius=(1, 1, 1), margins=(0, 1, 1))  # each frame's own 2-D LBP
        n = len(part)
        keys = (np.arange(n)[:, None] * (blocks * blocks) + block_of[None, :]) * n_bins + mapping[codes.reshape(n, -1)]
        counts = np.bincount(keys.ravel(), minlength=n * blocks * blocks * n_bins).reshape(n, blocks * blocks, n_bins)
        out[start : start + n] = counts / counts.sum(axis=2, keepdims=True)
    return out


def chi_square(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Chi-square distance over the last axis: sum (a - b)^2 / (a + b), 0/0 taken as 0."""
    total = a + b
    return np.divide((a - b) ** 2, total, out=np.zeros_like(total), where=total > 0).sum(axis=-1)


def contrast(histograms: np.ndarray, k: int, top: int) -> np.ndarray:
    """(T,) the paper's contrasted feature difference for half-window ``k``: defined from frame 2k
    to T - 1 - 2k (a frame's value needs frames k away, its contrast the values k away), 0 elsewhere."""
    t = len(histograms)
    out = np.zeros(t)
    if t <= 4 * k:
        return out
    average = (histograms[: t - 2 * k] + histograms[2 * k :]) / 2
    distances = chi_square(histograms[k : t - k], average)  # frames k .. t - 1 - k
    values = np.sort(distances, axis=1)[:, -top:].sum(axis=1)
    out[2 * k : t - 2 * k] = np.maximum(
        values[k : len(values) - k] - (values[: len(values) - 2 * k] + values[2 * k :]) / 2, 0
    )
    return out


def peaks(score: np.ndarray, threshold: float, spacing: int) -> list[int]:
    """Frames where ``score`` is a local maximum above ``threshold``, strongest first, at least
    ``spacing`` frames apart (a weaker peak within ``spacing`` of a stronger one is dropped)."""
    candidates = [
        i
        for i in range(1, len(score) - 1)
        if score[i] > threshold and score[i] >= score[i - 1] and score[i] >= score[i + 1]
    ]
    kept: list[int] = []
    for i in sorted(candidates, key=lambda i: -score[i]):
        if all(abs(i - j) >= spacing for j in kept):
            kept.append(i)
    return sorted(kept)


@register_spotter
@dataclass
class FeatureDifference(Spotter):
    """LBP feature difference (Moilanen et al. 2014), micro and macro windows in seconds.

    Parameters
    ----------
    micro_window, macro_window : seconds: the longest micro- and macro-expression (N = 2k + 1 frames)
    blocks : the face is cut into ``blocks`` x ``blocks`` blocks
    top : how many of the largest block distances make a frame's value
    p : the threshold's place between the contrast's mean (0) and maximum (1)
    """

    name = "feature_difference"
    summary = "LBP histograms of face blocks vs the frames k before and after (Moilanen et al. 2014)"

    micro_window: float = 0.5
    macro_window: float = 2.0
    blocks: int = 6
    top: int = 12
    p: float = 0.5

    def half_window(self, window: float, fps: float) -> int:
        """k of a window of ``window`` seconds (N = 2k + 1 frames)."""
        return max(1, int(round(window * fps)) // 2)

    def fewest_frames(self, fps: float) -> int:
        """A contrast needs the values k frames away, each the frames k away: 4 k_micro + 1 frames."""
        return 4 * self.half_window(self.micro_window, fps) + 1

    def signals(self, faces: Iterable[np.ndarray | None], fps: float) -> np.ndarray:
        """(T, blocks * blocks * 59) block histograms; a frame without a usable face repeats the
        last one (the first usable one, for those before it). Unlike the flow spotter's rows these
        are large (8.5 KB a frame with 6 x 6 blocks)."""
        if not fps > 0:
            raise ConfigError(f"Spotting needs the frame rate; got fps={fps}.")
        parts, chunk, last, leading = [], [], None, 0

        def flush():
            parts.append(block_histograms(np.stack(chunk), self.blocks).astype(np.float32).reshape(len(chunk), -1))
            chunk.clear()

        for face in faces:
            if face is None and last is None:
                leading += 1
                continue
            if last is None:
                chunk += [face] * leading  # the frames before the first face take it
            face = last if face is None else face
            chunk.append(face)
            last = face
            if len(chunk) >= 256:
                flush()
        if last is None:
            raise ConfigError(
                f"None of the {leading} frames has a usable face; the feature difference needs faces to compare."
            )
        if chunk:
            flush()
        return np.concatenate(parts)

    def intervals(self, signals: np.ndarray, fps: float) -> Spotting:
        histograms = signals.reshape(len(signals), self.blocks**2, -1).astype(np.float64)
        scores, thresholds, intervals = {}, {}, []
        for kind, window in (("micro", self.micro_window), ("macro", self.macro_window)):
            k = self.half_window(window, fps)
            score = contrast(histograms, k, min(self.top, self.blocks**2))
            scores[kind] = score
            threshold = thresholds[kind] = score.mean() + self.p * (score.max() - score.mean()) if len(score) else 0.0
            intervals += [
                Interval(max(0, peak - k), min(len(signals) - 1, peak + k), kind, float(score[peak]), peak)
                for peak in peaks(score, threshold, k)
            ]
        return Spotting(scores, thresholds, intervals)
