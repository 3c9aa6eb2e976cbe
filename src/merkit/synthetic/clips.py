"""Synthetic micro-expression clips: a face, an expression, timing and recording nuisance."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import cv2
import numpy as np

from merkit.synthetic.expressions import Expression, timing_profile
from merkit.synthetic.faces import FaceGeometry, render_face


@dataclass(frozen=True)
class Nuisance:
    """What real recordings add to the expression. Set a field to 0 to switch it off.

    The defaults are those of a lab recording under steady LED light (as CASME II was shot)
    before face alignment: drift and flicker change every pixel between frames and, at larger
    values, bury the local motion that temporal descriptors such as LBP-TOP's XT/YT planes see.

    drift_px : float        head drift, largest translation over the clip in pixels
    noise_std : float       sensor noise, standard deviation in grey levels (of 255)
    flicker : float         illumination flicker, relative amplitude
    exposure : float        per-clip brightness varies by up to this fraction
    """

    drift_px: float = 0.2
    noise_std: float = 1.0
    flicker: float = 0.002
    exposure: float = 0.1


@dataclass
class ClipTruth:
    """Ground truth of one synthetic clip.

    The displacement at frame t is ``profile[t] * apex_field + drift[t]`` (pixels, (dx, dy)):
    frame t shows the neutral face with each point moved by that displacement.
    """

    subject: str
    clip: str
    emotion: str
    expression: Expression
    onset: int
    apex: int
    offset: int
    n_frames: int
    fps: float
    apex_field: np.ndarray = field(repr=False)
    profile: np.ndarray = field(repr=False)
    drift: np.ndarray = field(repr=False)

    def trimmed(self, start: int, stop: int) -> ClipTruth:
        """The truth of frames ``start..stop-1`` only, positions counted from ``start``."""
        return dataclasses.replace(
            self,
            onset=self.onset - start,
            apex=None if self.apex is None else self.apex - start,
            offset=self.offset - start,
            n_frames=stop - start,
            profile=self.profile[start:stop],
            drift=self.drift[start:stop],
        )

    def displacement(self, t: int) -> np.ndarray:
        """(H, W, 2) float32 displacement of frame t relative to the neutral face."""
        return self.profile[t] * self.apex_field + self.drift[t]


def synthesize_clip(
    geometry: FaceGeometry,
    expression: Expression,
    *,
    n_frames: int,
    onset: int,
    apex: int,
    offset: int,
    nuisance: Nuisance,
    rng: np.random.Generator,
    face: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frames of one clip and its truth.

    Returns
    -------
    frames : (T, H, W, 3) uint8 RGB
    apex_field : (H, W, 2) float32
    profile : (T,) float32
    drift : (T, 2) float32
    """
    # float32: OpenCV 5's cubic remap returns garbage for float64 images (measured: up to 183
    # grey levels off with a zero displacement), while float32 is exact.
    face = np.ascontiguousarray(render_face(geometry) if face is None else face, dtype=np.float32)
    h, w = geometry.size
    apex_field = expression.apex_field(geometry)
    profile = timing_profile(n_frames, onset, apex, offset)
    steps = rng.standard_normal((n_frames, 2)).cumsum(axis=0)
    steps -= steps[0]
    scale = np.abs(steps).max()
    drift = (steps / scale * nuisance.drift_px * rng.uniform(0.3, 1.0) if scale > 0 else steps).astype(np.float32)
    gain = 1.0 + nuisance.exposure * rng.uniform(-1, 1)
    f_hz, phase = rng.uniform(3, 20), rng.uniform(0, 2 * np.pi)
    flicker = 1.0 + nuisance.flicker * np.sin(2 * np.pi * f_hz * np.arange(n_frames) / 200.0 + phase)

    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    for t in range(n_frames):
        d = profile[t] * apex_field + drift[t]
        warped = cv2.remap(face, x - d[..., 0], y - d[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
        noisy = warped * (gain * flicker[t] * 255.0) + nuisance.noise_std * rng.standard_normal(
            warped.shape, dtype=np.float32
        )
        frames[t] = np.clip(np.rint(noisy), 0, 255)
    return frames, apex_field, profile, drift
