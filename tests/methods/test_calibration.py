"""Platt calibration of the SVM methods holds out whole subjects, as a bundle meets new people."""

import numpy as np
import pytest

from merkit.datasets import load
from merkit.methods import base, create_method
from merkit.preprocess.cache import Cache


def test_calibration_splits_hold_out_whole_subjects():
    y = np.array(["a", "b"] * 12)
    subjects = np.repeat([f"s{i}" for i in range(6)], 4)  # 6 subjects, each with 2 clips of each class
    splits = base.calibration_splits(y, subjects, seed=0)
    assert len(splits) == 5  # k = min(5, subjects per class = 6)
    held = np.concatenate([test for _, test in splits])
    assert sorted(held) == list(range(len(y))), "each sample held out once"
    for fit, test in splits:
        assert not set(subjects[fit]) & set(subjects[test])
    assert len(base.calibration_splits(y, np.repeat(["s0", "s1", "s2"], 8), seed=0)) == 3
    assert base.calibration_splits(y, np.repeat(["s0", "s1"], [2, 22]), seed=0) is not None
    assert base.calibration_splits(y, np.zeros(len(y)), seed=0) is None, "one subject: no split holds a class out"
    alone = np.array(["a", "a", "b", "b", "c", "c"])  # class c in one subject of three: held out, no fit part has it
    assert base.calibration_splits(alone, np.array(["s0", "s1", "s0", "s1", "s2", "s2"]), seed=0) is None


def test_a_feature_method_calibrates_on_subjects_not_clips(small_casme2, cache_dir, monkeypatch):
    data = load("casme2", root=small_casme2.root, labels="seed4")
    seen = []
    real = base.calibrated

    def spy(estimator, x, y, groups, seed):
        seen.append(np.asarray(groups))
        return real(estimator, x, y, groups, seed)

    monkeypatch.setattr(base, "calibrated", spy)
    create_method("lbptop_svm").fit(data, seed=0, cache=Cache(cache_dir))
    [groups] = seen
    assert list(groups) == list(data.groups), "one sample per clip, grouped by its subject"
    assert len(set(groups)) == len(set(data.groups)) < len(data)


@pytest.mark.parametrize("seed", [0, 1])
def test_calibrated_probabilities_sum_to_one(small_casme2, cache_dir, seed):
    data = load("casme2", root=small_casme2.root, labels="seed4")
    method = create_method("lbptop_svm").fit(data, seed=seed, cache=Cache(cache_dir))
    proba = method.predict_proba(data, cache=Cache(cache_dir))
    assert proba.shape == (len(data), len(data.classes)) and np.allclose(proba.sum(axis=1), 1)
