import numpy as np
import pytest

from merkit.preprocess.tracking import FaceTracker, eye_aspect_ratio
from merkit.synthetic.long_videos import Event, LongVideoPlan, render_long_video


def test_eye_aspect_ratio_by_hand():
    landmarks = np.zeros((68, 2))
    for start in (36, 42):  # an eye 4 wide, lids 1 and 3 apart: (1 + 3) / (2 * 4) = 0.5
        landmarks[start : start + 6] = [(0, 0), (1, -0.5), (3, -1.5), (4, 0), (3, 1.5), (1, 0.5)]
    assert eye_aspect_ratio(landmarks) == pytest.approx(0.5)


def plan(events, seconds=6.0, fps=30.0):
    return LongVideoPlan(fps, int(seconds * fps), (240, 320), tuple(events), seed=4)


def test_a_head_turn_is_flagged_and_a_still_face_is_not():
    turn = Event("head_turn", 90, 105, 120)
    tracker = FaceTracker(30.0)
    seen = [tracker.update(f) for f in render_long_video(plan([turn]))]
    assert all(s.found for s in seen)
    moving = [s.index for s in seen if "head_motion" in s.flags]
    assert moving and all(85 <= t <= 135 for t in moving), moving  # measured: frames 101-118
    assert not any("head_motion" in s.flags for s in seen[:85])
    realigned = [s.index for s in seen if "realigned" in s.flags]
    assert realigned[0] == 0 and all(90 <= t <= 135 for t in realigned[1:])  # the reference moves with the head only
    assert seen[50].face.shape == (128, 128) and seen[50].face.dtype == np.uint8


def test_frames_without_a_face_are_flagged_and_the_track_recovers():
    frames = list(render_long_video(plan([], seconds=3)))
    for t in range(30, 45):
        frames[t] = np.full_like(frames[t], 128)  # the face is gone for half a second
    tracker = FaceTracker(30.0)
    seen = [tracker.update(f) for f in frames]
    assert [s.index for s in seen if not s.found] == list(range(30, 45))
    assert all(s.flags == ("no_face",) for s in seen[30:45])
    assert seen[45].found and "realigned" in seen[45].flags


def test_a_restored_tracker_continues_exactly():
    frames = list(render_long_video(plan([Event("micro", 40, 45, 50, "happiness", (12,), 2.0)], seconds=3)))
    tracker = FaceTracker(30.0)
    whole = [tracker.update(f) for f in frames]
    first = FaceTracker(30.0)
    for f in frames[:37]:
        first.update(f)
    second = FaceTracker(30.0)
    second.restore({k: v.copy() for k, v in first.state().items()})
    rest = [second.update(f) for f in frames[37:]]
    for a, b in zip(whole[37:], rest):
        assert a.index == b.index and a.flags == b.flags and np.array_equal(a.face, b.face)
