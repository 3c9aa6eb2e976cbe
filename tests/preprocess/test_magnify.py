import numpy as np
import pytest

from merkit.errors import ConfigError
from merkit.preprocess.magnify import (
    NTSC,
    _to_rgb,
    laplacian_pyramid,
    level_gains,
    magnify_eulerian,
    pyramid_height,
    reconstruct,
)

H = W = 96
Y, X = np.mgrid[0:H, 0:W].astype(float)


def blob(dx, sigma=5.0):
    return 0.25 + 0.5 * np.exp(-((X - 48 - dx) ** 2 + (Y - 48) ** 2) / (2 * sigma**2))


def shift_of(image, reference):
    """Horizontal displacement of ``image`` against ``reference``, to first order."""
    g = np.gradient(reference, axis=1)
    return -float(((image - reference) * g).sum() / (g * g).sum())


def test_pyramid_height_and_exact_reconstruction():
    assert pyramid_height((240, 320)) == 7  # 240 -> 120 -> 60 -> 30 -> 15 -> 7 -> 3 (< 5)
    assert pyramid_height((64, 64)) == 5
    image = np.random.default_rng(0).random((61, 83, 3))
    levels = laplacian_pyramid(image, pyramid_height((61, 83)))
    assert [level.shape[:2] for level in levels] == [(61, 83), (31, 42), (16, 21), (8, 11), (4, 6)]
    np.testing.assert_allclose(reconstruct(levels), image, atol=1e-12)


def test_level_gains_follow_the_lambda_bound():
    # 64 x 64: lambda = sqrt(2) 64 / 3 = 30.17, delta = 16 / 8 / 11 = 0.1818; from the residual
    # (gain 0) down: (15.08 / 1.4545 - 1) 2 = 18.7 -> alpha; (7.54 / 1.4545 - 1) 2 = 8.37;
    # (3.77 / 1.4545 - 1) 2 = 3.185; finest level 0.
    np.testing.assert_allclose(
        level_gains((64, 64), 5, alpha=10, lambda_c=16, exaggeration=2), [0, 3.18545, 8.37090, 10, 0], atol=1e-4
    )


def test_subpixel_motion_is_amplified_by_alpha_times_the_iir_response():
    d = 0.02
    clip = np.stack([blob(0), blob(d), blob(d), blob(d)])
    out = magnify_eulerian(clip, lambda_c=1.0).astype(float)  # lambda_c 1: every middle level at alpha
    np.testing.assert_array_equal(out[0], clip[0].astype(np.float32))
    # a step through the two low-passes: (1 - r2)^t - (1 - r1)^t = 0.35, then 0.5425
    for t, response in ((1, 0.35), (2, 0.95**2 - 0.6**2)):
        expected = d * (1 + 10 * response)
        assert 0.9 * expected < shift_of(out[t], clip[0]) <= expected  # < 10% sits in the unamplified levels
    bounded = magnify_eulerian(clip).astype(float)  # lambda_c 16 holds the coarse levels below alpha
    assert d < shift_of(bounded[1], clip[0]) < shift_of(out[1], clip[0])


def test_the_finest_level_and_the_residual_are_left_alone():
    texture = lambda dx: 0.5 + 0.1 * np.sin(2 * np.pi * (X - dx) / 2.5)  # noqa: E731  (period 2.5 px: finest band)
    clip = np.stack([texture(0), texture(0.05)])
    out = magnify_eulerian(clip, lambda_c=1.0).astype(float)
    inner = (slice(8, -8), slice(8, -8))
    ratio = np.abs(out[1] - out[0])[inner].mean() / np.abs(clip[1] - clip[0])[inner].mean()
    assert abs(ratio - 1) < 0.02
    flat = np.stack([np.full((H, W), 0.4), np.full((H, W), 0.41)])  # a brightness change: residual only
    np.testing.assert_allclose(magnify_eulerian(flat, lambda_c=1.0)[1], 0.41, atol=1e-6)
    still = np.stack([blob(0)] * 5)
    np.testing.assert_allclose(magnify_eulerian(still), still.astype(np.float32), atol=1e-6)


