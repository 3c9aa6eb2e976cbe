"""HTNet's four facial areas of an onset-to-apex flow image, placed by five face landmarks.

HTNet (Wang et al., Neurocomputing 2024) finds five landmarks (the eye centres, the nose tip,
the mouth corners: MTCNN's points) on the apex face resized to the flow's 28x28, keeps each
between 7 and 21 (so that a 14x14 square around it stays inside), and crops the flow image
around the eyes and the mouth corners; where no face is found it uses fixed positions, those of
an aligned 28x28 face (:data:`STANDARD_POINTS`). The nose is located but not used.
"""

from __future__ import annotations

import numpy as np

from merkit.errors import ConfigError, check_array

# (x, y) on an aligned 28x28 face: left eye, right eye, nose tip, left and right mouth corner
# (the positions HTNet's code falls back on, from MTCNN)
STANDARD_POINTS = np.array(
    [
        [9.528073, 11.062551],
        [21.396168, 10.919773],
        [15.380184, 17.380562],
        [10.255435, 22.121233],
        [20.583706, 22.25584],
    ]
)
STANDARD_SIZE = 28


def standard_points(size: tuple[int, int]) -> np.ndarray:
    """(5, 2) :data:`STANDARD_POINTS` scaled to a (height, width) image.

    Examples
    --------
    >>> standard_points((56, 56))[0].round(2).tolist()
    [19.06, 22.13]
    """
    return STANDARD_POINTS * np.array([size[1], size[0]]) / STANDARD_SIZE


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(68, 2) dlib landmarks (x, y) -> (5, 2) MTCNN's points: the centres of the eye on the
    image's left and on its right, the nose tip (30), the mouth corners (48, 54)."""
    landmarks = check_array("landmarks", landmarks, ndim=(2,))
    return np.stack(
        [landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0), landmarks[30], landmarks[48], landmarks[54]]
    )


def face_regions(maps: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The four areas of ``maps`` around the eyes and the mouth corners, as one image.

    Parameters
    ----------
    maps : (H, W, C) flow maps, H and W divisible by 4
    points : (5, 2) (x, y) in ``maps``' pixels, in :func:`five_points`' order

    Returns
    -------
    (H, W, C) of the same dtype: the (H/2, W/2) squares centred on the left eye, the right eye
    (top row), the left and the right mouth corner (bottom row). Each centre is truncated to
    whole pixels and kept between a quarter and three quarters of the image, as HTNet's code
    does at 28x28 (7 to 21). HTNet's code indexes rows with x; merkit with y.

    Examples
    --------
    >>> maps = np.arange(28 * 28, dtype=np.float32).reshape(28, 28, 1)
    >>> out = face_regions(maps, standard_points((28, 28)))
    >>> out[0, 0, 0].item() == maps[11 - 7, 9 - 7, 0].item(), out[14, 14, 0].item() == maps[21 - 7, 20 - 7, 0].item()
    (True, True)
    """
    maps = check_array("maps", maps, ndim=(3,))
    h, w = maps.shape[:2]
    if h % 4 or w % 4:
        raise ConfigError(f"The flow maps' sides must be divisible by 4 for four half-size areas; got {h}x{w}.")
    hh, hw = h // 4, w // 4
    x = np.clip(points[:, 0], hw, w - hw).astype(int)
    y = np.clip(points[:, 1], hh, h - hh).astype(int)
    crops = [maps[y[i] - hh : y[i] + hh, x[i] - hw : x[i] + hw] for i in (0, 1, 3, 4)]
    return np.concatenate([np.concatenate(crops[:2], axis=1), np.concatenate(crops[2:], axis=1)], axis=0)
