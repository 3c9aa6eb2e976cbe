"""Facial action units as localised displacement fields, and their onset-apex-offset timing.

An action unit moves the skin around one or two landmarks: a Gaussian bump of displacement,
pointing where the muscle pulls. An emotion word is shown by one of a few AU combinations
(after the combinations coded in CASME II), so classes differ by where and which way the face
moves, and some combinations are shared, as in real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from merkit.synthetic.faces import FaceGeometry

# AU -> [(landmark, (dx, dy) direction in image coordinates, +y is down)]
ACTION_UNITS: dict[int, list[tuple[str, tuple[float, float]]]] = {
    1: [("brow_inner_left", (0.0, -1.0)), ("brow_inner_right", (0.0, -1.0))],
    2: [("brow_outer_left", (0.0, -1.0)), ("brow_outer_right", (0.0, -1.0))],
    4: [("brow_inner_left", (0.6, 0.8)), ("brow_inner_right", (-0.6, 0.8))],
    5: [("upper_lid_left", (0.0, -1.0)), ("upper_lid_right", (0.0, -1.0))],
    6: [("cheek_left", (0.0, -1.0)), ("cheek_right", (0.0, -1.0))],
    7: [("lower_lid_left", (0.0, -1.0)), ("lower_lid_right", (0.0, -1.0))],
    9: [("nostril_left", (0.2, -1.0)), ("nostril_right", (-0.2, -1.0))],
    10: [("upper_lip", (0.0, -1.0))],
    12: [("lip_corner_left", (-0.7, -0.7)), ("lip_corner_right", (0.7, -0.7))],
    14: [("lip_corner_left", (1.0, 0.0)), ("lip_corner_right", (-1.0, 0.0))],
    15: [("lip_corner_left", (-0.3, 0.95)), ("lip_corner_right", (0.3, 0.95))],
    17: [("chin", (0.0, -1.0)), ("lower_lip", (0.0, -1.0))],
    20: [("lip_corner_left", (-1.0, 0.15)), ("lip_corner_right", (1.0, 0.15))],
    24: [("upper_lip", (0.0, 1.0)), ("lower_lip", (0.0, -1.0))],
}

# emotion word (CASME II) -> AU combinations it is shown with
EMOTION_AUS: dict[str, list[tuple[int, ...]]] = {
    "happiness": [(6, 12), (12,), (6, 7, 12)],
    "surprise": [(1, 2), (1, 2, 5), (1,)],
    "disgust": [(4, 9), (4, 7), (9, 10), (4,)],
    "repression": [(14,), (17,), (15, 17), (24,)],
    "fear": [(1, 4, 20), (4, 20)],
    "sadness": [(1, 15), (4, 15)],
    "others": [(4,), (7,), (10,), (14,), (17,), (2,), (15,), (24,)],
    "anger": [(4, 5, 7), (4, 7), (4, 24)],
    "contempt": [(14,), (12, 14)],
    "tense": [(4,), (7,), (24,), (14, 24)],
}
# the same movements under the words other datasets use
EMOTION_AUS |= {
    "happy": EMOTION_AUS["happiness"],
    "amusement": EMOTION_AUS["happiness"],
    "positive": EMOTION_AUS["happiness"],
    "sad": EMOTION_AUS["sadness"],
    "other": EMOTION_AUS["others"],
    "negative": EMOTION_AUS["disgust"] + EMOTION_AUS["sadness"] + EMOTION_AUS["fear"] + EMOTION_AUS["anger"],
}


@dataclass(frozen=True)
class Expression:
    """The action units of one clip and their strength in pixels at the apex."""

    aus: tuple[int, ...]
    amplitude: float
    side_gains: tuple[float, ...]

    @classmethod
    def random(cls, emotion: str, amplitude: float, rng: np.random.Generator) -> Expression:
        combos = EMOTION_AUS[
            emotion.lower().split("+")[0]
        ]  # a multi-label word (4DME's Surprise+Positive) moves as its first
        aus = combos[int(rng.integers(len(combos)))]
        n_anchors = sum(len(ACTION_UNITS[a]) for a in aus)
        return cls(aus, amplitude, tuple(rng.uniform(0.7, 1.3, n_anchors)))

    @property
    def code(self) -> str:
        """FACS-style code as in the spreadsheets: ``6+12``."""
        return "+".join(str(a) for a in self.aus)

    def apex_field(self, geometry: FaceGeometry) -> np.ndarray:
        """(H, W, 2) float32 displacement (dx, dy) in pixels at the apex.

        Each anchor contributes ``gain * amplitude * direction * exp(-r^2 / (2 sigma^2))`` with
        sigma a fifth of the eye distance; the peak magnitude is about ``amplitude``.
        """
        gains = iter(self.side_gains)
        pushes = [
            (landmark, direction, next(gains) * self.amplitude)
            for au in self.aus
            for landmark, direction in ACTION_UNITS[au]
        ]
        return landmark_field(geometry, pushes, 0.4 * geometry.eye_dx)


def landmark_field(geometry: FaceGeometry, pushes, sigma: float) -> np.ndarray:
    """(H, W, 2) float32 displacement: for each (landmark, direction, magnitude) of ``pushes``, a
    Gaussian bump of width ``sigma`` at the landmark, ``magnitude`` pixels along ``direction``."""
    h, w = geometry.size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    marks = geometry.landmarks()
    field = np.zeros((h, w, 2), np.float32)
    for landmark, direction, magnitude in pushes:
        px, py = marks[landmark]
        bump = np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * sigma**2))
        d = np.asarray(direction, np.float32)
        field += (magnitude * bump)[..., None] * (d / np.linalg.norm(d))
    return field


def timing_profile(n_frames: int, onset: int, apex: int, offset: int) -> np.ndarray:
    """(n_frames,) expression strength: 0 until onset, raised cosine to 1 at apex, back to 0 at offset."""
    t = np.arange(n_frames, dtype=np.float64)
    rise = np.clip((t - onset) / max(apex - onset, 1), 0, 1)
    fall = np.clip((offset - t) / max(offset - apex, 1), 0, 1)
    strength = np.where(t <= apex, rise, fall)
    return (0.5 - 0.5 * np.cos(np.pi * strength)).astype(np.float32)
