"""The optical-flow ROI spotter, in the manner of OF-FD and MDMD (Wang et al. 2017; He et al. 2020).

Regions of the aligned face that action units move (brows, glabella, cheeks, mouth corners, lips;
the eyes, where blinks are, are watched apart) are followed with dense optical flow (Farnebäck) from
frame ``t - K`` to frame ``t``; each region's mean flow minus the nose bridge's (what the whole
head did) is its motion over ``K``. A region that moves and comes back within ``K`` frames has
moved against both the frame ``K`` before and the frame ``K`` after, so a frame's score is, for the
region that moved most, the smaller of its motion from ``t - K`` and to ``t + K`` (the latter is the
flow of frame ``t + K``): an expression scores its displacement from rest, while the mere echo of
an earlier movement (seen only against the frame before) scores nothing. Faces are normalised to
the same mean and contrast first, so changes of light do not look like motion.

Micro-expressions are scored with ``K`` = ``micro_gap`` (0.5 s, their longest), macro-expressions
with ``macro_gap`` (2 s). On each score, peaks above ``median + z * MAD`` (the median absolute
deviation, scaled to a standard deviation) and at least ``p`` of the way from the median to the
maximum are grown down to ``grow`` of their height above the median. Macro intervals must last
longer than ``micro_max`` (0.5 s) and at most ``macro_max``; micro intervals at most ``micro_max``
and at least ``min_length``; a micro interval within ``micro_gap`` of a macro one (its rise or
fall) is dropped, and so is one whose peak moved the eyes more than any region (``blink_ratio``
= 1: a blink sweeps the lids over the eye, and the brows, near them, move less; an expression of
the lids alone, AU 5 or 7, is dropped with the blinks). Frames without a usable face (no face, head motion, re-alignment) score 0.

Choices of merkit (the papers give no single recipe): the regions, the gaps, ``z`` = 6, ``p`` =
0.1, ``blink_ratio`` = 1, ``grow`` = 0.2 (an expression's raised-cosine profile is above a fifth of its peak for about
70% of its length, so an interval overlaps its expression with IoU about 0.7). They were set on
synthetic recordings of seeds (100-103) other than those the tests and benchmarks use.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from merkit.datasets.intervals import Interval
from merkit.errors import ConfigError
from merkit.spotting.registry import OnlineSpotter, Spotter, Spotting, register_spotter

# (centre x, centre y, half width, half height) as fractions of the aligned face (eyes at 0.38 height)
REGIONS = {
    "brow_left": (0.27, 0.24, 0.09, 0.06),
    "brow_right": (0.73, 0.24, 0.09, 0.06),
    "glabella": (0.50, 0.27, 0.08, 0.05),
    "cheek_left": (0.33, 0.55, 0.07, 0.06),
    "cheek_right": (0.67, 0.55, 0.07, 0.06),
    "mouth_left": (0.31, 0.80, 0.07, 0.07),
    "mouth_right": (0.70, 0.80, 0.07, 0.07),
    "lips": (0.51, 0.86, 0.08, 0.07),
}
EYES = {"eye_left": (0.29, 0.38, 0.08, 0.05), "eye_right": (0.71, 0.38, 0.08, 0.05)}  # watched for blinks only
REFERENCE = (0.50, 0.45, 0.05, 0.06)  # the nose bridge: moves with the head, not with the expressions
WATCHED = len(REGIONS) + len(EYES)


def region_slices(size: int) -> list[tuple[slice, slice]]:
    """(rows, columns) of each region of ``REGIONS``, of ``EYES``, then of the reference, in a size x size face."""
    out = []
    for cx, cy, hw, hh in [*REGIONS.values(), *EYES.values(), REFERENCE]:
        out.append(
            (
                slice(int(round((cy - hh) * size)), int(round((cy + hh) * size)) + 1),
                slice(int(round((cx - hw) * size)), int(round((cx + hw) * size)) + 1),
            )
        )
    return out


def region_flow(before: np.ndarray, after: np.ndarray, regions: list[tuple[slice, slice]]) -> np.ndarray:
    """(R, 2) mean flow (dx, dy) of each region minus that of the last region (the reference)."""
    flow = cv2.calcOpticalFlowFarneback(before, after, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    means = np.array([flow[r, c].reshape(-1, 2).mean(axis=0) for r, c in regions])
    return means[:-1] - means[-1]


def span_above(score: np.ndarray, peak: int, floor: float) -> tuple[int, int]:
    """The frames around ``peak`` where ``score`` stays above ``floor`` (inclusive ends)."""
    below = np.flatnonzero(score[:peak] <= floor)
    onset = int(below[-1]) + 1 if below.size else 0
    below = np.flatnonzero(score[peak:] <= floor)
    offset = peak + int(below[0]) - 1 if below.size else len(score) - 1
    return onset, offset


def normalised(face: np.ndarray) -> np.ndarray:
    """uint8 face with mean 128 and standard deviation 40 (a global change of light removed)."""
    f = face.astype(np.float32)
    return np.clip((f - f.mean()) * (40.0 / (f.std() + 1e-6)) + 128.0, 0, 255).astype(np.uint8)


def echo_free(motion: np.ndarray, gap: int) -> np.ndarray:
    """(T, R) the smaller of each region's motion from ``t - gap`` (row t) and to ``t + gap``
    (row t + gap); NaN where either is unknown."""
    ahead = np.full_like(motion, np.nan)
    if gap < len(motion):  # a window longer than the recording: nothing is known ahead
        ahead[: len(motion) - gap] = motion[gap:]
    return np.minimum(motion, ahead)


@register_spotter
@dataclass
class ROIFlow(Spotter):
    """Optical flow of face regions minus the nose's against the frames K before and after (OF-FD / MDMD style).

    Parameters
    ----------
    micro_gap, macro_gap : seconds between the frames of each flow (K) for the two kinds
    z : threshold in robust standard deviations above the median
    p : and at least this share of the way from the median to the maximum
    grow : an interval is the peak grown down to this share of its height
    micro_max, macro_max, min_length : seconds
    blink_ratio : a micro peak where the eyes moved this many times as much as any region is a blink
    """

    name = "roi_flow"
    summary = (
        "optical flow of face regions minus the nose's, against the frames K before and after (OF-FD / MDMD style)"
    )

    micro_gap: float = 0.5
    macro_gap: float = 2.0
    z: float = 6.0
    p: float = 0.1
    grow: float = 0.2
    micro_max: float = 0.5
    macro_max: float = 4.0
    min_length: float = 0.1
    blink_ratio: float = 1.0

    def gaps(self, fps: float) -> tuple[int, int]:
        return max(1, int(round(self.micro_gap * fps))), max(1, int(round(self.macro_gap * fps)))

    def fewest_frames(self, fps: float) -> int:
        """A micro score compares frame t with t - K and t + K: 2 K_micro + 1 frames."""
        return 2 * self.gaps(fps)[0] + 1

    def signals(self, faces: Iterable[np.ndarray | None], fps: float) -> np.ndarray:
        """(T, 2W + 1): the motion (pixels) of each watched region (``REGIONS`` then ``EYES``) from
        K_micro frames before, then from K_macro frames before, and 1 where the frame has a
        usable face (NaN where a flow is unknown: a frame without a usable face lies between)."""
        row = self.row_maker(fps)
        return np.array([row(face) for face in faces], np.float32).reshape(-1, 2 * WATCHED + 1)

    def row_maker(self, fps: float) -> Callable[[np.ndarray | None], np.ndarray]:
        """``row(face)``: the :meth:`signals` row of each face in turn (it keeps the last K_macro faces)."""
        if not fps > 0:
            raise ConfigError(f"Spotting needs the frame rate; got fps={fps}.")
        gaps = self.gaps(fps)
        history: deque = deque(maxlen=max(gaps) + 1)  # faces t - K_macro .. t
        regions: list = []
        n = WATCHED

        def row(face: np.ndarray | None) -> np.ndarray:
            out = np.full(2 * n + 1, np.nan, np.float32)
            if face is None:  # no face, head motion or a new alignment: no later face compares with an earlier one
                history.clear()
                return out
            history.append(normalised(face))
            regions[:] = regions or region_slices(face.shape[0])
            for i, gap in enumerate(gaps):
                if len(history) > gap:
                    out[i * n : (i + 1) * n] = np.linalg.norm(
                        region_flow(history[-1 - gap], history[-1], regions), axis=1
                    )
            out[-1] = 1.0
            return out

        return row

    def online(self, fps: float, *, history: float = 600.0) -> LiveROIFlow:
        return LiveROIFlow(self, fps, history)

    def scores(self, signals: np.ndarray, fps: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """({micro, macro: (T,)} the echo-free motion of the region that moved most (0 where
        unknown), (T,) bool: the eyes moved ``blink_ratio`` times as much as that, at the micro gap)."""
        scores, blink = {}, np.zeros(len(signals), bool)
        for i, (kind, gap) in enumerate(zip(("micro", "macro"), self.gaps(fps))):
            motion = np.nan_to_num(echo_free(signals[:, i * WATCHED : (i + 1) * WATCHED], gap), nan=0.0)
            scores[kind] = motion[:, : len(REGIONS)].max(axis=1, initial=0)
            if kind == "micro":
                blink = motion[:, len(REGIONS) :].max(axis=1, initial=0) > self.blink_ratio * scores[kind]
        return scores, blink

    def threshold(self, score: np.ndarray) -> tuple[float, float]:
        """(median, threshold) of the known (> 0) scores; (0, 0) when none is known."""
        known = score[score > 0]
        if not known.size:
            return 0.0, 0.0
        base = float(np.median(known))
        spread = 1.4826 * float(np.median(np.abs(known - base)))
        return base, max(base + self.z * spread, base + self.p * (known.max() - base))

    def _peaks(self, score: np.ndarray, base: float, threshold: float) -> list[tuple[int, int, int]]:
        """(onset, offset, peak) of the grown peaks above ``threshold``, strongest first, not overlapping."""
        found, taken = [], np.zeros(len(score), bool)
        for peak in np.argsort(-score):
            if score[peak] <= threshold or threshold == 0:
                break
            if taken[peak]:
                continue
            onset, offset = span_above(score, int(peak), base + self.grow * (score[peak] - base))
            overlaps = taken[onset : offset + 1].any()
            taken[onset : offset + 1] = True
            if not overlaps:  # else a weaker peak on the flank of a stronger one's interval
                found.append((onset, offset, int(peak)))
        return found

    def intervals(self, signals: np.ndarray, fps: float) -> Spotting:
        scores, blink = self.scores(signals, fps)
        levels = {kind: self.threshold(score) for kind, score in scores.items()}
        peaks = {kind: self._peaks(scores[kind], *levels[kind]) for kind in scores}
        macro = [
            Interval(a, b, "macro", float(scores["macro"][c]), c)
            for a, b, c in peaks["macro"]
            if self.micro_max < (b - a + 1) / fps <= self.macro_max
        ]
        near = self.gaps(fps)[0]  # a macro interval is grown narrower than its rise and fall
        micro = [
            Interval(a, b, "micro", float(scores["micro"][c]), c)
            for a, b, c in peaks["micro"]
            if self.min_length <= (b - a + 1) / fps <= self.micro_max
            and not blink[c]
            and not any(m.onset - near <= c <= m.offset + near for m in macro)
        ]
        return Spotting(
            scores, {kind: level[1] for kind, level in levels.items()}, sorted(micro + macro, key=lambda i: i.onset)
        )


class _RunningKind:
    """One kind's causal peak finding: the scores of the last ``history`` frames for the running
    threshold (refreshed every ``refresh`` frames), the last ``recent`` ones to grow a peak into
    its interval, and the peak above the threshold that is still rising or not yet fallen back."""

    def __init__(self, spotter: ROIFlow, history: int, recent: int, refresh: int, warm: int):
        self.spotter, self.refresh, self.warm = spotter, refresh, warm
        self.ring = np.zeros(history, np.float32)  # a ring of the last scores (0 = unknown)
        self.count = 0
        self.recent: deque = deque(maxlen=recent)  # (frame, score, blink)
        self.base = self.threshold = 0.0
        self.open: tuple[int, int, float] | None = None  # (first frame over the threshold, peak frame, peak score)
        self.taken = -1  # the last frame of the last grown peak

    def at(self, t: int) -> tuple[int, float, bool]:
        """(frame, score, blink) of a recent frame ``t``; a score of 0 once it has left the window."""
        first = self.recent[0][0] if self.recent else t + 1
        return self.recent[t - first] if 0 <= t - first < len(self.recent) else (t, 0.0, False)

    def add(self, t: int, score: float, blink: bool = False) -> tuple[int, int, int] | None:
        """Frame ``t``'s score; the (onset, offset, peak) of a peak that has just fallen back, if any."""
        self.ring[self.count % len(self.ring)] = score
        self.count += 1
        self.recent.append((t, score, blink))
        if self.count % self.refresh == 0 or self.count == self.warm:
            self.base, self.threshold = self.spotter.threshold(self.ring[: self.count])
        if self.count < self.warm or self.threshold == 0:
            return None
        if self.open is None:
            if score > self.threshold:
                self.open = (t, t, score)
            return None
        start, peak, height = self.open
        if score > height:
            self.open = (start, t, score)
            return None
        floor = self.base + self.spotter.grow * (height - self.base)
        if score > floor:
            return None
        self.open = None
        frames = [f for f, v, _ in self.recent if f <= peak and v <= floor]
        onset = frames[-1] + 1 if frames else self.recent[0][0]
        if onset <= self.taken:  # grown back into the last peak's frames: on its flank (offline keeps the stronger one)
            return None
        self.taken = t - 1
        return onset, t - 1, peak


