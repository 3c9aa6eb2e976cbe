"""Procedural faces: one per subject, differing in geometry, skin tone and texture.

Each face is a smooth image (so that sub-pixel motion changes pixel values, as on a real
face) with skin texture at two scales, eyes, brows, nose and lips, and the landmark positions
that the action units of :mod:`merkit.synthetic.expressions` are anchored to.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FaceGeometry:
    """Where a subject's facial features are, in pixels of an (H, W) image, and its colours."""

    size: tuple[int, int]
    centre: tuple[float, float]
    half_width: float
    half_height: float
    eye_dx: float
    eye_y: float
    eye_size: float
    brow_gap: float
    nose_y: float
    mouth_y: float
    mouth_half_width: float
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    background: tuple[float, float, float]
    texture_seed: int

    @classmethod
    def random(cls, size: tuple[int, int], rng: np.random.Generator) -> FaceGeometry:
        """A plausible face filling most of an (H, W) frame."""
        h, w = size
        half_width = w * rng.uniform(0.33, 0.39)
        half_height = h * rng.uniform(0.37, 0.42)
        cx = w / 2 + rng.uniform(-0.03, 0.03) * w
        cy = h / 2 + rng.uniform(0.0, 0.05) * h
        tone = rng.uniform(0.45, 0.9)
        skin = (tone, tone * rng.uniform(0.72, 0.82), tone * rng.uniform(0.58, 0.70))
        hair_level = rng.uniform(0.05, 0.35)
        return cls(
            size=(h, w),
            centre=(cx, cy),
            half_width=half_width,
            half_height=half_height,
            eye_dx=half_width * rng.uniform(0.38, 0.46),
            eye_y=cy - half_height * rng.uniform(0.12, 0.22),
            eye_size=half_width * rng.uniform(0.15, 0.19),
            brow_gap=half_height * rng.uniform(0.14, 0.2),
            nose_y=cy + half_height * rng.uniform(0.18, 0.26),
            mouth_y=cy + half_height * rng.uniform(0.48, 0.56),
            mouth_half_width=half_width * rng.uniform(0.32, 0.42),
            skin=skin,
            hair=(hair_level, hair_level * 0.8, hair_level * 0.6),
            background=tuple(rng.uniform(0.3, 0.7) * np.array([0.9, 1.0, 1.05])),
            texture_seed=int(rng.integers(2**31)),
        )

    def landmarks(self) -> dict[str, np.ndarray]:
        """Named (x, y) anchor points of the action units."""
        cx, _ = self.centre
        e, s = self.eye_dx, self.eye_size
        brow_y = self.eye_y - self.brow_gap
        mw = self.mouth_half_width
        points = {
            "brow_inner_left": (cx - e + 1.1 * s, brow_y),
            "brow_inner_right": (cx + e - 1.1 * s, brow_y),
            "brow_outer_left": (cx - e - 1.1 * s, brow_y + 0.2 * s),
            "brow_outer_right": (cx + e + 1.1 * s, brow_y + 0.2 * s),
            "upper_lid_left": (cx - e, self.eye_y - 0.55 * s),
            "upper_lid_right": (cx + e, self.eye_y - 0.55 * s),
            "lower_lid_left": (cx - e, self.eye_y + 0.55 * s),
            "lower_lid_right": (cx + e, self.eye_y + 0.55 * s),
            "cheek_left": (cx - e, self.eye_y + 2.2 * s),
            "cheek_right": (cx + e, self.eye_y + 2.2 * s),
            "nostril_left": (cx - 0.45 * s * 2, self.nose_y),
            "nostril_right": (cx + 0.45 * s * 2, self.nose_y),
            "lip_corner_left": (cx - mw, self.mouth_y),
            "lip_corner_right": (cx + mw, self.mouth_y),
            "upper_lip": (cx, self.mouth_y - 0.35 * s),
            "lower_lip": (cx, self.mouth_y + 0.45 * s),
            "chin": (cx, self.mouth_y + 0.55 * (self.centre[1] + self.half_height - self.mouth_y) + 0.5 * s),
        }
        return {k: np.array(v, dtype=np.float64) for k, v in points.items()}


def _soft(inside: np.ndarray, edge: float = 1.0) -> np.ndarray:
    """Soft mask from a signed distance-like field (positive inside), about ``edge`` px wide."""
    return 1.0 / (1.0 + np.exp(-np.clip(inside / edge, -30, 30)))


