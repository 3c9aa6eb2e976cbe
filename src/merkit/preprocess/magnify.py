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
import threading
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


def level_gains(
    shape: tuple[int, int], height: int, *, alpha: float, lambda_c: float, exaggeration: float
) -> list[float]:
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
        pyramids by frames. The first colour clip of each dtype in a process also compiles (numba)
        the recursion and the colour conversion, about 0.4-0.8 s.
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
            return _iir_fast(frames, scale, gains, r1, r2, chrom_attenuation, threads)
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
        filtered.append(
            np.real(np.fft.ifft(np.fft.fft(stack, axis=0) * keep.reshape((t,) + (1,) * (stack.ndim - 1)), axis=0))
        )
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


# float32 twins of the reference's operators on OpenCV's pyramid routines, unscaled: pyrDown is
# MIT's reduction with 'reflect1' edges divided by 2 (its kernel sums to 1, sqrt(2) binom5 squared
# to 2), pyrUp MIT's expansion times 2 where the target's sides are even (at an odd side its edge
# differs, so the zero-filled signal is filtered explicitly there, as the reference does). With
# g_k = G_k / 2**k (g_0 the band, g_k+1 = pyrDown(g_k)) MIT's level k is 2**k (g_k - up(g_k+1)),
# and its reconstruction divided by 2**k is o_k = up(o_k+1 - gain_k g_k+1) + gain_k g_k (linear):
# no scaling pass, one expansion per level.
_BINOM5_UP = (np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 8).astype(np.float32)


def _up32(image: np.ndarray, shape: tuple[int, int], dst: np.ndarray | None = None) -> np.ndarray:
    """MIT's expansion of ``image`` to ``shape`` (H, W) times 2, in float32 (into ``dst`` if given)."""
    if shape[0] % 2 == 0 and shape[1] % 2 == 0:
        return cv2.pyrUp(image, dst=dst, dstsize=(shape[1], shape[0]))
    filled = np.zeros((shape[0], shape[1]) + image.shape[2:], np.float32)
    filled[::2, ::2] = image
    return cv2.sepFilter2D(filled, -1, _BINOM5_UP, _BINOM5_UP, dst=dst, borderType=cv2.BORDER_REFLECT_101)


