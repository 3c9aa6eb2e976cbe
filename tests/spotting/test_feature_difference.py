import numpy as np
import pytest

from merkit.datasets.intervals import Interval
from merkit.evaluation.spotting import spotting_scores
from merkit.spotting import create_spotter, list_spotters
from merkit.spotting.feature_difference import block_histograms, chi_square, contrast, peaks
from merkit.synthetic import Expression, FaceGeometry, Nuisance, synthesize_clip

PLAN = [
    ("neutral", 40),
    ("micro", 9),
    ("neutral", 50),
    ("macro", 45),
    ("neutral", 50),
    ("micro", 8),
    ("neutral", 60),
    ("micro", 10),
    ("neutral", 40),
]


def long_recording(seed: int, amplitude: float = 2.0):
    """A 30 fps recording of one synthetic face: neutral stretches, three micro-expressions of
    8-10 frames and one macro-expression of 45, sensor noise of 1 grey level throughout."""
    rng = np.random.default_rng(seed)
    geometry = FaceGeometry.random((144, 120), rng)
    frames, truth, t = [], [], 0
    for what, n in PLAN:
        strength = {"neutral": 0.0, "micro": amplitude, "macro": 1.5 * amplitude}[what]
        expression = Expression.random(["surprise", "happiness", "disgust"][len(truth) % 3], strength, rng)
        clip, *_ = synthesize_clip(
            geometry,
            expression,
            n_frames=n,
            onset=0,
            apex=n // 2,
            offset=n - 1,
            nuisance=Nuisance(0, 1.0, 0, 0),
            rng=rng,
        )
        frames.append(clip)
        if what != "neutral":
            truth.append(Interval(t, t + n - 1, what, apex=t + n // 2))
        t += n
    return np.concatenate(frames).mean(axis=3).astype(np.uint8), truth


def test_histograms_chi_square_and_peaks_by_hand():
    flat = np.full((3, 10, 10), 50, np.uint8)
    hist = block_histograms(flat, 2)
    assert hist.shape == (3, 4, 59) and np.all(hist[..., 57] == 1.0), "a flat patch is code 255, the last uniform bin"
    assert chi_square(np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])) == pytest.approx(
        1.0
    )  # 0.25/0.5 + 0 + 0.25/0.5
    assert peaks(np.array([0, 3, 1, 0, 5, 0, 4, 0.0]), 2.0, 3) == [1, 4]  # 6 is within 3 of the stronger 4
    still = np.repeat(hist[:1], 20, axis=0)
    assert np.all(contrast(still, 2, 2) == 0), "nothing changes, nothing is spotted"


def test_spots_micro_and_macro_expressions_of_a_long_recording():
    spotter = create_spotter("feature_difference")
    results = []
    for seed in range(3):
        frames, truth = long_recording(seed)
        spotting = spotter.spot(frames, 30.0)
        score, spotted = spotting.scores["micro"], spotting.intervals
        assert score.shape == (len(frames),) and all(i.kind in ("micro", "macro") for i in spotted)
        results.append((truth, spotted))
    s = spotting_scores(results)
    # measured: micro F1 0.538 (7 of 9 found, 17 spotted), macro F1 0.75 (3 of 3 found, 5 spotted)
    assert s["micro"]["recall"] >= 0.6 and s["micro"]["f1"] >= 0.4
    assert s["macro"]["recall"] == 1.0 and s["macro"]["f1"] >= 0.6


def test_windows_are_in_seconds():
    frames, _ = long_recording(0)
    slow = frames[np.arange(0, len(frames), 2)]  # the same recording at 15 fps
    spotted = create_spotter("feature_difference").spot(slow, 15.0).intervals
    assert any(i.kind == "macro" and i.onset <= 61 <= i.offset for i in spotted), (
        "the macro-expression (frames 49-72 at 15 fps)"
    )


def test_registry():
    assert [s.name for s in list_spotters()] == ["feature_difference", "roi_flow", "softnet"]
    assert [s.learns for s in list_spotters()] == [False, False, True]  # hand-crafted spotters run without training
    with pytest.raises(Exception, match="has no parameter q"):
        create_spotter("feature_difference", q=1)
    assert create_spotter("roi_flow", z="5", blink_ratio="2").z == 5.0  # text from --set takes the field's type
    with pytest.raises(Exception, match="z='many' of spotter 'roi_flow' should look like 6.0"):
        create_spotter("roi_flow", z="many")


def test_frames_without_a_face_take_a_neighbour_s_histograms():
    frames, _ = long_recording(0)
    spotter = create_spotter("feature_difference")
    faces = [None, None, *frames[2:10], None, *frames[11:20]]
    rows = spotter.signals(faces, 30.0)
    whole = spotter.signals(list(frames[:20]), 30.0)
    assert rows.shape == whole.shape == (20, 36 * 59)
    np.testing.assert_array_equal(rows[0], whole[2])  # before the first face: the first face's
    np.testing.assert_array_equal(rows[10], whole[9])  # a gap: the last face's
    np.testing.assert_array_equal(rows[11:], whole[11:])
    with pytest.raises(Exception, match="None of the 3 frames"):
        spotter.signals([None] * 3, 30.0)
