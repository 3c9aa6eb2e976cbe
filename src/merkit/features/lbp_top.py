"""LBP-TOP: local binary patterns on three orthogonal planes (Zhao & Pietikainen 2007).

Follows the semantics of Zhao's ``LBPTOP.m`` as stated in ``shared/ALGORITHMS.md``:

- P neighbours at angles 2*pi*p/P with bit value 2**p, set when ``neighbour >= centre``;
- XY samples (x + Rx cos, y - Ry sin); XT samples (x + Rx cos, t + Rt sin); YT samples
  (y - Ry sin, t + Rt cos);
- nearest sampling rounds offsets with floor(v + 0.5); bilinear sampling interpolates and floors
  the interpolated value (so volumes are expected in grey levels, 0-255);
- centres keep a margin of Rt frames and max(Rx, Ry) pixels from the edges of their block;
- the uniform (u2) mapping gives the uniform codes bins 0.. in ascending order and every other
  code the last bin (59 bins for P = 8); each plane's histogram sums to 1.

Blocks are cut by floor division (the remainder is dropped), ordered time slice, then row, then
column; each block's histogram uses only the centres and neighbours inside that block.

One numerical detail is ours: an offset within 1e-6 of an integer (``cos(pi/2)`` is 6e-17, not
0) is snapped to it, so a neighbour on the pixel grid is read exactly rather than interpolated
with a weight of 1 - 1e-16 and floored one grey level low; likewise the interpolated value is
floored with a tolerance of 1e-9, because weights that sum to 1 - 1e-16 make a flat patch of 7s
interpolate to 6.999...; at grey levels 0-255 rounding errors are about 1e-13, so only values that
are integers in exact arithmetic move.

References
----------
G. Zhao, M. Pietikainen, "Dynamic texture recognition using local binary patterns with an
application to facial expressions", IEEE TPAMI 29(6), 2007.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from merkit.errors import ConfigError, check_array, check_choice, check_positive_ints

_SNAP = 1e-6
_FLOOR_TOLERANCE = 1e-9


@lru_cache(maxsize=None)
def uniform_mapping(n_points: int) -> np.ndarray:
    """(2**P,) bin of each code under the u2 mapping; P*(P-1)+3 bins, non-uniform codes last.

    Examples
    --------
    >>> m = uniform_mapping(8)
    >>> int(m.max()) + 1, [int(m[c]) for c in (0, 1, 2, 3, 5, 255)]
    (59, [0, 1, 2, 3, 58, 57])
    """
    codes = np.arange(2**n_points)
    rotated = ((codes >> 1) | ((codes & 1) << (n_points - 1)))
    transitions = np.array([bin(int(c)).count("1") for c in codes ^ rotated])
    uniform = transitions <= 2
    mapping = np.full(2**n_points, int(uniform.sum()), dtype=np.int64)
    mapping[uniform] = np.arange(int(uniform.sum()))
    return mapping


def _snap(value: float) -> float:
    nearest = round(value)
    return float(nearest) if abs(value - nearest) < _SNAP else value


def _plane_offsets(plane: str, theta: float, radius: tuple[int, int, int]) -> tuple[float, float, float]:
    """(dt, dy, dx) of the neighbour at angle ``theta`` on ``plane``."""
    rx, ry, rt = radius
    c, s = np.cos(theta), np.sin(theta)
    offsets = {"XY": (0.0, -ry * s, rx * c), "XT": (rt * s, 0.0, rx * c), "YT": (rt * c, -ry * s, 0.0)}[plane]
    return tuple(_snap(o) for o in offsets)


def _shifted(volume: np.ndarray, margins: tuple[int, int, int], shift: tuple[int, int, int]) -> np.ndarray:
    """View of ``volume`` over the centre region moved by the integer ``shift`` (dt, dy, dx)."""
    index = tuple(slice(m + s, n - m + s) for m, s, n in zip(margins, shift, volume.shape))
    return volume[index]


def _sample(volume, margins, offsets, interpolation) -> np.ndarray:
    """Neighbour values for every centre of the centre region."""
    if interpolation == "nearest":
        shift = tuple(int(np.floor(o + 0.5)) for o in offsets)
        return _shifted(volume, margins, shift)
    base = [int(np.floor(o)) for o in offsets]
    frac = [o - b for o, b in zip(offsets, base)]
    corners = [((), 1.0)]
    for axis in range(3):
        if frac[axis] == 0.0:
            corners = [(c + (0,), w) for c, w in corners]
        else:
            corners = [(c + (step,), w * (frac[axis] if step else 1 - frac[axis])) for c, w in corners for step in (0, 1)]
    value = sum(w * _shifted(volume, margins, tuple(b + c for b, c in zip(base, corner))) for corner, w in corners)
    return np.floor(value + _FLOOR_TOLERANCE)


def _block_index(length: int, n_blocks: int, margin: int, region_margin: int) -> np.ndarray:
    """Block number of each centre position along one axis (-1 where none)."""
    size = length // n_blocks
    position = np.arange(region_margin, length - region_margin)
    block, inside = position // size, position % size
    valid = (block < n_blocks) & (inside >= margin) & (inside < size - margin)
    return np.where(valid, block, -1)


def lbp_top(
    volume,
    *,
    radius: tuple[int, int, int] = (1, 1, 4),
    n_points: int = 8,
    blocks: tuple[int, int, int] = (5, 5, 1),
    interpolation: str = "nearest",
) -> np.ndarray:
    """Block-wise LBP-TOP histograms of a grey clip.

    Parameters
    ----------
    volume : (T, H, W) array
        Grey levels (0-255), frames along the first axis.
    radius : (Rx, Ry, Rt)
        Neighbourhood radii in pixels and frames. Default (1, 1, 4): the CASME II baseline's best.
    n_points : int
        Neighbours P on each plane (the u2 mapping has P*(P-1)+3 bins).
    blocks : (rows, cols, t_slices)
        Block grid; blocks are cut by floor division and the remainder dropped.
    interpolation : {'nearest', 'bilinear'}

    Returns
    -------
    (t_slices * rows * cols * 3 * n_bins,) float64
        Per block (time slice, then row, then column) the XY, XT and YT histograms, each summing to 1.

    Raises
    ------
    ConfigError
        A block too small to hold one centre with its margins, or a bad parameter.
    """
    volume = check_array("volume", volume, ndim=(3,)).astype(np.float64, copy=False)
    rx, ry, rt = check_positive_ints("radius", radius, 3)
    rows, cols, t_slices = check_positive_ints("blocks", blocks, 3)
    check_choice("interpolation", interpolation, ("nearest", "bilinear"))
    if not 3 <= n_points <= 16:
        raise ConfigError(f"The parameter `n_points` must be between 3 and 16; got {n_points}.")
    t, h, w = volume.shape
    r = max(rx, ry)
    block_shape = (t // t_slices, h // rows, w // cols)
    if min(block_shape[0] - 2 * rt, block_shape[1] - 2 * r, block_shape[2] - 2 * r) < 1:
        raise ConfigError(
            f"LBP-TOP blocks of {block_shape[0]} frames x {block_shape[1]}x{block_shape[2]} px (volume "
            f"{t}x{h}x{w}, blocks {blocks}) leave no centre after margins of {rt} frames and {r} px; "
            "use fewer blocks, smaller radii or a larger volume."
        )
    margins = (rt, r, r)
    block_id = (
        _block_index(t, t_slices, rt, rt)[:, None, None] * rows
        + _block_index(h, rows, r, r)[None, :, None]
    ) * cols + _block_index(w, cols, r, r)[None, None, :]
    valid = (
        (_block_index(t, t_slices, rt, rt) >= 0)[:, None, None]
        & (_block_index(h, rows, r, r) >= 0)[None, :, None]
        & (_block_index(w, cols, r, r) >= 0)[None, None, :]
    )
    mapping = uniform_mapping(n_points)
    n_bins = int(mapping.max()) + 1
    n_blocks = rows * cols * t_slices
    centre = _shifted(volume, margins, (0, 0, 0))
    ids = block_id[valid] * n_bins
    histograms = []
    for plane in ("XY", "XT", "YT"):
        codes = np.zeros(centre.shape, dtype=np.int64)
        for p in range(n_points):
            offsets = _plane_offsets(plane, 2 * np.pi * p / n_points, (rx, ry, rt))
            codes |= (_sample(volume, margins, offsets, interpolation) >= centre).astype(np.int64) << p
        counts = np.bincount(ids + mapping[codes[valid]], minlength=n_blocks * n_bins).reshape(n_blocks, n_bins)
        histograms.append(counts / counts.sum(axis=1, keepdims=True))
    return np.stack(histograms, axis=1).ravel()
