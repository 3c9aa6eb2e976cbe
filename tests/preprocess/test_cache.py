import numpy as np

from merkit.datasets import load
from merkit.preprocess.cache import Cache


def test_results_are_reused_until_the_clip_content_or_the_parameters_change(casme2_copy, tmp_path):
    clip = load("casme2", root=casme2_copy)[0]
    cache = Cache(tmp_path / "cache")
    calls = []

    def compute():
        calls.append(1)
        return np.arange(4.0) + len(calls)

    first, computed = cache.get("step", clip, {"a": 1}, compute)
    assert computed and np.array_equal(first, [1, 2, 3, 4])
    again, computed = Cache(tmp_path / "cache").get("step", clip, {"a": 1}, compute)  # a new process would do this
    assert not computed and np.array_equal(again, first) and len(calls) == 1
    assert cache.get("step", clip, {"a": 2}, compute)[1]  # other parameters
    frame = clip.frame_paths[3]
    frame.write_bytes(frame.read_bytes() + b"\0")  # same name, other content
    assert cache.get("step", clip, {"a": 1}, compute)[1]


def test_a_damaged_entry_is_computed_again(casme2_copy, tmp_path):
    clip = load("casme2", root=casme2_copy)[0]
    cache = Cache(tmp_path / "cache")
    cache.get("step", clip, {}, lambda: np.ones(3))
    cache.path("step", clip, {}).write_bytes(b"not an npy file")
    value, computed = cache.get("step", clip, {}, lambda: np.zeros(3))
    assert computed and np.array_equal(value, np.zeros(3))
    assert not list((tmp_path / "cache").rglob("*.tmp")), "atomic writes leave no temporary files"
