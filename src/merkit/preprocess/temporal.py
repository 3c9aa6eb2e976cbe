"""Temporal normalisation of clips.

``tim`` is the temporal interpolation model of Zhou et al. (2011), used by the LBP-TOP
micro-expression baselines (Pfister et al. 2011) to bring clips to a common length.
"""

from __future__ import annotations

import numpy as np

from merkit.errors import ConfigError, check_array


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
