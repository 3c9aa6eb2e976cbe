import numpy as np
import pytest

from merkit.errors import ConfigError
from merkit.preprocess.temporal import tim


def test_tim_of_two_frames_follows_the_first_basis_curve():
    # n = 2: v_1(pos) = sin(pos * pi + pi / 4); the frames sit at pos 0.5 and 1 (v = +-0.7071),
    # so a clip [0, 4] is 2 - 2 * v_1(pos) / 0.7071.
    out = tim(np.array([0.0, 4.0]), 5)
    expected = [0.0, 2 - 2 * np.sin(0.625 * np.pi + np.pi / 4) / np.sin(0.75 * np.pi), 2.0,
                2 - 2 * np.sin(0.875 * np.pi + np.pi / 4) / np.sin(0.75 * np.pi), 4.0]
    np.testing.assert_allclose(out, expected, atol=1e-12)
    np.testing.assert_allclose(out[1], 0.9176, atol=1e-4)


def test_tim_returns_the_clip_when_the_length_is_kept():
    clip = np.random.default_rng(0).random((7, 5, 4, 3))
    np.testing.assert_allclose(tim(clip, 7), clip, atol=1e-10)


def test_tim_keeps_the_first_and_last_frames_and_constants():
    clip = np.random.default_rng(1).random((9, 6, 6))
    out = tim(clip, 20)
    assert out.shape == (20, 6, 6)
    np.testing.assert_allclose(out[0], clip[0], atol=1e-10)
    np.testing.assert_allclose(out[-1], clip[-1], atol=1e-10)
    np.testing.assert_allclose(tim(np.full((5, 3, 3), 2.5), 11), 2.5)


def test_tim_needs_two_frames():
    with pytest.raises(ConfigError, match="at least 2 frames"):
        tim(np.zeros((1, 4, 4)), 10)
