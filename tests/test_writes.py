"""Nothing the user made is lost: atomic writes with the umask's mode, videos included; synth
rewrites its own folder whole; a damaged compiled kernel falls back to PyTorch."""

import os
import stat

import numpy as np
import pytest

from merkit.io.atomic import atomic_write_text
from merkit.io.video import read_video, write_video


def test_atomic_files_get_the_mode_the_umask_gives(tmp_path):
    before = os.umask(0o022)
    try:
        assert stat.S_IMODE(atomic_write_text(tmp_path / "a.json", "{}").stat().st_mode) == 0o644
        os.umask(0o007)
        write_video(tmp_path / "v.mkv", np.zeros((2, 8, 8, 3), np.uint8), 30)
        assert stat.S_IMODE((tmp_path / "v.mkv").stat().st_mode) == 0o660
    finally:
        os.umask(before)


def test_a_video_that_fails_half_way_leaves_nothing_under_its_name(tmp_path, monkeypatch):
    import av

    target = tmp_path / "out.mp4"
    write_video(target, np.full((3, 16, 16, 3), 7, np.uint8), 30)
    calls = {"n": 0}
    real = av.VideoFrame.from_ndarray

    def failing(array, format):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(array, format=format)

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", staticmethod(failing))
    with pytest.raises(RuntimeError, match="disk full"):
        write_video(target, np.zeros((5, 16, 16, 3), np.uint8), 30)
    assert read_video(target).shape == (3, 16, 16, 3), "the earlier video is still there, whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"], "no temporary file is left behind"


def test_synth_into_its_own_folder_again_leaves_no_old_clip(tmp_path):
    from merkit.synthetic import SynthConfig, write_casme2

    write_casme2(tmp_path / "s", SynthConfig(n_subjects=3, clips_per_subject=(2, 2), seed=1))
    write_casme2(tmp_path / "s", SynthConfig(n_subjects=2, clips_per_subject=(1, 1), seed=2))
    subjects = sorted(p.name for p in (tmp_path / "s" / "CASME2_RAW_selected").iterdir())
    assert subjects == ["sub01", "sub02"]
    assert all(len(list(p.iterdir())) == 1 for p in (tmp_path / "s" / "CASME2_RAW_selected").iterdir())
