"""Dense optical flow, optical strain, and the onset-to-apex flow representation.

Flow is (H, W, 2) float32 of (u, v) in pixels: frame b shows the point that frame a shows at
(x, y) at (x + u, y + v). Estimators are registered by name (``tvl1``, ``farneback``, ``dis``, ``rlof``);
``register_flow`` plugs in another one. STANet used FlowNet 2.0, whose weights merkit cannot ship
(no download at run time): register a learned estimator under a name and pass that name as
``method`` to use it everywhere merkit computes flow.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from merkit.errors import ConfigError, check_array, check_choice

FlowEstimator = Callable[..., np.ndarray]
_ESTIMATORS: dict[str, FlowEstimator] = {}


def register_flow(name: str):
    """Decorator: ``estimator(a, b, **params) -> (H, W, 2)`` on grey float32 frames in [0, 1]."""

    def decorate(estimator: FlowEstimator) -> FlowEstimator:
        _ESTIMATORS[name] = estimator
        return estimator

    return decorate


def flow_methods() -> list[str]:
    return sorted(_ESTIMATORS)


def _to_8bit(frame: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)


@register_flow("tvl1")
def _tvl1(a, b, **params):
    """TV-L1 (Zach et al. 2007; OpenCV contrib's dual TV-L1), OpenCV's defaults unless ``params``."""
    return cv2.optflow.DualTVL1OpticalFlow_create(**params).calc(a, b, None)


@register_flow("farneback")
def _farneback(a, b, *, pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2):
    """Farneback (2003) polynomial expansion, on 8-bit frames (on floats in [0, 1] OpenCV's finds no motion)."""
    return cv2.calcOpticalFlowFarneback(
        _to_8bit(a), _to_8bit(b), None, pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, 0
    )


@register_flow("dis")
def _dis(a, b, *, preset: int = cv2.DISOpticalFlow_PRESET_MEDIUM):
    """DIS (Kroeger et al. 2016); works on 8-bit frames."""
    return cv2.DISOpticalFlow_create(preset).calc(_to_8bit(a), _to_8bit(b), None)


@register_flow("rlof")
def _rlof(a, b, **params):
    """Dense robust local optical flow (Senst et al. 2012; OpenCV contrib), as MDMO's authors used;
    works on 8-bit colour frames, so the grey frames are repeated in three channels."""
    colour = [cv2.cvtColor(_to_8bit(f), cv2.COLOR_GRAY2BGR) for f in (a, b)]
    return cv2.optflow.calcOpticalFlowDenseRLOF(*colour, None, **params)


def _grey(frame: np.ndarray, name: str) -> np.ndarray:
    frame = check_array(name, frame, ndim=(2, 3))
    if frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.dtype == np.uint8 else frame.mean(axis=2)
    return (frame.astype(np.float32) / 255.0) if frame.dtype == np.uint8 else frame.astype(np.float32)


def optical_flow(frame_a, frame_b, *, method: str = "tvl1", **params) -> np.ndarray:
    """Dense flow from ``frame_a`` to ``frame_b``.

    Parameters
    ----------
    frame_a, frame_b : (H, W) or (H, W, 3) array
        uint8, or float in [0, 1]; colour frames are made grey.
    method : str
        A registered estimator (``flow_methods()``); ``params`` go to it.

    Returns
    -------
    (H, W, 2) float32
        (u, v) in pixels.
    """
    estimator = _ESTIMATORS[check_choice("flow method", method, _ESTIMATORS)]
    a, b = _grey(frame_a, "frame_a"), _grey(frame_b, "frame_b")
    if a.shape != b.shape:
        raise ConfigError(f"Flow needs frames of one size; got {a.shape} and {b.shape}.")
    return np.asarray(estimator(a, b, **params), dtype=np.float32)


def flow_sequence(frames, *, reference: str = "adjacent", onset: int = 0, method: str = "tvl1", **params) -> np.ndarray:
    """Flow over a clip.

    ``adjacent``: frame t to frame t + 1, (T - 1, H, W, 2). ``onset``: frame ``onset`` to every
    frame, (T, H, W, 2) (zero at the onset itself).
    """
    check_choice("reference", reference, ("adjacent", "onset"))
    frames = check_array("frames", frames, ndim=(3, 4))
    if reference == "adjacent":
        return np.stack(
            [optical_flow(frames[t], frames[t + 1], method=method, **params) for t in range(len(frames) - 1)]
        )
    return np.stack([optical_flow(frames[onset], f, method=method, **params) for f in frames])


def optical_strain(flow) -> np.ndarray:
    """Optical strain magnitude of a flow field (Liong et al. 2014), (H, W) float32.

    With eps_xx = du/dx, eps_yy = dv/dy and eps_xy = (du/dy + dv/dx) / 2 (central differences),
    the magnitude is sqrt(eps_xx^2 + eps_yy^2 + 2 eps_xy^2).

    Examples
    --------
    >>> y, x = np.mgrid[0:5, 0:5].astype(float)
    >>> float(optical_strain(np.stack([0.3 * x, 0.4 * y], axis=2))[2, 2])
    0.5
    """
    flow = check_array("flow", flow, ndim=(3,)).astype(np.float64)
    du_dy, du_dx = np.gradient(flow[..., 0])
    dv_dy, dv_dx = np.gradient(flow[..., 1])
    shear = 0.5 * (du_dy + dv_dx)
    return np.sqrt(du_dx**2 + dv_dy**2 + 2 * shear**2).astype(np.float32)


def apex_flow(
    onset_frame,
    apex_frame,
    *,
    method: str = "tvl1",
    size: tuple[int, int] | None = (28, 28),
    normalise: str = "none",
    **params,
) -> np.ndarray:
    """The onset-to-apex representation of the MEGC-era networks: u, v and optical strain.

    Parameters
    ----------
    size : (height, width) or None
        Resize the three maps to this (area interpolation); None keeps the frames' size.
    normalise : {'none', 'minmax', 'scale'}
        ``none``: pixels of the input frames; ``minmax``: each map to [0, 1] on its own (as the
        flow images of the MEGC repositories); ``scale``: u and v in pixels of the output size.

    Returns
    -------
    (height, width, 3) float32 channels u, v, strain.
    """
    check_choice("normalise", normalise, ("none", "minmax", "scale"))
    flow = optical_flow(onset_frame, apex_frame, method=method, **params)
    maps = np.dstack([flow, optical_strain(flow)])
    if size is not None:
        h, w = maps.shape[:2]
        maps = cv2.resize(maps, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        if normalise == "scale":
            maps[..., 0] *= size[1] / w
            maps[..., 1] *= size[0] / h
    return minmax(maps) if normalise == "minmax" else maps.astype(np.float32)


def minmax(maps: np.ndarray) -> np.ndarray:
    """Each channel of (H, W, C) maps to [0, 1] (a constant channel to 0)."""
    low = maps.min(axis=(0, 1), keepdims=True)
    span = maps.max(axis=(0, 1), keepdims=True) - low
    return np.divide(maps - low, span, out=np.zeros_like(maps, dtype=np.float32), where=span > 0).astype(np.float32)
