"""LBP-TOP: local binary patterns on three orthogonal planes (Zhao & Pietikainen 2007).

Follows the semantics of Zhao's ``LBPTOP.m`` as stated in ``shared/ALGORITHMS.md``:

- P neighbours at angles 2*pi*p/P with bit value 2**p, set when ``neighbour >= centre``;
- XY samples (x + Rx cos, y - Ry sin); XT samples (x + Rx cos, t + Rt sin); YT samples
  (y - Ry sin, t + Rt cos);
- nearest sampling rounds offsets with floor(v + 0.5);
- bilinear sampling computes as ``LBPTOP.m`` does, in MATLAB's mixed precision: the sample
  position (1-based, as MATLAB indexes) is rounded to single, its fraction taken in single, the
  four weighted corner values multiplied and summed left to right in single (each double grey
  value converted first), the sum floored, and compared with the centre value in single;
- centres keep a margin of Rt frames and max(Rx, Ry) pixels from the edges of their block;
- the uniform (u2) mapping gives the uniform codes bins 0.. in ascending order and every other
  code the last bin (59 bins for P = 8); each plane's histogram sums to 1.

Blocks are cut by floor division (the remainder is dropped), ordered time slice, then row, then
column; each block's histogram uses only the centres and neighbours inside that block, and its
bilinear positions are taken in the block's own coordinates, as ``LBPTOP.m`` run on each block
cropped (the way the CASME II baseline runs it): single precision rounds ``c + R cos`` at a larger
coordinate differently in rare cases, so a block's codes would depend on its place.

Single precision is what makes a neighbour on the pixel grid exact there: ``xc + cos(pi/2)`` is
``xc + 6e-17``, which rounds to ``xc`` in single, so its weight is exactly 1. (An earlier merkit
interpolated in double and floored with a tolerance; it gave other codes in a few per thousand
centres, histograms up to 6e-5 apart on random 30x64x64 volumes.)

References
----------
G. Zhao, M. Pietikainen, "Dynamic texture recognition using local binary patterns with an
application to facial expressions", IEEE TPAMI 29(6), 2007.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numba import njit

from merkit.errors import ConfigError, check_array, check_choice, check_positive_ints

_SNAP = 1e-6


@cache
def uniform_mapping(n_points: int) -> np.ndarray:
    """(2**P,) bin of each code under the u2 mapping; P*(P-1)+3 bins, non-uniform codes last.

    Examples
    --------
    >>> m = uniform_mapping(8)
    >>> int(m.max()) + 1, [int(m[c]) for c in (0, 1, 2, 3, 5, 255)]
    (59, [0, 1, 2, 3, 58, 57])
    """
    codes = np.arange(2**n_points)
    rotated = (codes >> 1) | ((codes & 1) << (n_points - 1))
    transitions = np.array([bin(int(c)).count("1") for c in codes ^ rotated])
    uniform = transitions <= 2
    mapping = np.full(2**n_points, int(uniform.sum()), dtype=np.int64)
    mapping[uniform] = np.arange(int(uniform.sum()))
    return mapping


def _snap(value: float) -> float:
    nearest = round(value)
    return float(nearest) if abs(value - nearest) < _SNAP else value


def _plane_offsets(plane: str, theta: float, radius: tuple[int, int, int], *, snap: bool) -> tuple[float, float, float]:
    """(dt, dy, dx) of the neighbour at angle ``theta`` on ``plane``; with ``snap``, offsets within
    1e-6 of an integer become it (nearest sampling; bilinear sampling rounds as LBPTOP.m does)."""
    rx, ry, rt = radius
    c, s = np.cos(theta), np.sin(theta)
    offsets = {"XY": (0.0, -ry * s, rx * c), "XT": (rt * s, 0.0, rx * c), "YT": (rt * c, -ry * s, 0.0)}[plane]
    return tuple(_snap(o) if snap else o for o in offsets)


def _shifted(volume: np.ndarray, margins: tuple[int, int, int], shift: tuple[int, int, int]) -> np.ndarray:
    """View of ``volume`` over the centre region moved by the integer ``shift`` (dt, dy, dx)."""
    index = tuple(slice(m + s, n - m + s) for m, s, n in zip(margins, shift, volume.shape))
    return volume[index]


def _nearest(offsets: tuple[float, float, float]) -> tuple[int, int, int]:
    """Nearest sampling's integer shift (dt, dy, dx): each offset rounded as floor(v + 0.5)."""
    return tuple(int(np.floor(o + 0.5)) for o in offsets)


