"""Eulerian video magnification (Wu et al. 2012), the IIR variant MER-RCNN uses, and an ideal one.

Follows the MIT ``amplify_spatial_lpyr_temporal_iir`` as ``shared/ALGORITHMS.md`` states it:

- frames to YIQ with the NTSC matrix;
- a Laplacian pyramid per channel with the 5-tap binomial filter sqrt(2) [1 4 6 4 1] / 16 and
  'reflect1' edges (mirror without repeating the edge pixel); height 'auto' = 1 + the number of
  halvings the filter allows; the last level is the low-pass residual;
- two first-order IIR low-passes with coefficients r1 > r2 (not Hz), started at frame 0; their
  difference is the band-passed pyramid;
- per level, from the residual to the finest, gain min(alpha, (lambda / delta / 8 - 1) * exaggeration)
  with delta = lambda_c / 8 / (1 + alpha) and lambda = sqrt(H^2 + W^2) / 3 halved per level; gain 0
  on the residual and the finest level;
- I and Q of the magnified signal times ``chrom_attenuation``; back to RGB as MATLAB's ``ntsc2rgb``
  (negatives to 0, a pixel with a channel above 1 divided by its largest channel), clipped.

Deliberate differences: every frame is returned (the MIT script drops the last ten); 'reflect1'
is applied to the zero-filled signal when upsampling (matlabPyrTools folds its filter at the
edges instead; the pyramid reconstructs its input exactly either way).

References
----------
H.-Y. Wu, M. Rubinstein, E. Shih, J. Guttag, F. Durand, W. T. Freeman, "Eulerian Video
Magnification for Revealing Subtle Changes in the World", ACM SIGGRAPH 2012.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from numba import njit
from scipy.ndimage import correlate1d

from merkit.errors import ConfigError, check_array, check_choice

NTSC = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])  # rgb = yiq @ NTSC.T
RGB_TO_YIQ = np.linalg.inv(NTSC).T  # yiq = rgb @ inv(NTSC).T
BINOM5 = np.sqrt(2) * np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def pyramid_height(shape: tuple[int, int], filter_size: int = 5) -> int:
    """matlabPyrTools' 'auto' height: 1 + the halvings before a side is shorter than the filter."""
    h, w = shape
    halvings = 0
    while h >= filter_size and w >= filter_size:
        halvings, h, w = halvings + 1, h // 2, w // 2
    return 1 + halvings


def _down(image: np.ndarray) -> np.ndarray:
    low = correlate1d(image, BINOM5, axis=0, mode="mirror")[::2]
    return correlate1d(low, BINOM5, axis=1, mode="mirror")[:, ::2]


