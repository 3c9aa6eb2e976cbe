"""The tracking cache resumes, and never reuses what another merkit or tracker wrote, or a damaged checkpoint."""

import numpy as np
import pytest

from merkit.io.video import write_video
from merkit.preprocess import track_cache
from merkit.preprocess.track_cache import TrackCache, open_source, track_video
from merkit.synthetic.long_videos import plan_long_video, render_long_video


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A 3 s synthetic recording at 30 fps, and its cache tracked in one go."""
    plan = plan_long_video(3, 30.0, size=(240, 320), micro=1, macro=0, distractors={}, seed=4)
    path = tmp_path_factory.mktemp("track") / "short.mkv"
    write_video(path, np.stack(list(render_long_video(plan))), 30.0)
    whole = TrackCache(tmp_path_factory.mktemp("whole"))
    assert track_video(open_source(path), whole) == plan.n_frames
    return path, whole


def _same(a: TrackCache, b: TrackCache):
    for name in ("faces_path", "states_path", "shapes_path"):
        assert getattr(a, name).read_bytes() == getattr(b, name).read_bytes()


def test_a_damaged_checkpoint_is_discarded_with_a_warning_and_rebuilt(recording, tmp_path):
    path, whole = recording
    cache = TrackCache(tmp_path / "cache")
    assert track_video(open_source(path), cache, limit=70) == 70  # checkpointed at 60 frames
    assert cache.checkpoint_path.is_file()
    cache.checkpoint_path.write_bytes(cache.checkpoint_path.read_bytes()[:100])  # torn, as by a crash without a sync
    with pytest.warns(UserWarning, match="checkpoint.npz is damaged"):
        assert track_video(open_source(path), cache) == len(whole.states())
    _same(cache, whole)
    cache.done_path.write_text("{not json")  # a damaged record of a finished cache: tracked again, not an error
    assert track_video(open_source(path), cache) == len(whole.states())
    _same(cache, whole)


def test_a_cache_of_another_merkit_or_tracker_is_not_reused(recording, tmp_path, monkeypatch):
    path, whole = recording
    cache = TrackCache(tmp_path / "cache")
    track_video(open_source(path), cache)
    mtime = cache.states_path.stat().st_mtime_ns
    track_video(open_source(path), cache)
    assert cache.states_path.stat().st_mtime_ns == mtime, "the same merkit and tracker reuse it"
    monkeypatch.setattr(track_cache, "__version__", "0.0.1")  # as if an older merkit had written it
    track_video(open_source(path), cache)
    assert cache.states_path.stat().st_mtime_ns != mtime, "another version tracks again"
    _same(cache, whole)
    mtime = cache.states_path.stat().st_mtime_ns
    real = track_cache.FaceTracker
    monkeypatch.setattr(track_cache, "FaceTracker", lambda fps, size: real(fps, size=size, motion_limit=0.3))
    track_video(open_source(path), cache)
    assert cache.states_path.stat().st_mtime_ns != mtime, "another tracker setting tracks again"
