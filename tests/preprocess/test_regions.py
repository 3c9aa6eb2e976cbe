import numpy as np
import pytest

from merkit.errors import ConfigError
from merkit.preprocess.regions import face_regions, five_points, standard_points


def test_areas_are_the_squares_around_eyes_and_mouth_corners():
    """Rows from y, columns from x, each centre truncated and kept in [7, 21] at 28x28."""
    maps = np.random.default_rng(0).random((28, 28, 3)).astype(np.float32)
    points = np.array([[9.9, 11.2], [21.4, 3.0], [15.0, 17.0], [10.2, 25.0], [20.5, 22.2]])
    out = face_regions(maps, points)
    assert out.shape == (28, 28, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:14, :14], maps[4:18, 2:16])  # left eye (9, 11)
    np.testing.assert_array_equal(out[:14, 14:], maps[0:14, 14:28])  # right eye (21, 3 -> 7)
    np.testing.assert_array_equal(out[14:, :14], maps[14:28, 3:17])  # left mouth corner (10, 25 -> 21)
    np.testing.assert_array_equal(out[14:, 14:], maps[14:28, 13:27])  # right mouth corner (20, 22 -> 21)
    with pytest.raises(ConfigError, match="divisible by 4"):
        face_regions(maps[:26, :26], points)


def test_five_points_from_dlib_landmarks_and_the_standard_ones():
    landmarks = np.zeros((68, 2))
    landmarks[36:42] = [2.0, 4.0]
    landmarks[42:48] = [[6.0, 4.0], [8.0, 6.0]] * 3
    landmarks[30], landmarks[48], landmarks[54] = [5, 7], [3, 9], [7, 9]
    np.testing.assert_array_equal(five_points(landmarks), [[2, 4], [7, 5], [5, 7], [3, 9], [7, 9]])
    np.testing.assert_allclose(standard_points((28, 56))[3], [20.51087, 22.121233])
