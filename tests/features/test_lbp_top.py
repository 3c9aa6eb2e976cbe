import numpy as np
import pytest

from merkit.errors import ConfigError
from merkit.features import lbp_top, uniform_mapping

# Bins of codes in the ascending list of the 58 uniform 8-bit codes (counted by hand, see below).
BIN = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 6: 5, 7: 6, 8: 7, 15: 10, 195: 38, 225: 43, 255: 57}


def planes(feature, n_blocks=1):
    return feature.reshape(n_blocks, 3, 59)


def test_uniform_mapping_orders_uniform_codes_and_pools_the_rest():
    mapping = uniform_mapping(8)
    assert mapping.max() == 58 and (mapping == 58).sum() == 256 - 58
    for code, expected in BIN.items():
        assert mapping[code] == expected
    assert mapping[5] == 58  # 00000101 has four transitions


def test_codes_on_each_plane_match_hand_derivation():
    # v = 100 t + 10 y + x; the single centre is (t, y, x) = (1, 1, 1).
    t, y, x = np.mgrid[0:3, 0:3, 0:3]
    volume = 100 * t + 10 * y + x
    # XY neighbours (x + cos, y - sin): p0 +1, p1 -9, p2 -10, p3 -11, p4 -1, p5 +9, p6 +10, p7 +11 -> bits 0,5,6,7 = 225
    # XT neighbours (x + cos, t + sin): p0 +1, p1 +101, p2 +100, p3 +99, p4..p7 negative -> bits 0-3 = 15
    # YT neighbours (y - sin, t + cos): p0 +100, p1 +90, p2 -10, p3 -110, p4 -100, p5 -90, p6 +10, p7 +110 -> 195
    hist = planes(lbp_top(volume, radius=(1, 1, 1), blocks=(1, 1, 1)))
    for plane, code in enumerate((225, 15, 195)):
        expected = np.zeros(59)
        expected[BIN[code]] = 1.0
        np.testing.assert_array_equal(hist[0, plane], expected)


def test_bilinear_interpolates_and_floors_the_neighbour():
    # Centre 10.5 at (y, x) = (1, 1); p1 samples (x + 0.7071, y - 0.7071): corners (0, 1), (0, 2), (1, 1), (1, 2)
    # with weights (1-tx)(1-ty), tx(1-ty), (1-tx)ty, tx ty, tx = 0.7071, ty = 0.2929.
    frame = np.zeros((3, 3))
    frame[1, 1] = 10.5
    frame[0, 2] = 20.0
    # interpolated = 0.5 * 20 + 0.2929**2 * 10.5 = 10.90: >= 10.5, but floor(10.90) = 10 < 10.5 -> bit 1 is 0.
    volume = np.stack([frame] * 3)
    bilinear = planes(lbp_top(volume, radius=(1, 1, 1), blocks=(1, 1, 1), interpolation="bilinear"))[0, 0]
    nearest = planes(lbp_top(volume, radius=(1, 1, 1), blocks=(1, 1, 1), interpolation="nearest"))[0, 0]
    # nearest reads (x+1, y-1) = 20 >= 10.5: only bit 1 set -> code 2; bilinear: no bit set -> code 0.
    assert nearest[BIN[2]] == 1.0
    assert bilinear[BIN[0]] == 1.0


def test_bilinear_reads_grid_neighbours_exactly():
    # cos(pi/2) is 6e-17, not 0: without snapping, a flat volume's neighbours interpolate to
    # 7 * (1 - 1e-16), and diagonal weights summing to 1 - 1e-16 give 6.999...; both floor to 6 and
    # would clear bits. Every neighbour equals the centre: code 255 on every plane.
    hist = planes(lbp_top(np.full((9, 9, 9), 7.0), radius=(2, 2, 2), blocks=(1, 1, 1), interpolation="bilinear"))
    assert np.all(hist[0, :, BIN[255]] == 1.0)


def test_blocks_are_cut_by_floor_division_and_ordered_slice_row_column():
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 256, (9, 8, 7)).astype(float)  # blocks of 4 frames x 4 x 3 px; frame 8, column 6 dropped
    volume[4:8, 0:4, 3:6] = 50.0  # time slice 1, row 0, column 1 -> block (1 * 2 + 0) * 2 + 1 = 5
    hist = planes(lbp_top(volume, radius=(1, 1, 1), blocks=(2, 2, 2)), n_blocks=8)
    assert np.all(hist[5, :, BIN[255]] == 1.0)  # only neighbours inside the flat block were read
    assert not any(np.all(hist[b, :, BIN[255]] == 1.0) for b in range(8) if b != 5)
    changed = volume.copy()
    changed[:, :, 6] = rng.integers(0, 256, (9, 8))
    changed[8] = 0
    np.testing.assert_array_equal(lbp_top(changed, radius=(1, 1, 1), blocks=(2, 2, 2)), hist.ravel())


def test_a_change_inside_one_block_changes_only_that_block():
    rng = np.random.default_rng(1)
    volume = rng.integers(0, 256, (10, 12, 12)).astype(float)
    before = planes(lbp_top(volume, radius=(1, 1, 1), blocks=(2, 2, 1)), 4)
    volume[5, 8, 2] += 100  # row 1, column 0 -> block 2
    after = planes(lbp_top(volume, radius=(1, 1, 1), blocks=(2, 2, 1)), 4)
    assert not np.array_equal(before[2], after[2])
    for b in (0, 1, 3):
        np.testing.assert_array_equal(before[b], after[b])


def test_shape_and_normalisation_of_a_face_sized_clip():
    volume = np.random.default_rng(2).integers(0, 256, (30, 128, 128))
    feature = lbp_top(volume, radius=(1, 1, 4), blocks=(5, 5, 1))
    assert feature.shape == (25 * 3 * 59,)
    np.testing.assert_allclose(planes(feature, 25).sum(axis=2), 1.0)


def test_blocks_too_small_for_the_radius_are_refused():
    with pytest.raises(ConfigError, match="leave no centre"):
        lbp_top(np.zeros((8, 20, 20)), radius=(1, 1, 4), blocks=(2, 2, 1))
    with pytest.raises(ConfigError, match="interpolation"):
        lbp_top(np.zeros((9, 9, 9)), interpolation="cubic", blocks=(1, 1, 1))
    with pytest.raises(ConfigError, match="3-dimensional"):
        lbp_top(np.zeros((9, 9)))
