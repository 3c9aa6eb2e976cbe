"""Spotters registered by name: ``create_spotter(name, **params)``, ``list_spotters()``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from merkit.datasets.intervals import Interval
from merkit.errors import ConfigError, check_choice, configured
from merkit.preprocess.track_cache import TrackCache

KIND_RGB = {"micro": (255, 140, 0), "macro": (148, 60, 200)}  # every plot, page and video of spotted intervals
KIND_HEX = {kind: "#{:02x}{:02x}{:02x}".format(*rgb) for kind, rgb in KIND_RGB.items()}


@dataclass
class Spotting:
    """What a spotter found in one video: a score per frame and the threshold it was held to,
    for each kind (micro, macro), and the intervals."""

    scores: dict[str, np.ndarray]
    thresholds: dict[str, float]
    intervals: list[Interval]
    note: str = ""  # why nothing could be spotted (a recording shorter than the spotter's windows)

    @property
    def relative(self) -> np.ndarray:
        """(T,) each frame's score over its threshold, the larger of the two kinds (1 = at the threshold)."""
        return np.max(
            [
                self.scores[k] / self.thresholds[k] if self.thresholds[k] > 0 else np.zeros_like(self.scores[k])
                for k in self.scores
            ],
            axis=0,
        )


class Spotter:
    """Base of every spotter: a dataclass whose fields are its parameters (defaults from its paper).

    Spotting runs in two steps so that a long video streams: :meth:`signals` reads the aligned
    faces one at a time and keeps a small row of numbers per frame; :meth:`intervals` turns those
    rows into a score per frame and the intervals (a threshold needs the whole video's scores).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    learns: ClassVar[bool] = False  # a LearnedSpotter must be fitted before it spots

    def signals(self, faces: Iterable[np.ndarray | None], fps: float) -> np.ndarray:
        """(T, F) float32 rows, one per face: uint8 (H, W) grey aligned faces at ``fps``, None for a
        frame without a usable face."""
        raise NotImplementedError

    def intervals(self, signals: np.ndarray, fps: float) -> Spotting:
        """The scores, thresholds and spotted intervals (micro and macro) from :meth:`signals`."""
        raise NotImplementedError

    def fewest_frames(self, fps: float) -> int:
        """The fewest frames at ``fps`` this spotter can score: its shortest window."""
        raise NotImplementedError

    def spotting(self, signals: np.ndarray, fps: float) -> Spotting:
        """:meth:`intervals`; for a recording shorter than :meth:`fewest_frames`, no interval, zero
        scores and a note saying why."""
        n, fewest = len(signals), self.fewest_frames(fps)
        if n >= fewest:
            return self.intervals(signals, fps)
        note = (
            f"The recording has {n} frame(s) ({n / fps:.2f} s); {self.name} needs at least {fewest} "
            f"({fewest / fps:.2f} s at {fps:g} fps) to score one, so nothing was spotted."
        )
        return Spotting({"micro": np.zeros(n), "macro": np.zeros(n)}, {"micro": 0.0, "macro": 0.0}, [], note)

    def online(self, fps: float, *, history: float = 600.0) -> OnlineSpotter:
        """A causal version of this spotter for a live stream (:class:`OnlineSpotter`), its
        thresholds a running estimate over the last ``history`` seconds."""
        raise ConfigError(
            f"The {self.name} spotter cannot spot a live stream: it needs the whole recording. "
            f"Use --spotter roi_flow, or record the session and run merkit analyze."
        )

    def spot(self, frames: np.ndarray, fps: float, usable: np.ndarray | None = None) -> Spotting:
        """Both steps on (T, H, W) grey face frames in memory; ``usable`` (T,) bool marks the
        frames with a usable face (all by default)."""
        usable = np.ones(len(frames), bool) if usable is None else usable
        return self.spotting(self.signals((f if ok else None for f, ok in zip(frames, usable)), fps), fps)


class OnlineSpotter:
    """A spotter applied causally, one face at a time (``merkit live``).

    :meth:`push` takes frame ``t``'s face (None without a usable one) and returns what became
    known: ``(frame, score over threshold)`` pairs of earlier frames (a score needs
    :attr:`lookahead` frames after its own) and the intervals decided at this frame. No frame is
    looked at further than ``lookahead`` frames after it, and memory does not grow with the stream.
    """

    lookahead: int  # frames: how far after a frame its score (and an interval's decision) may look
    reach: int  # frames: the most from an interval's first frame to its decision (its longest length and the lookahead)

    def push(self, face: np.ndarray | None) -> tuple[list[tuple[int, float]], list[Interval]]:
        raise NotImplementedError

    def finish(self) -> tuple[list[tuple[int, float]], list[Interval]]:
        """At the end of the stream: the remaining frames' scores (what is unknown counts 0, as offline) and intervals."""
        raise NotImplementedError