def _sample(volume, margins, offsets, interpolation, plane, block_shape) -> np.ndarray:
    """Neighbour values for every centre of the centre region."""
    if interpolation == "nearest":
        return _shifted(volume, margins, _nearest(offsets))
    return _bilinear_as_lbptop_m(volume, margins, offsets, plane, block_shape)


# the axes (t, y, x) that give LBPTOP.m's u and v on each plane
_UV_AXES = {"XY": (2, 1), "XT": (2, 0), "YT": (1, 0)}


def _bilinear_as_lbptop_m(volume, margins, offsets, plane, block_shape=None) -> np.ndarray:
    """LBPTOP.m's bilinear neighbour value, in its precision: per axis, the 1-based position
    ``single(c + offset)`` with c the centre's place in its own block (LBPTOP.m runs on each block
    cropped: single rounds a larger coordinate differently), its fraction in single and its floor
    and ceiling; the value ``floor(V_ff (1-u)(1-v) + V_fc (1-u) v + V_cf u (1-v) + V_cc u v)`` in
    single, left to right. ``block_shape`` (t, y, x): the blocks' sides (default: the volume's)."""
    one = np.float32(1)
    floors, ceils, fractions = [], [], []
    for m, n, offset, size in zip(margins, volume.shape, offsets, block_shape or volume.shape):
        centre = np.arange(m, n - m)
        start = centre - centre % size  # the first index of the centre's block
        position = (centre - start + 1 + offset).astype(np.float32)  # MATLAB's 1-based index in the block, in single
        below = np.floor(position)
        floors.append(start + below.astype(np.int64) - 1)
        ceils.append(start + np.ceil(position).astype(np.int64) - 1)
        fractions.append(position - below)
    a, b = _UV_AXES[plane]
    u = fractions[a].reshape([-1 if k == a else 1 for k in range(3)])
    v = fractions[b].reshape([-1 if k == b else 1 for k in range(3)])
    data = volume  # float32 already (see _comparable): MATLAB turns each double grey value into single

    def corner(ceil_a: bool, ceil_b: bool) -> np.ndarray:
        index = [ceils[k] if (k == a and ceil_a) or (k == b and ceil_b) else floors[k] for k in range(3)]
        return data[np.ix_(*index)]

    total = corner(False, False) * (one - u) * (one - v)
    total = total + corner(False, True) * (one - u) * v
    total = total + corner(True, False) * u * (one - v)
    total = total + corner(True, True) * u * v
    return np.floor(total)


def _comparable(volume: np.ndarray, interpolation: str) -> np.ndarray:
    """The volume as the codes compare it: float32 for bilinear sampling (LBPTOP.m's single), and
    for nearest sampling uint8 where it holds grey levels (the same comparisons, an eighth of the
    memory traffic), else as it is."""
    if interpolation == "bilinear":
        return volume if volume.dtype == np.float32 else volume.astype(np.float32)
    if volume.dtype == np.uint8:
        return volume
    with np.errstate(invalid="ignore"):  # NaN has no grey level: such a volume stays as it is, for lbp_top to refuse
        grey = volume.astype(np.uint8)
    return grey if np.array_equal(volume, grey) else volume