def _ellipse(x, y, cx, cy, ax, ay, angle=0.0) -> np.ndarray:
    """Approximate signed distance (px, positive inside) to an ellipse."""
    c, s = np.cos(angle), np.sin(angle)
    u = ((x - cx) * c + (y - cy) * s) / ax
    v = (-(x - cx) * s + (y - cy) * c) / ay
    r = np.sqrt(u * u + v * v)
    gradient = np.sqrt((u / ax) ** 2 + (v / ay) ** 2) / np.maximum(r, 1e-6)
    return (1.0 - r) / np.maximum(gradient, 1e-6)


def _segment(x, y, x0, y0, x1, y1, half_thickness) -> np.ndarray:
    """Exact signed distance (px, positive inside) to a segment thickened by ``half_thickness``."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return half_thickness - np.hypot(x - x0 - t * dx, y - y0 - t * dy)


def _paint(image: np.ndarray, alpha: np.ndarray, colour) -> None:
    image *= 1.0 - alpha[..., None]
    image += alpha[..., None] * np.asarray(colour, dtype=np.float32)


def render_face(geometry: FaceGeometry) -> np.ndarray:
    """The neutral face, float32 (H, W, 3) RGB in [0, 1]."""
    h, w = geometry.size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = geometry.centre
    hw, hh = geometry.half_width, geometry.half_height
    rng = np.random.default_rng(geometry.texture_seed)

    image = np.empty((h, w, 3), np.float32)
    image[:] = np.asarray(geometry.background, np.float32) * (1.0 - 0.15 * (y / h))[..., None]
    _paint(
        image,
        _soft(_ellipse(x, y, cx, cy - 0.12 * hh, hw * 1.12, hh * 1.05)) * _soft(cy - 0.3 * hh - y, 4.0),
        geometry.hair,
    )

    texture = 0.035 * cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 0.8)
    texture += 0.05 * cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 3.0) * 3.0
    shading = 1.0 - 0.18 * ((x - cx) / hw) ** 2 - 0.06 * (y - cy) / hh
    skin = np.asarray(geometry.skin, np.float32) * (shading * (1.0 + texture))[..., None]
    face = _soft(_ellipse(x, y, cx, cy, hw, hh), 1.5)[..., None]
    image = image * (1 - face) + skin * face

    e, s = geometry.eye_dx, geometry.eye_size
    marks = geometry.landmarks()
    dark = np.asarray(geometry.hair, np.float32) * 0.8
    for side in (-1, 1):
        ex = cx + side * e
        _paint(image, 0.9 * _soft(_ellipse(x, y, ex, geometry.eye_y, 1.2 * s, 0.55 * s)), (0.92, 0.92, 0.9))
        _paint(image, _soft(_ellipse(x, y, ex, geometry.eye_y, 0.5 * s, 0.5 * s)), (0.25, 0.18, 0.12))
        _paint(image, _soft(_ellipse(x, y, ex, geometry.eye_y, 0.22 * s, 0.22 * s)), (0.03, 0.03, 0.03))
        lid_y = geometry.eye_y - 0.5 * s
        lid = _soft(_segment(x, y, ex - 1.1 * s, lid_y + 0.2 * s, ex + 1.1 * s, lid_y, 0.18 * s), 0.8)
        _paint(image, 0.7 * lid, dark)
        brow_x = (
            marks["brow_inner_left" if side < 0 else "brow_inner_right"][0]
            + marks["brow_outer_left" if side < 0 else "brow_outer_right"][0]
        ) / 2
        _paint(
            image,
            0.85 * _soft(_ellipse(x, y, brow_x, geometry.eye_y - geometry.brow_gap, 1.35 * s, 0.28 * s, side * 0.12)),
            dark,
        )
        _paint(
            image,
            0.35 * _soft(_ellipse(x, y, cx + side * 0.9 * s, geometry.nose_y, 0.35 * s, 0.2 * s)),
            (0.1, 0.05, 0.05),
        )
    nose = _soft(
        _ellipse(
            x,
            y,
            cx + 0.25 * s,
            (geometry.eye_y + geometry.nose_y) / 2,
            0.12 * s,
            0.5 * (geometry.nose_y - geometry.eye_y),
        ),
        1.5,
    )
    _paint(image, 0.15 * nose, (0.2, 0.1, 0.08))
    mw = geometry.mouth_half_width
    lips = np.asarray(geometry.skin, np.float32) * np.array([0.85, 0.5, 0.5], np.float32)
    _paint(image, 0.85 * _soft(_ellipse(x, y, cx, geometry.mouth_y, mw, 0.45 * s)), lips)
    _paint(
        image,
        0.8 * _soft(_segment(x, y, cx - mw, geometry.mouth_y, cx + mw, geometry.mouth_y, 0.3), 0.7),
        (0.15, 0.05, 0.05),
    )
    image = cv2.GaussianBlur(image, (0, 0), 0.6)
    return np.clip(image, 0.0, 1.0).astype(np.float32)