def _up(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    wide = np.zeros((image.shape[0], shape[1]) + image.shape[2:])
    wide[:, ::2] = image
    wide = correlate1d(wide, BINOM5, axis=1, mode="mirror")
    tall = np.zeros((shape[0], shape[1]) + image.shape[2:])
    tall[::2] = wide
    return correlate1d(tall, BINOM5, axis=0, mode="mirror")


def laplacian_pyramid(image: np.ndarray, height: int) -> list[np.ndarray]:
    """Levels finest first; the last is the low-pass residual. ``image`` (H, W) or (H, W, C)."""
    levels = []
    for _ in range(height - 1):
        low = _down(image)
        levels.append(image - _up(low, image.shape[:2]))
        image = low
    return levels + [image]


def reconstruct(levels: list[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`laplacian_pyramid`."""
    image = levels[-1]
    for band in reversed(levels[:-1]):
        image = band + _up(image, band.shape[:2])
    return image


def level_gains(shape: tuple[int, int], height: int, *, alpha: float, lambda_c: float, exaggeration: float) -> list[float]:
    """Gain of each level, finest first (the residual last), as the MIT script computes them.

    Examples
    --------
    >>> [round(g, 3) for g in level_gains((64, 64), 5, alpha=10, lambda_c=16, exaggeration=2)]
    [0.0, 3.185, 8.371, 10.0, 0.0]
    """
    delta = lambda_c / 8 / (1 + alpha)
    lam = np.sqrt(shape[0] ** 2 + shape[1] ** 2) / 3
    gains = []
    for level in range(height - 1, -1, -1):  # residual first, as the MIT loop
        current = (lam / delta / 8 - 1) * exaggeration
        gains.append(0.0 if level in (0, height - 1) else float(min(alpha, current)))
        lam /= 2
    return gains[::-1]


def _to_rgb(yiq: np.ndarray) -> np.ndarray:
    """MATLAB's ntsc2rgb, then clipped to [0, 1]."""
    rgb = np.maximum(yiq @ NTSC.T, 0.0)
    peak = rgb.max(axis=-1, keepdims=True)
    rgb = np.where(peak > 1.0, rgb / np.maximum(peak, 1e-12), rgb)
    return np.clip(rgb, 0.0, 1.0)


def magnify_eulerian(
    frames,
    *,
    alpha: float = 10.0,
    lambda_c: float = 16.0,
    r1: float = 0.4,
    r2: float = 0.05,
    chrom_attenuation: float = 0.1,
    exaggeration: float = 2.0,
    temporal: str = "iir",
    band: tuple[float, float] | None = None,
    fps: float | None = None,
    threads: int | None = None,
    reference: bool = False,
) -> np.ndarray:
    """Magnify the motion of a clip.

    Parameters
    ----------
    frames : (T, H, W, 3) RGB or (T, H, W) grey array
        Floats in [0, 1] (uint8 is divided by 255).
    alpha, lambda_c, r1, r2, chrom_attenuation, exaggeration
        MER-RCNN's values by default (alpha 10 bounded by lambda_c 16, the seed's "cut-off
        frequencies" 0.4 and 0.05, which are the IIR coefficients r1 and r2).
    temporal : {'iir', 'ideal'}
        ``iir`` streams frame by frame (memory: about three times the output). ``ideal`` keeps the
        band ``band`` (low, high) in Hz of the FFT over the whole clip at ``fps`` (memory: the
        clip's pyramid).
    threads : int, optional
        Threads for colour clips (default: the CPUs): the recursion by stripes of rows, then the
        pyramids by frames. The first colour clip in a process also compiles (numba) the colour
        conversion, about 0.4 s.
    reference : bool
        Compute the IIR magnification in float64, in MIT's order of operations (each frame's
        pyramid filtered level by level), as grey clips always are: slower; the tests hold the
        default float32 path for colour clips to it.

    Returns
    -------
    Same shape as ``frames``, float32 in [0, 1]; frame 0 is the input's.
    """
    frames = check_array("frames", frames, ndim=(3, 4))
    check_choice("temporal filter", temporal, ("iir", "ideal"))
    if not r1 > r2 > 0:
        raise ConfigError(f"The IIR coefficients must satisfy r1 > r2 > 0; got r1={r1}, r2={r2}.")
    scale = 255.0 if frames.dtype == np.uint8 else 1.0
    colour = frames.ndim == 4
    t, h, w = frames.shape[:3]
    height = pyramid_height((h, w))
    gains = level_gains((h, w), height, alpha=alpha, lambda_c=lambda_c, exaggeration=exaggeration)

    def to_signal(frame):
        frame = frame.astype(np.float64) / scale
        return frame @ RGB_TO_YIQ if colour else frame

    def finish(signal, filtered_levels):
        change = reconstruct([g * f for g, f in zip(gains, filtered_levels)])
        if colour:
            change[..., 1:] *= chrom_attenuation
            return _to_rgb(signal + change)
        return np.clip(signal + change, 0.0, 1.0)

    if temporal == "iir":
        if colour and not reference:
            return _iir_fast(frames, scale, gains, height, r1, r2, chrom_attenuation, threads)
        return _iir_reference(frames, scale, gains, height, r1, r2, to_signal, finish)
    if band is None or fps is None:
        raise ConfigError("The ideal filter needs band=(low_hz, high_hz) and fps.")
    out = np.empty(frames.shape, dtype=np.float32)
    out[0] = frames[0].astype(np.float64) / scale
    pyramids = [laplacian_pyramid(to_signal(f), height) for f in frames]
    keep = (np.abs(np.fft.fftfreq(t, d=1.0 / fps)) >= band[0]) & (np.abs(np.fft.fftfreq(t, d=1.0 / fps)) <= band[1])
    filtered = []
    for level in range(height):
        stack = np.stack([p[level] for p in pyramids])
        filtered.append(np.real(np.fft.ifft(np.fft.fft(stack, axis=0) * keep.reshape((t,) + (1,) * (stack.ndim - 1)), axis=0)))
    for i in range(1, t):
        out[i] = finish(to_signal(frames[i]), [f[i] for f in filtered])
    return out


def _iir_reference(frames, scale, gains, height, r1, r2, to_signal, finish) -> np.ndarray:
    """The MIT script's order of operations in float64: each frame's pyramid, both IIR
    low-passes per level, the gains, the reconstruction. The reference the fast path is held to."""
    out = np.empty(frames.shape, dtype=np.float32)
    out[0] = frames[0].astype(np.float64) / scale
    low1 = laplacian_pyramid(to_signal(frames[0]), height)
    low2 = [level.copy() for level in low1]
    for i in range(1, len(frames)):
        signal = to_signal(frames[i])
        pyramid = laplacian_pyramid(signal, height)
        for level, p in enumerate(pyramid):
            low1[level] += r1 * (p - low1[level])
            low2[level] += r2 * (p - low2[level])
        out[i] = finish(signal, [a - b for a, b in zip(low1, low2)])
    return out


# float32 twins of the reference's operators, on OpenCV's pyramid routines: pyrDown is MIT's
# reduction with 'reflect1' edges, scaled by 2 (its kernel sums to 1, sqrt(2) binom5 squared to 2);
# pyrUp is MIT's expansion, scaled by 1/2, where the target's sides are even (at an odd side its
# edge differs, so the zero-filled signal is filtered explicitly there, as the reference does).
_BINOM5_32 = BINOM5.astype(np.float32)
_TO_YIQ_32 = RGB_TO_YIQ.T.astype(np.float32)


def _down32(image: np.ndarray) -> np.ndarray:
    return cv2.pyrDown(image) * np.float32(2)


def _up32(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if shape[0] % 2 == 0 and shape[1] % 2 == 0:
        return cv2.pyrUp(image, dstsize=(shape[1], shape[0])) * np.float32(0.5)
    filled = np.zeros((shape[0], shape[1]) + image.shape[2:], np.float32)
    filled[::2, ::2] = image
    return cv2.sepFilter2D(filled, -1, _BINOM5_32, _BINOM5_32, borderType=cv2.BORDER_REFLECT_101)


def _amplified32(band: np.ndarray, gains: list[float], height: int) -> np.ndarray:
    """reconstruct(gains * laplacian_pyramid(band)), in float32 (every step is linear). A level
    whose gain is 0 (the finest and the residual, always) adds nothing, so its band is not formed."""
    levels, image = [], band
    for _ in range(height - 1):
        low = _down32(image)
        levels.append((image, low))
        image = low
    out = image * np.float32(gains[-1]) if gains[-1] else np.zeros_like(image)
    for (fine, low), gain in zip(reversed(levels), reversed(gains[:-1])):
        out = _up32(out, fine.shape[:2])
        if gain:
            out += (fine - _up32(low, fine.shape[:2])) * np.float32(gain)
    return out


def _iir_fast(frames, scale, gains, height, r1, r2, chrom_attenuation, threads) -> np.ndarray:
    """The IIR magnification of a colour clip, in float32 across threads (1500-1750 frames/s for
    64 frames of 240x320 on 2 cores, AVX-512 or AVX2: ``bench/bench_preprocess.py``).

    Every step before ``ntsc2rgb`` is linear, and the temporal low-passes act on each pyramid
    coefficient alike, so filtering the YIQ frames in time and then taking one pyramid per
    band-passed frame gives the reference's result (to float32 rounding: under 1e-6, tested).
    Two passes, each split over threads: the recursion, by stripes of rows (each pixel's filter
    is its own), writes every band-passed frame into the output; then each frame's pyramid,
    gains, reconstruction and colour conversion, by frames, replace it with the result. No
    array beyond the output grows with the clip.
    """
    t, h = frames.shape[:2]
    workers = max(1, min(threads or os.cpu_count() or 1, h))
    out = np.empty(frames.shape, dtype=np.float32)
    attenuation = np.array([1, chrom_attenuation, chrom_attenuation])
    a, b, unit = np.float32(r1), np.float32(r2), np.float32(1 / scale)

    def yiq(image, into=None):
        return cv2.transform(np.multiply(image, unit, dtype=np.float32), _TO_YIQ_32, dst=into)

    def band_pass(rows: slice):
        """out[i, rows] <- low1 - low2 of the YIQ stripe, frame by frame (frame 0 gets the input)."""
        low1 = yiq(frames[0, rows])
        low2, signal, step = low1.copy(), np.empty_like(low1), np.empty_like(low1)
        np.multiply(frames[0, rows], unit, out=out[0, rows], dtype=np.float32)
        for i in range(1, t):
            yiq(frames[i, rows], signal)
            for low, r in ((low1, a), (low2, b)):  # low += r * (signal - low), in the reference's order
                np.subtract(signal, low, out=step)
                step *= r
                low += step
            np.subtract(low1, low2, out=out[i, rows])

    to_rgb = (NTSC * attenuation).astype(np.float32)  # the change in YIQ, I and Q attenuated, to RGB

    def finish(i):
        _add_change_as_rgb(frames[i], unit, _amplified32(out[i], gains, height), to_rgb, out[i])

    bounds = np.linspace(0, h, workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(band_pass, [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]))
        list(pool.map(finish, range(1, t)))
    return out


@njit(nogil=True, cache=False)
def _add_change_as_rgb(frame, unit, change, to_rgb, out):
    """out <- MATLAB's ntsc2rgb of the frame's YIQ plus ``change``, clipped to [0, 1], per pixel:
    frame (H, W, 3) uint8 or float, read as RGB times ``unit`` (its YIQ back to RGB is itself),
    plus ``to_rgb`` (3, 3) times the change; negatives to 0, a pixel whose largest channel
    exceeds 1 divided by it. One pass instead of OpenCV's eight."""
    zero, one = np.float32(0.0), np.float32(1.0)
    for y in range(frame.shape[0]):
        for x in range(frame.shape[1]):
            c0, c1, c2 = change[y, x, 0], change[y, x, 1], change[y, x, 2]
            r = max(np.float32(frame[y, x, 0]) * unit + (to_rgb[0, 0] * c0 + to_rgb[0, 1] * c1 + to_rgb[0, 2] * c2), zero)
            g = max(np.float32(frame[y, x, 1]) * unit + (to_rgb[1, 0] * c0 + to_rgb[1, 1] * c1 + to_rgb[1, 2] * c2), zero)
            b = max(np.float32(frame[y, x, 2]) * unit + (to_rgb[2, 0] * c0 + to_rgb[2, 1] * c1 + to_rgb[2, 2] * c2), zero)
            peak = max(max(r, g), max(b, one))
            out[y, x, 0] = min(r / peak, one)
            out[y, x, 1] = min(g / peak, one)
            out[y, x, 2] = min(b / peak, one)
