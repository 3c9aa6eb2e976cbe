import numpy as np
import pytest

from merkit.errors import ConfigError
from merkit.io.video import iter_video_timed, read_video, write_video
from merkit.preprocess.track_cache import TrackCache, open_source, track_video
from merkit.synthetic.long_videos import plan_long_video, render_long_video


@pytest.fixture(scope="module")
def portrait():
    """Ten upright portrait frames (320 x 240) of a synthetic face."""
    plan = plan_long_video(2, 30.0, size=(320, 240), micro=0, macro=0, distractors={}, seed=4)
    return np.stack(list(render_long_video(plan)))[:10]


@pytest.mark.parametrize("turns", [1, 3])
def test_a_sideways_recording_is_turned_upright_before_tracking(portrait, turns, tmp_path):
    path = tmp_path / "phone.mkv"
    stored = np.stack([np.rot90(f, -turns) for f in portrait])  # the sensor's landscape frames, turned clockwise
    assert stored.shape[1:3] == (240, 320)
    write_video(path, stored, 30.0, rotation=90 * turns)  # the display matrix turns them back
    np.testing.assert_array_equal(read_video(path), portrait)  # lossless: exactly the upright frames
    cache = TrackCache(tmp_path / "cache")
    assert track_video(open_source(path), cache) == 10
    assert (cache.states()[:, 0] == 1).all(), "the face is found in every upright frame"
    plain = tmp_path / "untagged.mkv"
    write_video(plain, stored, 30.0)
    assert next(iter_video_timed(plain))[1].shape == (240, 320, 3)  # without the tag the frames stay as stored


def test_each_frame_keeps_its_own_timestamp_at_a_variable_frame_rate(portrait, tmp_path):
    times = np.array([0.0, 0.033, 0.070, 0.100, 0.180, 0.200, 0.250, 0.400, 0.433, 0.466])  # a webcam's uneven frames
    for name in ("vfr.mkv", "vfr.mp4"):
        write_video(tmp_path / name, portrait, 30.0, times=times + 1.5)  # a stream starting at 1.5 s
        read = [t for t, _ in iter_video_timed(tmp_path / name)]
        np.testing.assert_allclose(read, times, atol=1e-3)  # from the first frame, not index / average rate
    cache = TrackCache(tmp_path / "cache")
    track_video(open_source(tmp_path / "vfr.mkv"), cache)
    np.testing.assert_allclose(cache.times(), times, atol=1e-3)
    with pytest.raises(ConfigError, match="multiple of 90"):
        write_video(tmp_path / "bad.mkv", portrait, 30.0, rotation=45)
