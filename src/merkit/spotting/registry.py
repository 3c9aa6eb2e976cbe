"""Spotters registered by name: ``create_spotter(name, **params)``, ``list_spotters()``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from merkit.datasets.intervals import Interval
from merkit.errors import check_choice, configured


@dataclass
class Spotting:
    """What a spotter found in one video: a score per frame and the threshold it was held to,
    for each kind (micro, macro), and the intervals."""

    scores: dict[str, np.ndarray]
    thresholds: dict[str, float]
    intervals: list[Interval]

    @property
    def relative(self) -> np.ndarray:
        """(T,) each frame's score over its threshold, the larger of the two kinds (1 = at the threshold)."""
        return np.max([self.scores[k] / self.thresholds[k] if self.thresholds[k] > 0 else np.zeros_like(self.scores[k])
                       for k in self.scores], axis=0)


class Spotter:
    """Base of every spotter: a dataclass whose fields are its parameters (defaults from its paper).

    Spotting runs in two steps so that a long video streams: :meth:`signals` reads the aligned
    faces one at a time and keeps a small row of numbers per frame; :meth:`intervals` turns those
    rows into a score per frame and the intervals (a threshold needs the whole video's scores).
    """

    name: ClassVar[str]
    summary: ClassVar[str]

    def signals(self, faces: Iterable[np.ndarray | None], fps: float) -> np.ndarray:
        """(T, F) float32 rows, one per face: uint8 (H, W) grey aligned faces at ``fps``, None for a
        frame without a usable face."""
        raise NotImplementedError

    def intervals(self, signals: np.ndarray, fps: float) -> Spotting:
        """The scores, thresholds and spotted intervals (micro and macro) from :meth:`signals`."""
        raise NotImplementedError

    def spot(self, frames: np.ndarray, fps: float, usable: np.ndarray | None = None) -> Spotting:
        """Both steps on (T, H, W) grey face frames in memory; ``usable`` (T,) bool marks the
        frames with a usable face (all by default)."""
        usable = np.ones(len(frames), bool) if usable is None else usable
        return self.intervals(self.signals((f if ok else None for f, ok in zip(frames, usable)), fps), fps)


_SPOTTERS: dict[str, type[Spotter]] = {}


def register_spotter(cls: type[Spotter]) -> type[Spotter]:
    """Class decorator: register ``cls`` under ``cls.name``."""
    _SPOTTERS[cls.name] = cls
    return cls


def list_spotters() -> list[type[Spotter]]:
    return [_SPOTTERS[k] for k in sorted(_SPOTTERS)]


def create_spotter(name: str, **params) -> Spotter:
    """A spotter; unknown parameter names, or values of the wrong type, get a ConfigError."""
    return configured(_SPOTTERS[check_choice("spotter", name, _SPOTTERS)], params, f"spotter {name!r}")