def plane_codes(
    volume,
    plane: str,
    *,
    radius: tuple[int, int, int],
    n_points: int = 8,
    interpolation: str = "nearest",
    margins: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """LBP codes on ``plane`` ('XY', 'XT' or 'YT') of every centre at least ``margins`` (t, y, x)
    from the volume's edges (default: Rt frames and max(Rx, Ry) pixels): uint8 for P <= 8, uint16
    above; bit p set where neighbour p >= the centre.

    Examples
    --------
    >>> t, y, x = np.mgrid[0:3, 0:3, 0:3]
    >>> int(plane_codes(100 * t + 10 * y + x, "XY", radius=(1, 1, 1))[0, 0, 0])  # bits 0, 5, 6, 7
    225
    """
    rx, ry, rt = radius
    margins = margins if margins is not None else (rt, max(rx, ry), max(rx, ry))
    return _codes(_comparable(np.asarray(volume), interpolation), plane, radius, n_points, interpolation, margins)


def _codes(volume, plane, radius, n_points, interpolation, margins, block_shape=None) -> np.ndarray:
    """:func:`plane_codes` of a volume already :func:`_comparable`; bilinear positions are taken
    in blocks of ``block_shape`` (t, y, x) (default: the whole volume is one block)."""
    centre = _shifted(volume, margins, (0, 0, 0))
    code_type = np.uint8 if n_points <= 8 else np.uint16
    codes = np.zeros(centre.shape, dtype=code_type)
    for p in range(n_points):
        offsets = _plane_offsets(plane, 2 * np.pi * p / n_points, radius, snap=interpolation == "nearest")
        bit = np.greater_equal(_sample(volume, margins, offsets, interpolation, plane, block_shape), centre).view(
            np.uint8
        )
        codes |= (bit.astype(code_type) << p) if p else bit
    return codes


@njit(nogil=True)
def _count_nearest_codes(volume, shifts, margins, slot, counts):
    """Nearest sampling's codes counted per block in one pass: volume (T, H, W); shifts (3, P, 3)
    each plane's neighbour offsets (dt, dy, dx); slot (Tc, Hc, Wc) int32 of the centre region,
    (block + 1) * 2**P (0: in no block); counts (3, (blocks + 1) * 2**P) int64, added to. A row
    of centres at a time: each neighbour's comparison is one loop along the row (vectorised), the
    codes stay in the cache, and only the count of each (block, code) is written."""
    mt, my, mx = margins
    tc, hc, wc = slot.shape
    codes = np.empty(wc, np.int32)
    for t in range(tc):
        for y in range(hc):
            centre = volume[t + mt, y + my, mx : mx + wc]
            row_slot = slot[t, y]
            for plane in range(3):
                codes[:] = 0
                for p in range(shifts.shape[1]):
                    dt, dy, dx = shifts[plane, p, 0], shifts[plane, p, 1], shifts[plane, p, 2]
                    neighbour = volume[t + mt + dt, y + my + dy, mx + dx : mx + dx + wc]
                    for x in range(wc):
                        codes[x] |= np.int32(neighbour[x] >= centre[x]) << p
                for x in range(wc):
                    counts[plane, row_slot[x] + codes[x]] += 1


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
        _block_index(t, t_slices, rt, rt)[:, None, None] * rows + _block_index(h, rows, r, r)[None, :, None]
    ) * cols + _block_index(w, cols, r, r)[None, None, :]
    valid = (
        (_block_index(t, t_slices, rt, rt) >= 0)[:, None, None]
        & (_block_index(h, rows, r, r) >= 0)[None, :, None]
        & (_block_index(w, cols, r, r) >= 0)[None, None, :]
    )
    mapping = uniform_mapping(n_points)
    n_bins = int(mapping.max()) + 1
    n_blocks = rows * cols * t_slices
    volume = _comparable(volume, interpolation)  # once, not per plane; grey levels become uint8
    if volume.dtype.kind == "f" and not np.isfinite(volume).all():  # a NaN compares false: a silent code 0
        bad = int((~np.isfinite(volume)).sum())
        raise ConfigError(
            f"The parameter `volume` holds {bad} NaN or infinite values of {volume.size}; LBP-TOP compares "
            "grey levels: give the clip's frames as read (0-255), with no missing values."
        )
    n_codes = 2**n_points
    slot = (np.where(valid, block_id, -1).astype(np.int32) + 1) * n_codes  # block + 1 (0: no block), times the codes
    per_code = np.zeros((3, (n_blocks + 1) * n_codes), np.int64)
    if interpolation == "nearest":
        shifts = np.array(
            [
                [
                    _nearest(_plane_offsets(plane, 2 * np.pi * p / n_points, (rx, ry, rt), snap=True))
                    for p in range(n_points)
                ]
                for plane in ("XY", "XT", "YT")
            ],
            dtype=np.int64,
        )
        _count_nearest_codes(np.ascontiguousarray(volume), shifts, margins, slot, per_code)
    else:
        for k, plane in enumerate(("XY", "XT", "YT")):
            codes = _codes(volume, plane, (rx, ry, rt), n_points, interpolation, margins, block_shape)
            per_code[k] = np.bincount((slot + codes).ravel(), minlength=(n_blocks + 1) * n_codes)
    to_bins = np.eye(n_bins, dtype=np.int64)[mapping]  # (2**P, bins): code -> its bin
    counts = per_code.reshape(3, n_blocks + 1, n_codes)[:, 1:] @ to_bins  # (planes, blocks, bins)
    histograms = counts / counts.sum(axis=2, keepdims=True)
    return histograms.transpose(1, 0, 2).ravel()