@dataclass
class TrainingVideo:
    """A long video a learned spotter trains on: ``signals(spotter)`` gives its (T, F) rows of
    :meth:`Spotter.signals` for that spotter's settings (computed once, then cached by the caller),
    ``intervals`` its annotated expressions; ``subject`` names the person (``dataset/subject``)."""

    key: str
    subject: str
    fps: float
    intervals: list[Interval]
    signals: Callable[[Spotter], np.ndarray]


@dataclass(frozen=True)
class CachedSignals:
    """The :meth:`Spotter.signals` of the faces in the tracking cache ``folder`` for a spotter: each
    of its blocks (:meth:`LearnedSpotter.signal_parts`) computed once per setting into
    ``folder/signals-NAME-TAG.npy`` (written atomically, read back without pickle, memory-mapped),
    so that folds whose settings share a block share its file; a plain object, so it travels to
    worker processes."""

    folder: str
    fps: float

    def __call__(self, spotter: LearnedSpotter) -> np.ndarray:
        from pathlib import Path

        from merkit.io.atomic import atomic_path

        blocks = []
        for part, tag in enumerate(spotter.signal_parts(self.fps)):
            path = Path(self.folder) / f"signals-{spotter.name}-{tag}.npy"
            if not path.exists():
                cache = TrackCache(Path(self.folder))
                rows = spotter.part_signals(cache.faces(cache.usable()), self.fps, part)
                with atomic_path(path, suffix=".npy") as tmp:
                    np.save(tmp, rows, allow_pickle=False)
            blocks.append(np.load(path, mmap_mode="r", allow_pickle=False))
        return blocks[0] if len(blocks) == 1 else np.hstack(blocks)


def training_video(video, folder) -> TrainingVideo:
    """A tracked long video (its tracking cache in ``folder``) as training data: the person is
    ``dataset/subject``, unique across datasets."""
    return TrainingVideo(
        video.key,
        f"{video.dataset}/{video.subject}",
        video.fps,
        list(video.intervals),
        CachedSignals(str(folder), video.fps),
    )


class NotFitted(ConfigError):
    """A learned spotter was asked to spot before :meth:`LearnedSpotter.fit`."""


class LearnedSpotter(Spotter):
    """Base of the spotters that learn from annotated long videos.

    :meth:`fit` is the one extra step: it sees the training videos only (their signals and
    intervals) and sets the learned state (attributes ending in ``_``); :meth:`signals` may depend
    on settings learned there (a flow's frame gap from the expressions' mean length), which
    :meth:`signal_tag` names so that a cache keeps one set of signals per setting. Hand-crafted
    spotters subclass :class:`Spotter` and spot without training.
    """

    learns = True

    def fit(self, videos: Sequence[TrainingVideo]) -> LearnedSpotter:
        """Learn from ``videos``; returns self."""
        raise NotImplementedError

    def signal_tag(self, fps: float) -> str:
        """A short name of what :meth:`signals` depends on (learned settings included)."""
        raise NotImplementedError

    def signal_settings(self, videos: Sequence[TrainingVideo]) -> LearnedSpotter:
        """A copy of this spotter holding only the settings :meth:`signals` depends on, as
        :meth:`fit` on ``videos`` learns them (from their intervals, without training): what a
        fold's signals are computed with, so that they can be computed before its training.
        By default a plain copy."""
        return dataclasses.replace(self)

    def signal_parts(self, fps: float) -> list[str]:
        """The tags of the column blocks :meth:`signals` is made of, in order (their columns side by
        side are :meth:`signals`), each cached apart; by default one block, :meth:`signal_tag`."""
        return [self.signal_tag(fps)]

    def part_signals(self, faces: Iterable[np.ndarray | None], fps: float, part: int) -> np.ndarray:
        """(T, F_part) the block ``part`` of :meth:`signal_parts`; by default all of :meth:`signals`."""
        return self.signals(faces, fps)

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """The learned state as named arrays and a JSON-able dict (for a spotting bundle)."""
        raise NotImplementedError

    def load_state(self, arrays: dict[str, np.ndarray], learned: dict) -> LearnedSpotter:
        """Set the state :meth:`state` gave; returns self (fitted)."""
        raise NotImplementedError

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` (or a loaded state) has set ``fitted_``."""
        return bool(getattr(self, "fitted_", False))

    def check_fitted(self) -> None:
        if not self.fitted:
            raise NotFitted(
                f"The {self.name} spotter learns from annotated videos: fit it first (merkit spot-evaluate "
                f"--spotter {self.name} trains one per fold), or load a spotting bundle."
            )


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


def spot_cached(cache: TrackCache, spotter: Spotter, fps: float) -> tuple[Spotting, np.ndarray]:
    """Run ``spotter`` over the faces of a tracking cache; its result and the (T, 4) states."""
    return spotter.spotting(spotter.signals(cache.faces(cache.usable()), fps), fps), cache.states()
