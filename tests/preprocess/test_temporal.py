import numpy as np
import pytest

from merkit.errors import ConfigError
from merkit.preprocess.temporal import tim


def test_tim_of_two_frames_follows_the_first_basis_curve():
    # n = 2: v_1(pos) = sin(pos * pi + pi / 4); the frames sit at pos 0.5 and 1 (v = +-0.7071),
    # so a clip [0, 4] is 2 - 2 * v_1(pos) / 0.7071.
    out = tim(np.array([0.0, 4.0]), 5)
    expected = [
        0.0,
        2 - 2 * np.sin(0.625 * np.pi + np.pi / 4) / np.sin(0.75 * np.pi),
        2.0,
        2 - 2 * np.sin(0.875 * np.pi + np.pi / 4) / np.sin(0.75 * np.pi),
        4.0,
    ]
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


from merkit.preprocess.temporal import KERNELS, resize_time, resize_weights  # noqa: E402


@pytest.mark.parametrize("method", list(KERNELS))
def test_resize_time_keeps_a_clip_of_the_same_length(method):
    clip = np.random.default_rng(0).random((9, 4, 5, 3))
    np.testing.assert_allclose(resize_time(clip, 9, method=method), clip, atol=1e-12)
    as_bytes = (clip * 255).astype(np.uint8)
    np.testing.assert_array_equal(resize_time(as_bytes, 9, method=method), as_bytes)


def test_bicubic_growth_mirrors_or_clamps_at_the_start():
    # 3 -> 6 frames: u(1) = 0.75 reads indices -1, 0, 1, 2 with cubic weights -3, 29, 111, -9 (/128);
    # mirroring sends -1 -> 2 and 0 -> 1, clamping sends both to 1.
    np.testing.assert_allclose(resize_weights(3, 6, method="bicubic")[0] * 128, [140, -12, 0], atol=1e-12)
    np.testing.assert_allclose(
        resize_weights(3, 6, method="bicubic", boundary="clamp")[0] * 128, [137, -9, 0], atol=1e-12
    )


def test_shrinking_is_antialiased_except_for_nearest():
    # 4 -> 2: u = 1.5, 3.5; the triangle widens to 4 and halves: weights 1/8, 3/8, 3/8, 1/8 around u,
    # the index 0 mirrored onto 1.
    np.testing.assert_allclose(
        resize_weights(4, 2, method="triangle"), [[0.5, 0.375, 0.125, 0], [0, 0.125, 0.375, 0.5]]
    )
    np.testing.assert_allclose(resize_weights(4, 2, method="box"), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    np.testing.assert_array_equal(resize_time(np.array([1.0, 2.0, 3.0, 4.0]), 2, method="nearest"), [2.0, 4.0])
    np.testing.assert_array_equal(resize_time(np.array([1.0, 2.0]), 4, method="nearest"), [1.0, 1.0, 2.0, 2.0])


def test_the_eight_names_give_six_results_when_shrinking_and_five_when_growing():
    clip = np.random.default_rng(1).random((11, 3, 3))
    for target, same in ((7, ()), (30, ("box",))):  # growing, box is not antialiased: it is nearest
        out = {m: resize_time(clip, target, method=m) for m in KERNELS}
        np.testing.assert_array_equal(out["bilinear"], out["triangle"])
        np.testing.assert_array_equal(out["bicubic"], out["cubic"])
        for m in same:
            np.testing.assert_array_equal(out[m], out["nearest"])
        distinct = {m for m in KERNELS if m not in ("triangle", "cubic", *same)}
        assert all(not np.allclose(out[a], out[b]) for a in distinct for b in distinct if a < b)
        for m in KERNELS:
            np.testing.assert_allclose(resize_weights(11, target, method=m).sum(axis=1), 1.0)


def test_uint8_clips_are_rounded_half_away_from_zero():
    # 2 -> 4 with bilinear: frames 2 and 3 are 0.75 a + 0.25 b and 0.25 a + 0.75 b.
    out = resize_time(np.array([[10], [12]], dtype=np.uint8), 4, method="bilinear")
    assert out.dtype == np.uint8 and out[:, 0].tolist() == [10, 11, 12, 12]  # 10.5 -> 11, 11.5 -> 12


def test_resize_time_checks_its_arguments():
    with pytest.raises(ConfigError, match="Unknown resampling method 'spline'.*lanczos3"):
        resize_time(np.zeros((4, 2)), 3, method="spline")
    with pytest.raises(ConfigError, match="Unknown boundary"):
        resize_time(np.zeros((4, 2)), 3, boundary="wrap")


@pytest.mark.parametrize("method,n", [("lanczos2", 2), ("lanczos3", 3)])
@pytest.mark.parametrize("t_in,t_out", [(5, 2), (4, 9)])
def test_lanczos_weights_follow_matlabs_formula(method, n, t_in, t_out):
    """A plain loop over MATLAB's contributions(), one output at a time, from the formula."""
    eps = np.finfo(float).eps
    scale = t_out / t_in
    width = 2 * n / scale if scale < 1 else 2 * n
    expected = np.zeros((t_out, t_in))
    for u_index in range(1, t_out + 1):
        u = u_index / scale + 0.5 * (1 - 1 / scale)
        left = int(np.floor(u - width / 2))
        taps = []
        for j in range(left, left + int(np.ceil(width)) + 2):
            x = (u - j) * (scale if scale < 1 else 1)
            k = (np.sin(np.pi * x) * np.sin(np.pi * x / n) + eps) / (np.pi**2 * x**2 / n + eps) * (abs(x) < n)
            taps.append((j, k * (scale if scale < 1 else 1)))
        total = sum(k for _, k in taps)
        mirror = list(range(1, t_in + 1)) + list(range(t_in, 0, -1))
        for j, k in taps:
            expected[u_index - 1, mirror[(j - 1) % len(mirror)] - 1] += k / total
    np.testing.assert_allclose(resize_weights(t_in, t_out, method=method), expected, atol=1e-12)


def test_interpolate_time_is_linear_between_kept_ends():
    from merkit.preprocess.temporal import interpolate_time

    clip = np.arange(4 * 2 * 3, dtype=np.uint8).reshape(4, 2, 3) * 10  # frame t = 60 t + pixel offset
    out = interpolate_time(clip, 7)  # positions 0, 0.5, 1, ..., 3
    np.testing.assert_allclose(out[:, 0, 0], [0, 30, 60, 90, 120, 150, 180])
    np.testing.assert_allclose(out[0], clip[0])
    np.testing.assert_allclose(out[-1], clip[-1])
    shrunk = interpolate_time(np.arange(10.0)[:, None], 4)[:, 0]  # positions 0, 3, 6, 9: no smoothing when shrinking
    np.testing.assert_allclose(shrunk, [0, 3, 6, 9])
    with pytest.raises(ConfigError, match="at least 2"):
        interpolate_time(clip, 1)
