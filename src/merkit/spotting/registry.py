"""Spotters registered by name: ``create_spotter(name, **params)``, ``list_spotters()``."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from merkit.datasets.intervals import Interval
from merkit.errors import ConfigError, check_choice


class Spotter:
    """Base of every spotter: a dataclass whose fields are its parameters (defaults from its paper)."""

    name: ClassVar[str]
    summary: ClassVar[str]

    def spot(self, frames: np.ndarray, fps: float) -> tuple[np.ndarray, list[Interval]]:
        """(T,) a score per frame, and the spotted intervals (micro and macro), for (T, H, W)
        grey face frames at ``fps`` frames per second."""
        raise NotImplementedError


_SPOTTERS: dict[str, type[Spotter]] = {}


def register_spotter(cls: type[Spotter]) -> type[Spotter]:
    """Class decorator: register ``cls`` under ``cls.name``."""
    _SPOTTERS[cls.name] = cls
    return cls


def list_spotters() -> list[type[Spotter]]:
    return [_SPOTTERS[k] for k in sorted(_SPOTTERS)]


def create_spotter(name: str, **params) -> Spotter:
    """A spotter; unknown parameter names get a ConfigError listing the known ones."""
    cls = _SPOTTERS[check_choice("spotter", name, _SPOTTERS)]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"Spotter {name!r} has no parameter {', '.join(unknown)}; its parameters are: {', '.join(sorted(known))}.")
    return cls(**params)
