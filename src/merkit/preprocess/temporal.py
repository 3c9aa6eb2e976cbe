"""Temporal normalisation of clips.

``resize_time`` resamples the time axis with MATLAB ``imresize``'s eight kernels, as MER-RCNN
does (``shared/ALGORITHMS.md``); ``tim`` is the temporal interpolation model of Zhou et al.
(2011), used by the LBP-TOP micro-expression baselines (Pfister et al. 2011).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from merkit.errors import ConfigError, check_array, check_choice

EPS = np.finfo(np.float64).eps


def _box(x):
    return ((-0.5 <= x) & (x < 0.5)).astype(np.float64)


def _triangle(x):
    return (x + 1) * ((-1 <= x) & (x < 0)) + (1 - x) * ((0 <= x) & (x <= 1))


def _cubic(x):
    a = np.abs(x)
    return (1.5 * a**3 - 2.5 * a**2 + 1) * (a <= 1) + (-0.5 * a**3 + 2.5 * a**2 - 4 * a + 2) * ((1 < a) & (a <= 2))


def _lanczos(n: int):
    def kernel(x):
        return (np.sin(np.pi * x) * np.sin(np.pi * x / n) + EPS) / (np.pi**2 * x**2 / n + EPS) * (np.abs(x) < n)

    return kernel


# name -> (kernel, width, antialiased when shrinking); MATLAB's imresize names
KERNELS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float, bool]] = {
    "nearest": (_box, 1.0, False),
    "bilinear": (_triangle, 2.0, True),
    "bicubic": (_cubic, 4.0, True),
    "box": (_box, 1.0, True),
    "triangle": (_triangle, 2.0, True),
    "cubic": (_cubic, 4.0, True),
    "lanczos2": (_lanczos(2), 4.0, True),
    "lanczos3": (_lanczos(3), 6.0, True),
}


def resize_weights(in_length: int, out_length: int, *, method: str = "bicubic", boundary: str = "mirror") -> np.ndarray:
    """(out_length, in_length) matrix of ``imresize``'s weights along one axis.

    Output sample u (1-based) reads input x = u / scale + 0.5 (1 - 1 / scale), scale =
    out / in; when shrinking, every kernel but ``nearest`` is widened by 1 / scale and scaled by
    scale (antialiasing); each row sums to 1; indices past the ends are mirrored (``mirror``,
    current MATLAB) or clamped (``clamp``, MATLAB R2013).
    """
    kernel, width, antialias = KERNELS[check_choice("resampling method", method, KERNELS)]
    check_choice("boundary", boundary, ("mirror", "clamp"))
    scale = out_length / in_length
    if scale < 1 and antialias:
        h, width = (lambda x: scale * kernel(scale * x)), width / scale
    else:
        h = kernel
    u = np.arange(1, out_length + 1)[:, None] / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    indices = left + np.arange(int(np.ceil(width)) + 2)[None, :]
    weights = h(u - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    if boundary == "mirror":
        aux = np.concatenate([np.arange(1, in_length + 1), np.arange(in_length, 0, -1)])
        indices = aux[np.mod(indices.astype(np.int64) - 1, len(aux))]
    else:
        indices = np.clip(indices.astype(np.int64), 1, in_length)
    matrix = np.zeros((out_length, in_length))
    np.add.at(matrix, (np.repeat(np.arange(out_length), indices.shape[1]), indices.ravel() - 1), weights.ravel())
    return matrix


def resize_time(frames, n_frames: int, *, method: str = "bicubic", boundary: str = "mirror") -> np.ndarray:
    """Resample a clip to ``n_frames`` along time, as MATLAB's ``imresize`` on the T x (H W C) matrix.

    Parameters
    ----------
    frames : (T, H, W) or (T, H, W, C) array, float or uint8
    n_frames : int
    method : {'nearest', 'bilinear', 'bicubic', 'box', 'triangle', 'cubic', 'lanczos2', 'lanczos3'}
        MATLAB's names: ``bilinear`` is ``triangle`` and ``bicubic`` is ``cubic`` (a = -0.5), so
        the eight give six distinct results when shrinking; when growing ``box`` is not
        antialiased and equals ``nearest`` too (five). Lanczos adds ``eps`` as MATLAB does.
    boundary : {'mirror', 'clamp'}

    Returns
    -------
    (n_frames, ...) float64, or uint8 rounded half away from zero for uint8 input.

    Examples
    --------
    >>> resize_time(np.array([[0.0], [4.0]]), 3, method="bilinear")[:, 0].tolist()
    [0.0, 2.0, 4.0]
    """
    frames = check_array("frames", frames, ndim=(1, 2, 3, 4))
    if n_frames < 1:
        raise ConfigError(f"The parameter `n_frames` must be positive; got {n_frames}.")
    weights = resize_weights(frames.shape[0], n_frames, method=method, boundary=boundary)
    out = (weights @ frames.reshape(frames.shape[0], -1).astype(np.float64)).reshape((n_frames,) + frames.shape[1:])
    if frames.dtype == np.uint8:
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out


def interpolate_time(frames, n_frames: int) -> np.ndarray:
    """Linear interpolation of a clip to ``n_frames`` frames, first and last frames kept (STANet).

    Frame k of the result lies at position k (T - 1) / (n_frames - 1) of the input and mixes the
    two frames around it; unlike ``resize_time`` nothing is low-pass filtered when shrinking.

    Parameters
    ----------
    frames : (T, ...) array, T >= 1

    Returns
    -------
    (n_frames, ...) float32

    Examples
    --------
    >>> interpolate_time(np.array([[0.0], [3.0], [9.0]]), 5)[:, 0].tolist()
    [0.0, 1.5, 3.0, 6.0, 9.0]
    """
    frames = check_array("frames", frames, ndim=(1, 2, 3, 4))
    if n_frames < 2:
        raise ConfigError(f"The parameter `n_frames` must be at least 2; got {n_frames}.")
    positions = np.linspace(0, frames.shape[0] - 1, n_frames)
    below = np.minimum(np.floor(positions).astype(np.int64), frames.shape[0] - 1)
    above = np.minimum(below + 1, frames.shape[0] - 1)
    share = (positions - below).reshape((-1,) + (1,) * (frames.ndim - 1)).astype(np.float32)
    low, high = frames[below].astype(np.float32), frames[above].astype(np.float32)
    return low + share * (high - low)


def tim(frames, n_frames: int) -> np.ndarray:
    """Resample a clip to ``n_frames`` with the temporal interpolation model.

    The T frames, as columns of a matrix with their mean removed, are written in the basis of the
    curve ``v_k(pos) = sin(pos * k * pi + pi * (T - k) / (2T))``, k = 1..T-1, at
    ``pos = (1..T) / T`` (the eigenvectors of the path graph's Laplacian, so the fit is exact);
    the curve is then read at ``pos = linspace(1/T, 1, n_frames)`` and the mean added back. With
    ``n_frames == T`` the input comes back.

    Parameters
    ----------
    frames : (T, ...) array, T >= 2
    n_frames : int

    Returns
    -------
    (n_frames, ...) float64

    References
    ----------
    Z. Zhou, G. Zhao, M. Pietikainen, "Towards a practical lipreading system", CVPR 2011.

    Examples
    --------
    >>> tim(np.array([0.0, 4.0]), 3)
    array([0., 2., 4.])
    """
    frames = check_array("frames", frames, ndim=range(1, 6))
    n = frames.shape[0]
    if n < 2:
        raise ConfigError(f"TIM needs at least 2 frames; the clip has {n}.")
    if n_frames < 1:
        raise ConfigError(f"The parameter `n_frames` must be positive; got {n_frames}.")
    x = frames.reshape(n, -1).astype(np.float64)
    mean = x.mean(axis=0)
    k = np.arange(1, n)[:, None]

    def curve(pos: np.ndarray) -> np.ndarray:  # (n-1, len(pos))
        return np.sin(pos[None, :] * k * np.pi + np.pi * (n - k) / (2 * n))

    basis = curve(np.arange(1, n + 1) / n)
    weights = np.linalg.lstsq(basis.T, x - mean, rcond=None)[0]  # (n-1, D)
    out = curve(np.linspace(1 / n, 1, n_frames)).T @ weights + mean
    return out.reshape((n_frames,) + frames.shape[1:])