class LiveROIFlow(OnlineSpotter):
    """:class:`ROIFlow` one face at a time: each frame's score as soon as the flow K frames after
    it is known, thresholds as a running estimate (median and MAD of the last ``history`` seconds'
    known scores, refreshed every 0.25 s, none decided in the first 3 s), each peak grown and
    decided as soon as it falls back under its floor (a peak grown back into the frames of the
    one before is dropped: the earlier one was already reported, where offline keeps the
    stronger of the two). A micro interval waits until the macro score
    is known ``micro_gap`` past its peak and no macro peak over its threshold is open there: it is
    dropped if a macro interval lies within ``micro_gap`` of its peak (the rise or fall of a
    macro-expression), as offline. So a micro interval is decided about ``macro_gap + micro_gap``
    after its peak (2.5 s by default), a macro one ``macro_gap`` after its end."""

    def __init__(self, spotter: ROIFlow, fps: float, history: float = 600.0):
        self.spotter, self.fps = spotter, fps
        self.row = spotter.row_maker(fps)
        self.gaps = spotter.gaps(fps)
        self.near = self.gaps[0]
        self.lookahead = self.gaps[1] + self.near + 1
        self.reach = int(math.ceil(spotter.macro_max * fps)) + self.lookahead
        self.rows: deque = deque(maxlen=max(self.gaps) + 1)  # signal rows t - K_macro .. t
        keep = int(round((spotter.macro_max + 1.0) * fps)) + self.lookahead
        common = {
            "history": max(int(history * fps), 1),
            "recent": keep,
            "refresh": max(1, int(0.25 * fps)),
            "warm": int(3 * fps),
        }
        self.kinds = {"micro": _RunningKind(spotter, **common), "macro": _RunningKind(spotter, **common)}
        self.relative: dict[str, deque] = {
            "micro": deque(),
            "macro": deque(),
        }  # (frame, score / threshold) not yet paired
        self.held: list[Interval] = []  # micro intervals waiting for the macro score around them
        self.macro: deque = deque(maxlen=16)  # the last macro intervals decided
        self.t = 0

    def push(self, face: np.ndarray | None) -> tuple[list[tuple[int, float]], list[Interval]]:
        return self.push_row(self.row(face))

    def push_row(self, row: np.ndarray) -> tuple[list[tuple[int, float]], list[Interval]]:
        """:meth:`push` for the face's :meth:`ROIFlow.signals` row, already computed."""
        self.rows.append(row)
        self.t += 1
        decided = []
        for i, (kind, gap) in enumerate(zip(("micro", "macro"), self.gaps)):
            if len(self.rows) > gap:  # frame t - gap is known: its motion and that of t (its flow to t - gap + gap)
                part = slice(i * WATCHED, (i + 1) * WATCHED)
                decided += self._score(
                    kind, self.t - 1 - gap, np.minimum(self.rows[-1 - gap][part], self.rows[-1][part])
                )
        decided += self._release(self.t - 1 - self.gaps[1])
        return self._paired(), decided

    def finish(self) -> tuple[list[tuple[int, float]], list[Interval]]:
        decided = []
        for kind, gap in zip(
            ("micro", "macro"), self.gaps
        ):  # the last frames' scores are unknown: 0, which closes open peaks
            for t in range(max(0, self.t - gap), self.t):
                decided += self._score(kind, t, None)
        decided += self._release(self.t + self.near)
        return self._paired(), decided

    def _score(self, kind: str, t: int, motion: np.ndarray | None) -> list[Interval]:
        """Frame ``t``'s echo-free ``motion`` (W,) of ``kind`` (None where unknown: score 0, as
        offline) into its running peak finding; an interval decided there (micro ones are held)."""
        score, blink = 0.0, False
        if motion is not None:
            motion = np.nan_to_num(motion, nan=0.0)
            score = float(motion[: len(REGIONS)].max(initial=0))
            blink = kind == "micro" and float(motion[len(REGIONS) :].max(initial=0)) > self.spotter.blink_ratio * score
        running = self.kinds[kind]
        found = running.add(t, score, blink)
        self.relative[kind].append((t, score / running.threshold if running.threshold > 0 else 0.0))
        if found is None:
            return []
        onset, offset, peak = found
        length = (offset - onset + 1) / self.fps
        _, height, blinked = running.at(peak)
        if kind == "macro":
            if self.spotter.micro_max < length <= self.spotter.macro_max:
                self.macro.append(Interval(onset, offset, "macro", height, peak))
                return [self.macro[-1]]
        elif self.spotter.min_length <= length <= self.spotter.micro_max and not blinked:
            self.held.append(Interval(onset, offset, "micro", height, peak))
        return []

    def _release(self, known: int) -> list[Interval]:
        """The held micro intervals whose peak is ``micro_gap`` before ``known`` (the last frame with a macro score)."""
        opened = self.kinds["macro"].open
        waits = lambda iv: iv.apex + self.near > known or (opened is not None and opened[0] <= iv.apex + self.near)  # noqa: E731
        ready = [iv for iv in self.held if not waits(iv)]
        self.held = [iv for iv in self.held if waits(iv)]
        return [
            iv for iv in ready if not any(m.onset - self.near <= iv.apex <= m.offset + self.near for m in self.macro)
        ]

    def _paired(self) -> list[tuple[int, float]]:
        """(frame, the larger of its two relative scores) for the frames both kinds have scored."""
        micro, macro = self.relative["micro"], self.relative["macro"]
        out = []
        while micro and macro and micro[0][0] == macro[0][0]:
            (t, a), (_, b) = micro.popleft(), macro.popleft()
            out.append((t, max(a, b)))
        return out
