"""MDMO: main directional mean optical flow (Liu et al. 2016).

For each pair of consecutive aligned frames, the flow in each of 36 regions of interest (ROIs)
placed by facial landmarks is histogrammed by direction into 8 bins; the bin holding the most
vectors is the ROI's main direction, and the mean of the vectors in that bin, in polar form
(rho, theta), is the ROI's value for that frame. The clip's feature is the mean over its frames,
with each rho divided by the largest rho over the ROIs: (36, 2) -> 72 numbers.

What the paper leaves open, and merkit's choice:

- The ROIs: the paper draws 36 AU-related regions on its own 66-point landmark layout (its
  Fig. 4), with no coordinates. merkit places 36 regions on dlib's 68 points (``ROIS``): per side,
  four brow segments, the outer and inner upper eyelid, the lower eyelid, the outer eye corner,
  the side of the nose bridge, the nose wing, the upper cheek, the nasolabial fold, the upper lip,
  the mouth corner, the lower lip, the lower cheek and the chin; in the middle (listed first),
  the glabella and the chin's centre. Offsets from a landmark are in units of the distance between the eye centres.
  A pixel covered by two regions belongs to the first one listed, so regions never share a vector.
- The average over frames: the paper averages the per-frame (rho, theta) pairs (``average='polar'``,
  the default, angles in [0, 2 pi)). Near the 0/2 pi seam such a mean of angles can point the wrong
  way; ``average='vector'`` averages the mean vectors as (u, v) and converts once.
- Flow: the paper used robust local optical flow (RLOF; Senst et al.): merkit's default is OpenCV
  contrib's dense RLOF, between consecutive frames aligned to the onset's eyes.

References
----------
Y.-J. Liu, J.-K. Zhang, W.-J. Yan, S.-J. Wang, G. Zhao, X. Fu, "A Main Directional Mean Optical
Flow Feature for Spontaneous Micro-Expression Recognition", IEEE Trans. Affective Computing 2016.
"""

from __future__ import annotations

import cv2
import numpy as np

from merkit.errors import check_array, check_choice

# dlib's 68 points mirrored left <-> right (jaw, brows, nose, eyes, lips)
MIRROR = np.array(
    [16 - i for i in range(17)]
    + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]
    + [27, 28, 29, 30]
    + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65]
)

# One side's regions on the image's left (the subject's right), as polygons of landmarks or
# (landmark, dx, dy) offsets in inter-ocular units; mirrored for the other side.
_SIDE = [
    ("brow 1", [17, 18, (18, 0, -0.3), (17, 0, -0.3)]),
    ("brow 2", [18, 19, (19, 0, -0.3), (18, 0, -0.3)]),
    ("brow 3", [19, 20, (20, 0, -0.3), (19, 0, -0.3)]),
    ("brow 4", [20, 21, (21, 0, -0.3), (20, 0, -0.3)]),
    ("upper eyelid, outer", [17, 18, 19, 38, 37, 36]),
    ("upper eyelid, inner", [19, 20, 21, 39, 38]),
    ("lower eyelid", [36, 41, 40, 39, (39, 0, 0.2), (36, 0, 0.2)]),
    ("eye corner", [(36, -0.3, -0.12), (36, -0.02, -0.12), (36, -0.02, 0.2), (36, -0.3, 0.2)]),
    ("nose bridge side", [39, 27, 28, 29, (39, 0, 0.2)]),
    ("nose wing", [29, 30, 33, 32, 31]),
    ("upper cheek", [(36, 0, 0.2), (39, 0, 0.2), 31, 3, 1]),
    ("nasolabial fold", [31, 49, 48, 3]),
    ("upper lip", [31, 32, 33, 51, 50, 49]),
    ("mouth corner", [(48, -0.2, -0.15), (48, 0.05, -0.15), (48, 0.05, 0.15), (48, -0.2, 0.15)]),
    ("lower lip", [59, 58, 57, (57, 0, 0.15), (59, 0, 0.15)]),
    ("lower cheek", [3, 48, 59, 6, 5, 4]),
    ("chin", [58, 57, 8, 7]),
]
_MIDDLE = [
    ("glabella", [(21, 0, -0.3), (22, 0, -0.3), 22, 27, 21]),
    ("chin centre", [(57, -0.1, 0.12), (57, 0.1, 0.12), (8, 0.1, 0), (8, -0.1, 0)]),
]


