from collections import Counter

import cv2
import numpy as np
import pytest

from merkit.errors import ConfigError
from merkit.synthetic.long_videos import (
    DIFFICULTIES,
    plan_long_video,
    read_truth,
    render_long_video,
    write_long_dataset,
)

FPS = 30.0


def frames_until(plan, last):
    """The rendered (H, W) grey frames 0 .. last."""
    out = []
    for t, frame in enumerate(render_long_video(plan)):
        out.append(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
        if t == last:
            return out
    return out


def test_hard_recordings_have_subtler_expressions_and_more_distractors():
    easy, hard = (plan_long_video(30, FPS, size=(240, 320), seed=7, difficulty=level) for level in ("easy", "hard"))
    count = lambda plan: Counter(e.kind for e in plan.events)  # noqa: E731
    assert count(easy) == {"micro": 3, "macro": 2, "blink": 2, "head_turn": 1, "talking": 1, "light": 1}
    assert count(hard) == {"micro": 3, "macro": 2, "blink": 3, "head_turn": 2, "talking": 2, "light": 1}
    for plan, level in ((easy, "easy"), (hard, "hard")):
        for e in plan.expressions:
            low, high = getattr(DIFFICULTIES[level], e.kind)
            assert low <= e.amplitude <= high
    with pytest.raises(ConfigError, match="difficulty 'extreme'; choose one of: 'easy', 'hard'"):
        plan_long_video(30, FPS, difficulty="extreme")


def apex_motion(plan):
    """Per micro-expression: the 99.5th percentile of the flow's magnitude from the frame before its
    onset to its apex, less the median (the head's own drift)."""
    out = []
    for e in plan.expressions:
        frames = frames_until(plan, e.apex)
        magnitude = np.linalg.norm(
            cv2.calcOpticalFlowFarneback(frames[e.onset - 1], frames[e.apex], None, 0.5, 3, 15, 3, 5, 1.2, 0), axis=2
        )
        out.append(np.percentile(magnitude, 99.5) - np.median(magnitude))
    return np.array(out)


def test_hard_micro_expressions_move_the_face_less():
    measured = {
        level: apex_motion(
            plan_long_video(8, FPS, size=(240, 320), micro=2, macro=0, distractors={}, seed=3, difficulty=level)
        )
        for level in ("easy", "hard")
    }
    # measured: easy 2.8 and 2.1 px, hard 1.1 and 1.2 px (amplitudes drawn from 1.5-2.5 and 0.6-1.2)
    assert (
        measured["hard"].max() < measured["easy"].min() and measured["hard"].mean() < 0.6 * measured["easy"].mean()
    ), measured


def test_hard_heads_sway_and_hard_frames_are_compressed(tmp_path):
    shifts = {}
    for level in ("easy", "hard"):  # the first second holds no event: only sway moves the head
        frames = np.float32(
            frames_until(
                plan_long_video(8, FPS, size=(240, 320), micro=1, macro=0, distractors={}, seed=3, difficulty=level), 29
            )
        )
        shifts[level] = max(np.hypot(*cv2.phaseCorrelate(frames[0], f)[0]) for f in frames[1:])
    # measured: easy 0.04 px (noise only), hard 1.6 px
    assert shifts["easy"] < 0.1 and shifts["hard"] > 0.8, shifts
    errors = {}
    for level in ("easy", "hard"):
        written = write_long_dataset(
            "casme2_long",
            tmp_path / level,
            subjects=1,
            videos=1,
            seconds=3,
            size=(120, 160),
            micro=1,
            macro=0,
            distractors={},
            seed=3,
            difficulty=level,
        )
        [(key, plan)] = read_truth(written.root).items()
        assert (
            plan == written.plans[key]
            and plan.noise == DIFFICULTIES[level].noise
            and plan.sway == DIFFICULTIES[level].sway
        )
        stored = cv2.imread(str(next((written.root / "rawpic").rglob("img1.jpg"))), cv2.IMREAD_GRAYSCALE).astype(float)
        errors[level] = np.abs(stored - frames_until(plan, 0)[0]).mean()
    # measured: JPEG at 95 differs from the rendered frame by 0.7 grey levels on average, at 60 by 1.7
    assert errors["hard"] > 2 * errors["easy"], errors