def test_colour_follows_ntsc2rgb():
    rgb = np.array([[1.2, 0.6, -0.1]])
    yiq = rgb @ np.linalg.inv(NTSC).T
    np.testing.assert_allclose(_to_rgb(yiq), [[1.0, 0.5, 0.0]])  # negatives to 0, then divided by the largest
    grey_rgb = np.repeat(np.stack([blob(0), blob(0.02), blob(0.02)])[..., None], 3, axis=3)
    out = magnify_eulerian(grey_rgb, lambda_c=1.0)
    np.testing.assert_allclose(out[..., 0], out[..., 2], atol=1e-6)  # no chroma appears from grey


def test_ideal_filter_amplifies_only_its_band():
    fps, t = 100.0, 40
    shifts = 0.02 * np.sin(2 * np.pi * 5.0 * np.arange(t) / fps)  # 5 Hz motion
    clip = np.stack([blob(s) for s in shifts])
    inside = magnify_eulerian(clip, lambda_c=1.0, temporal="ideal", band=(3.0, 8.0), fps=fps).astype(float)
    outside = magnify_eulerian(clip, lambda_c=1.0, temporal="ideal", band=(20.0, 30.0), fps=fps).astype(float)
    peak = int(np.argmax(shifts))
    assert shift_of(inside[peak], clip[0]) > 5 * shifts[peak]
    assert abs(shift_of(outside[peak], clip[0]) - shifts[peak]) < 0.2 * shifts[peak]
    with pytest.raises(ConfigError, match="band"):
        magnify_eulerian(clip, temporal="ideal")


@pytest.mark.parametrize("shape", [(12, 61, 83, 3), (9, 240, 320, 3)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_the_threaded_float32_path_equals_the_float64_reference(shape, dtype):
    """Filtering the RGB frames in time before the pyramid, and the colour conversion as one
    matrix on the change, are the reference's per-level filtering in YIQ (all linear); float32
    and OpenCV's pyramid routines stay within 5e-7 of it (1.2e-7 to 1.8e-7 measured), at odd
    sides (61 x 83: the explicit expansion) and even ones (pyrUp), on uint8 and float32 clips."""
    rng = np.random.default_rng(0)
    clip = np.clip(rng.normal(128, 40, shape[1:]) + rng.normal(0, 3, shape), 0, 255).astype(np.uint8)
    scale = 255 if dtype == np.uint8 else 1
    clip = clip if dtype == np.uint8 else (clip / 255).astype(np.float32)
    reference = magnify_eulerian(clip, alpha=10, lambda_c=16, exaggeration=2, reference=True)
    for threads in (1, 2):
        fast = magnify_eulerian(clip, alpha=10, lambda_c=16, exaggeration=2, threads=threads)
        assert fast.dtype == np.float32 and np.abs(fast - reference).max() < 5e-7
    assert np.abs(reference[1:] - clip[1:] / scale).max() > 0.01, "something was magnified"
    assert (reference[1:] == 1).any() and (reference[1:] == 0).any(), "ntsc2rgb's scaling and clipping are exercised"
    np.testing.assert_array_equal(fast[0], reference[0])  # frame 0 as it came, to the bit


def test_a_strided_float64_clip_takes_the_fast_path_alike():
    """A clip that is a view (not contiguous) and float64: the same result as its contiguous copy,
    within 5e-7 of the reference (the signal is centred in float64 before its float32 state); a
    clip of another dtype (int64 and float16 here: OpenCV's split and numba refuse them) as its
    float64 values."""
    rng = np.random.default_rng(1)
    clip = np.clip(rng.normal(0.5, 0.15, (40, 6, 3, 52)) + rng.normal(0, 0.01, (40, 6, 3, 52)), 0, 1).transpose(
        1, 0, 3, 2
    )[:, ::-1]
    fast = magnify_eulerian(clip, threads=2)
    np.testing.assert_array_equal(fast, magnify_eulerian(np.ascontiguousarray(clip), threads=2))
    assert np.abs(fast - magnify_eulerian(clip, reference=True)).max() < 5e-7
    binary = (clip > 0.5).astype(np.float64)
    for dtype in (np.int64, np.float16):
        np.testing.assert_array_equal(magnify_eulerian(binary.astype(dtype)), magnify_eulerian(binary))