def _mirrored(polygon):
    return [int(MIRROR[p]) if isinstance(p, int) else (int(MIRROR[p[0]]), -p[1], p[2]) for p in polygon]


ROIS: list[tuple[str, list]] = (
    _MIDDLE
    + [(f"{name}, image left", poly) for name, poly in _SIDE]
    + [(f"{name}, image right", _mirrored(poly)) for name, poly in _SIDE]
)


def roi_labels(landmarks, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int: each pixel's ROI index in ``ROIS`` (the first region listed that covers it), -1 outside.

    ``landmarks`` is (68, 2) (x, y) in dlib's order, in the frame's pixels.
    """
    points = check_array("landmarks", landmarks, ndim=(2,)).astype(np.float64)
    unit = np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0))
    labels = np.full(shape, -1, dtype=np.int32)
    for index in range(len(ROIS) - 1, -1, -1):  # paint the last first, so the first listed wins
        polygon = [points[p] if isinstance(p, int) else points[p[0]] + unit * np.array(p[1:]) for p in ROIS[index][1]]
        cv2.fillPoly(
            labels, [np.rint(np.array(polygon) * 16).astype(np.int32)], int(index), lineType=cv2.LINE_8, shift=4
        )
    return labels


def main_directions(flow, labels: np.ndarray, *, bins: int = 8) -> np.ndarray:
    """(R, 2) each ROI's main-direction mean vector (u, v) for one (H, W, 2) flow (0 where empty).

    Directions are binned in ``bins`` equal sectors of [0, 2 pi) starting at angle 0 (+x).
    """
    u, v = flow[..., 0].ravel(), flow[..., 1].ravel()
    inside = labels.ravel() >= 0
    sector = np.minimum((np.mod(np.arctan2(v, u), 2 * np.pi) / (2 * np.pi / bins)).astype(np.int64), bins - 1)
    cells = labels.ravel()[inside] * bins + sector[inside]
    n_rois = len(ROIS)
    counts = np.bincount(cells, minlength=n_rois * bins).reshape(n_rois, bins)
    sums = np.stack([np.bincount(cells, weights=w[inside], minlength=n_rois * bins) for w in (u, v)], -1).reshape(
        n_rois, bins, 2
    )
    main = counts.argmax(axis=1)
    chosen = counts[np.arange(n_rois), main]
    return np.where(chosen[:, None] > 0, sums[np.arange(n_rois), main] / np.maximum(chosen, 1)[:, None], 0.0)


def mdmo(flows, labels: np.ndarray, *, bins: int = 8, average: str = "polar") -> np.ndarray:
    """(2 R,) the MDMO feature of a clip's flows (T - 1, H, W, 2): per ROI (rho / max rho, theta).

    Examples
    --------
    >>> labels = np.zeros((4, 4), np.int32); labels[:, 2:] = 1
    >>> flows = np.zeros((1, 4, 4, 2), np.float32); flows[0, :, :2] = (0, 2); flows[0, :, 2:] = (1, 0)
    >>> feature = mdmo(flows, labels).reshape(-1, 2)
    >>> feature[:2].astype(float).round(4).tolist()  # ROI 0 moves down (+y) by 2, ROI 1 right by 1
    [[1.0, 1.5708], [0.5, 0.0]]
    """
    check_choice("average", average, ("polar", "vector"))
    flows = check_array("flows", flows, ndim=(4,))
    vectors = np.stack([main_directions(f, labels, bins=bins) for f in flows])  # (T - 1, R, 2)
    if average == "vector":
        mean = vectors.mean(axis=0)
        rho, theta = np.hypot(mean[:, 0], mean[:, 1]), np.mod(np.arctan2(mean[:, 1], mean[:, 0]), 2 * np.pi)
    else:
        rho = np.hypot(vectors[..., 0], vectors[..., 1]).mean(axis=0)
        theta = np.mod(np.arctan2(vectors[..., 1], vectors[..., 0]), 2 * np.pi).mean(axis=0)
    top = rho.max()
    return np.stack([rho / top if top > 0 else rho, theta], axis=1).ravel().astype(np.float32)
