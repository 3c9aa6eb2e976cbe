import numpy as np

from merkit.preprocess.temporal import KERNELS
from merkit.training.augment import KEEP_RATIOS, apply_version, jitter_versions

MATLAB_ALIASES = {("bilinear", "triangle"), ("bicubic", "cubic")}


def test_48_versions_with_frames_kept_in_order():
    versions = jitter_versions(40, np.random.default_rng(0))
    assert len(versions) == 48 == len({(v.ratio, v.kernel) for v in versions})
    for v in versions:
        assert list(v.frames) == sorted(set(v.frames)), "kept frames stay in temporal order"
        assert len(v.frames) == round(v.ratio * 40)
    assert {v.ratio for v in versions} == set(KEEP_RATIOS) and {v.kernel for v in versions} == set(KERNELS)


def test_versions_are_distinct_but_for_matlabs_aliases_at_full_length():
    clip = np.random.default_rng(1).random((40, 4, 4, 3))
    versions = jitter_versions(40, np.random.default_rng(2))
    out = [apply_version(clip, v, 30) for v in versions]
    assert all(o.shape == (30, 4, 4, 3) for o in out)
    same = {
        (versions[i].kernel, versions[j].kernel, versions[i].ratio)
        for i in range(48)
        for j in range(i + 1, 48)
        if np.allclose(out[i], out[j])
    }
    assert {(a, b) for a, b, _ in same} <= MATLAB_ALIASES | {(b, a) for a, b in MATLAB_ALIASES}
    assert all(ratio == 1.0 for _, _, ratio in same)
    assert len({o.tobytes() for o in out}) == 48 - len(same)


def test_versions_are_reproducible_from_the_seed():
    a = jitter_versions(33, np.random.default_rng(5))
    b = jitter_versions(33, np.random.default_rng(5))
    assert a == b and a != jitter_versions(33, np.random.default_rng(6))
