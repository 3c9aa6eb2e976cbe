"""What every registered spotter does with recordings too short or too faceless to score."""

import cv2
import numpy as np
import pytest

from merkit.datasets.intervals import Interval
from merkit.spotting import TrainingVideo, list_spotters
from merkit.spotting import create_spotter as _create

SPOTTERS = [s.name for s in list_spotters()]
# 2 K + 1 (K = 0.5 s); 4 k + 1 (2k + 1 = 0.5 s); k_micro + 1 (k = half the 8-frame micro interval of TRAINING)
FEWEST_AT_30 = {"roi_flow": 2 * 15 + 1, "feature_difference": 4 * 7 + 1, "softnet": 4 + 1}
TRAINING = [Interval(30, 37, "micro"), Interval(50, 75, "macro")]


def faces(n: int, seed: int = 0) -> np.ndarray:
    """(n, 128, 128) uint8 textured faces whose middle band shifts by a pixel every frame."""
    base = cv2.GaussianBlur(np.random.default_rng(seed).integers(0, 255, (128, 128)).astype(np.uint8), (0, 0), 2)
    out = np.repeat(base[None], n, axis=0)
    for t in range(n):
        out[t, 90:120] = np.roll(base, t % 3, axis=1)[90:120]
    return out


def create_spotter(name: str):
    """The spotter ``name``; a learned one fitted first on one recording of ``faces`` annotated with ``TRAINING``."""
    spotter = _create(name)
    if spotter.learns:
        spotter.fit([TrainingVideo("train", "s1", 30.0, TRAINING, lambda s: s.signals(list(faces(90, seed=1)), 30.0))])
    return spotter


def test_every_spotter_knows_its_shortest_recording():
    assert sorted(FEWEST_AT_30) == sorted(SPOTTERS), "give the new spotter's fewest frames at 30 fps, by hand"
    for name, fewest in FEWEST_AT_30.items():
        assert create_spotter(name).fewest_frames(30.0) == fewest


@pytest.mark.parametrize("name", SPOTTERS)
def test_a_recording_shorter_than_the_windows_gets_no_interval_and_a_note(name):
    spotter = create_spotter(name)
    fewest = spotter.fewest_frames(30.0)
    for n in (1, 2, fewest - 1):
        result = spotter.spot(faces(n), 30.0)
        assert (
            result.intervals == [] and f"has {n} frame(s)" in result.note and f"needs at least {fewest}" in result.note
        )
        assert all(len(score) == n and not score.any() for score in result.scores.values())
    enough = spotter.spot(faces(fewest), 30.0)
    assert enough.note == "" and all(len(score) == fewest for score in enough.scores.values())
    longer = spotter.spot(faces(3 * fewest), 30.0)  # the macro window (2 s) is still longer than this: no crash
    assert longer.note == "" and all(len(score) == 3 * fewest for score in longer.scores.values())


@pytest.mark.parametrize("name", SPOTTERS)
def test_a_face_seen_only_briefly_is_scored_without_error(name):
    spotter = create_spotter(name)
    n = 3 * spotter.fewest_frames(30.0)
    usable = np.zeros(n, bool)
    usable[n // 2 : n // 2 + 3] = True  # three frames with a face, the rest without
    result = spotter.spot(faces(n), 30.0, usable)
    assert result.note == "" and all(len(score) == n for score in result.scores.values())
    assert all(0 <= i.onset <= i.offset < n for i in result.intervals)