def _level_shapes(shape: tuple[int, int], height: int) -> list[tuple[int, int]]:
    """(H, W) of each pyramid level, finest first (pyrDown rounds odd sides up, as MIT's does)."""
    shapes = [shape]
    for _ in range(height - 1):
        shapes.append(((shapes[-1][0] + 1) // 2, (shapes[-1][1] + 1) // 2))
    return shapes


def _amplified32(
    band: np.ndarray, gains: list[float], into: np.ndarray, lows: list[np.ndarray], sums: list[np.ndarray]
) -> np.ndarray:
    """into <- reconstruct(gains * laplacian_pyramid(band)), in float32 (every step is linear),
    in place: no array is allocated (a fresh one costs its page faults, more than the filter).

    band, into : (H, W, 3) float32, possibly the same array (band is read first)
    gains : per level, finest first; the finest is 0, as :func:`level_gains` gives (its
        expansion is written into ``into`` directly)
    lows, sums : float32 buffers of levels 1, 2, ... (:func:`_level_shapes`, 3 channels): g_k and o_k
    """
    assert gains[0] == 0, "the finest level's gain is 0"
    g = [band] + lows
    for k in range(1, len(g)):
        cv2.pyrDown(g[k - 1], dst=g[k])
    o = sums[-1]
    np.multiply(g[-1], np.float32(gains[-1]), out=o)
    for k in range(len(g) - 2, -1, -1):
        gain = float(gains[k])
        if gain:
            cv2.scaleAdd(g[k + 1], -gain, o, dst=o)  # o_k+1 - gain_k g_k+1
        target = into if k == 0 else sums[k - 1]
        _up32(o, g[k].shape[:2], target)
        o = target
        if gain:
            cv2.scaleAdd(g[k], gain, o, dst=o)
    return into


def _iir_fast(frames, scale, gains, r1, r2, chrom_attenuation, threads) -> np.ndarray:
    """The IIR magnification of a colour clip, in float32 across threads.

    Every step before ``ntsc2rgb`` is linear, the temporal low-passes act on each pyramid
    coefficient alike, and the colour conversion on each pixel alike, so filtering the RGB frames
    in time, then taking one pyramid per band-passed frame and converting its change to YIQ,
    attenuating I and Q and converting back (one 3x3 matrix) gives the reference's result (to
    float32 rounding: 1.2e-7 to 2.4e-7 measured, tested at 5e-7). Two passes, each split over threads: the
    recursion (numba, by stripes of rows: each pixel's filter is its own) writes every
    band-passed frame into the output; then each frame's pyramid, gains, reconstruction and
    colour conversion, by frames, replace it with the result. No array beyond the output grows
    with the clip.
    """
    if frames.dtype not in (np.uint8, np.float32, np.float64):  # OpenCV's split and the kernels take these
        frames = frames.astype(np.float64)  # exact for bool, float16 and integers below 2**53
    frames = np.ascontiguousarray(frames)
    t, h, w = frames.shape[:3]
    workers = max(1, min(threads or os.cpu_count() or 1, h))
    out = np.empty(frames.shape, dtype=np.float32)
    np.divide(frames[0], scale, out=out[0], casting="unsafe")  # frame 0 as the reference returns it
    wide = np.float64 if frames.dtype == np.float64 else np.float32  # the centred signal's precision
    rows = frames.reshape(t, h, -1)
    attenuation = np.array([1, chrom_attenuation, chrom_attenuation])
    to_change = ((NTSC * attenuation) @ RGB_TO_YIQ.T).astype(np.float32)  # RGB -> YIQ, I and Q attenuated, -> RGB
    unit = np.float32(1 / scale)

    def band_pass(stripe: slice):
        first = rows[0, stripe].astype(wide)
        lows = np.zeros((2,) + first.shape, np.float32)
        _band_pass_rows(
            rows[:, stripe],
            wide(1 / scale),
            np.float32(r1),
            np.float32(r2),
            first,
            lows,
            out.reshape(t, h, -1)[:, stripe],
        )

    local = threading.local()  # each thread's buffers, made once: fresh arrays cost their page faults

    def finish(i):
        if not hasattr(local, "lows"):
            shapes = _level_shapes((h, w), len(gains))[1:]
            local.lows, local.sums = ([np.empty(shape + (3,), np.float32) for shape in shapes] for _ in range(2))
            local.planes = (
                np.empty((3, h, w), frames.dtype),
                np.empty((3, h, w), np.float32),
                np.empty((3, h, w), np.float32),
            )
        rgb, change, result = local.planes
        cv2.split(frames[i], mv=list(rgb))
        cv2.split(_amplified32(out[i], gains, out[i], local.lows, local.sums), mv=list(change))
        _add_change_as_rgb(rgb, unit, change, to_change, result)  # on planes: vectorised
        cv2.merge(list(result), dst=out[i])

    bounds = np.linspace(0, h, workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(band_pass, [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]))
        list(pool.map(finish, range(1, t)))
    return out


@njit(nogil=True, cache=False)
def _band_pass_rows(frames, unit, r1, r2, first, lows, out):
    """out[1:] <- the difference of the two IIR low-passes started at frame 0, per value: frames
    (T, H, N) read times ``unit``; out (T, H, N) float32; first (H, N) frame 0 in the signal's
    dtype; lows (2, H, N) float32 zeros, the low-passes' state. Frame by frame, each a long
    contiguous stream (a row at a time through all frames, its state in L1, was 5-15% slower;
    filling the state here made numba's compilation take 7 s, not 0.7). The signal is centred on
    frame 0 (the low-passes start at 0), so the float32 state holds the change, not the level:
    rounding relative to the change, which the gains amplify ten-fold."""
    t, h, n = frames.shape
    low1, low2 = lows[0], lows[1]
    for i in range(1, t):
        for y in range(h):
            row, start, a, b, into = frames[i, y], first[y], low1[y], low2[y], out[i, y]
            for j in range(n):
                signal = np.float32((row[j] - start[j]) * unit)
                a[j] += r1 * (signal - a[j])  # low += r (signal - low), in the reference's order
                b[j] += r2 * (signal - b[j])
                into[j] = a[j] - b[j]


@njit(nogil=True, cache=False)
def _add_change_as_rgb(frame, unit, change, to_rgb, out):
    """out <- MATLAB's ntsc2rgb of the frame's YIQ plus the change's, clipped to [0, 1], per pixel,
    on planes: frame (3, H, W) uint8 or float, read as RGB times ``unit`` (its YIQ back to RGB is
    itself), plus ``to_rgb`` (3, 3) times ``change`` (3, H, W) float32; negatives to 0, a pixel
    whose largest channel exceeds 1 divided by it; out (3, H, W) float32, not an input. One pass,
    vectorised: on interleaved channels, or with Python's ``max``, LLVM kept it scalar (8x slower)."""
    zero, one = np.float32(0.0), np.float32(1.0)
    m00, m01, m02 = to_rgb[0, 0], to_rgb[0, 1], to_rgb[0, 2]
    m10, m11, m12 = to_rgb[1, 0], to_rgb[1, 1], to_rgb[1, 2]
    m20, m21, m22 = to_rgb[2, 0], to_rgb[2, 1], to_rgb[2, 2]
    for y in range(frame.shape[1]):
        for x in range(frame.shape[2]):
            c0, c1, c2 = change[0, y, x], change[1, y, x], change[2, y, x]
            r = np.float32(frame[0, y, x]) * unit + (m00 * c0 + m01 * c1 + m02 * c2)
            g = np.float32(frame[1, y, x]) * unit + (m10 * c0 + m11 * c1 + m12 * c2)
            b = np.float32(frame[2, y, x]) * unit + (m20 * c0 + m21 * c1 + m22 * c2)
            r = r if r > zero else zero
            g = g if g > zero else zero
            b = b if b > zero else zero
            peak = r if r > g else g
            peak = peak if peak > b else b
            peak = peak if peak > one else one  # r / 1 is r: no pixel within [0, 1] changes
            out[0, y, x] = r / peak
            out[1, y, x] = g / peak
            out[2, y, x] = b / peak
