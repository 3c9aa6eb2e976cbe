import numpy as np
import pytest

from merkit.datasets.base import ClipDataset, make_metadata
from merkit.errors import ConfigError
from merkit.evaluation.protocols import make_protocol, shared_subjects


def toy_dataset(subjects_per_dataset=(("casme2", 6), ("samm", 3)), clips=4):
    rows = []
    for dataset, n in subjects_per_dataset:
        for s in range(n):
            for c in range(clips):
                rows.append(
                    {
                        "dataset": dataset,
                        "subject": f"s{s}",
                        "clip": f"c{c}",
                        "emotion": "x",
                        "label": ["p", "q"][c % 2],
                        "onset": 0,
                        "apex": None,
                        "offset": 1,
                        "n_frames": 2,
                        "fps": 100.0,
                        "source": "",
                    }
                )
    return ClipDataset("toy", make_metadata(rows), [()] * len(rows), ("p", "q"), labels="original")


def test_loso_tests_each_namespaced_subject_once_and_never_trains_on_it():
    data = toy_dataset()
    folds = make_protocol("loso").folds(data)
    assert len(folds) == 9  # subject s0 of casme2 and s0 of samm are different people
    seen = []
    for fold in folds:
        test_subjects = set(data.groups[fold.test])
        assert test_subjects == {fold.name}
        assert not test_subjects & set(data.groups[fold.train])
        assert len(fold.train) + len(fold.test) == len(data)
        seen.append(fold.name)
    assert sorted(seen) == sorted(set(data.groups))


def test_random_kfold_is_flagged_for_shared_subjects_and_subject_kfold_is_not():
    data = toy_dataset()
    kfold = make_protocol("kfold", n_splits=5, seed=0).folds(data)
    assert sum(bool(shared_subjects(data, f)) for f in kfold) >= 4
    grouped = make_protocol("subject_kfold", n_splits=3, seed=0).folds(data)
    assert all(not shared_subjects(data, f) for f in grouped)
    assert sorted(np.concatenate([f.test for f in grouped])) == list(range(len(data)))


def test_leave_one_dataset_out():
    data = toy_dataset()
    folds = make_protocol("lodo").folds(data)
    assert [f.name for f in folds] == ["casme2", "samm"]
    for f in folds:
        assert set(data.metadata["dataset"].iloc[f.test]) == {f.name}
        assert f.name not in set(data.metadata["dataset"].iloc[f.train])


def test_protocol_errors_name_the_problem():
    with pytest.raises(ConfigError, match="Unknown protocol 'leave_one_out'.*loso"):
        make_protocol("leave_one_out")
    with pytest.raises(ConfigError, match="needs at least as many subjects"):
        make_protocol("subject_kfold", n_splits=20).folds(toy_dataset())
    with pytest.raises(ConfigError, match="groups"):
        next(make_protocol("loso").split(np.zeros(4)))
