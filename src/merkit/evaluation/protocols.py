"""Evaluation protocols as scikit-learn-style splitters.

Each splitter yields ``(train_indices, test_indices)`` from ``split(X, y, groups)`` like
scikit-learn's, so it composes with scikit-learn; ``folds(dataset)`` names the folds and picks
the groups (subjects namespaced by dataset, or datasets) from a :class:`ClipDataset`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut

from merkit.errors import ConfigError, check_choice


@dataclass(frozen=True)
class Fold:
    """One fold: its name, and positions of its training and test clips in the dataset."""

    index: int
    name: str
    train: np.ndarray
    test: np.ndarray


class Protocol:
    """Base splitter. ``group_by`` is the metadata the groups come from: 'subject', 'dataset' or None."""

    group_by: str | None = None

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return sum(1 for _ in self.split(X, y, groups))

    def _groups(self, dataset) -> np.ndarray | None:
        if self.group_by == "subject":
            return dataset.groups
        if self.group_by is not None and self.group_by in dataset.metadata:  # "dataset", or a release's "split"
            return dataset.metadata[self.group_by].to_numpy()
        return None

    def fold_name(self, index: int, test: np.ndarray, groups: np.ndarray | None) -> str:
        return f"fold{index + 1}"

    def folds(self, dataset) -> list[Fold]:
        """The folds over ``dataset``, named and numbered."""
        groups = self._groups(dataset)
        return [
            Fold(i, self.fold_name(i, test, groups), np.asarray(train), np.asarray(test))
            for i, (train, test) in enumerate(
                self.split(np.zeros(len(dataset)), None if dataset.multilabel else dataset.y, groups)
            )
        ]


class LeaveOneSubjectOut(Protocol):
    """LOSO: each fold tests one subject and trains on all others (the field's standard)."""

    group_by = "subject"

    def split(self, X, y=None, groups=None):
        if groups is None:
            raise ConfigError("The 'groups' parameter should hold each clip's subject for LOSO.")
        yield from LeaveOneGroupOut().split(X, y, groups)

    def fold_name(self, index, test, groups):
        return str(groups[test[0]])


class LeaveOneDatasetOut(LeaveOneSubjectOut):
    """Cross-dataset: each fold tests one dataset and trains on the others."""

    group_by = "dataset"


class GivenSplits(Protocol):
    """The splits a release gives (DFME: train, testA, testB): each fold trains on the clips of
    ``train`` and tests those of one other split, the folds named by the test split."""

    group_by = "split"

    def __init__(self, train: str = "train"):
        self.train = train

    def split(self, X, y=None, groups=None):
        if groups is None:
            raise ConfigError(
                "The 'given' protocol needs each clip's split: a dataset released in splits (dfme) has them."
            )
        groups = np.asarray(groups)
        train = np.flatnonzero(groups == self.train)
        tests = sorted(set(groups) - {self.train})
        if not len(train) or not tests:
            raise ConfigError(
                f"The 'given' protocol trains on the split {self.train!r} and tests the others; "
                f"this dataset has the splits {', '.join(sorted(set(groups)))}."
            )
        for name in tests:
            yield train, np.flatnonzero(groups == name)

    def fold_name(self, index, test, groups):
        return str(groups[test[0]])


class SampleKFold(Protocol):
    """Random k-fold over clips (the MER-RCNN paper's protocol).

    A subject's clips can fall in both the training and the test part (identity leakage); the
    report lists the subjects shared in each fold. Prefer :class:`SubjectKFold`.
    """

    def __init__(self, n_splits: int = 5, seed: int = 0):
        self.n_splits = n_splits
        self.seed = seed

    def split(self, X, y=None, groups=None):
        _check_folds(self.n_splits, len(X), "clips")
        yield from KFold(self.n_splits, shuffle=True, random_state=self.seed).split(X)


class SubjectKFold(Protocol):
    """k-fold with every subject's clips in one fold only."""

    group_by = "subject"

    def __init__(self, n_splits: int = 5, seed: int = 0):
        self.n_splits = n_splits
        self.seed = seed

    def split(self, X, y=None, groups=None):
        if groups is None:
            raise ConfigError("The 'groups' parameter should hold each clip's subject for subject k-fold.")
        _check_folds(self.n_splits, len(set(groups)), "subjects")
        yield from GroupKFold(self.n_splits, shuffle=True, random_state=self.seed).split(X, y, groups)


def _check_folds(n_splits, available: int, what: str) -> None:
    """k-fold needs an integer k of at least 2, and at least k ``what`` to spread over the folds."""
    if not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
        raise ConfigError(f"k-fold needs at least 2 folds; got {n_splits!r} (pass --folds 2 or more).")
    if available < n_splits:
        raise ConfigError(f"k-fold with {n_splits} folds needs at least as many {what}; there are {available}.")


PROTOCOLS = {
    "loso": (LeaveOneSubjectOut, "leave one subject out"),
    "kfold": (SampleKFold, "random k-fold over clips (MER-RCNN's; flags shared subjects)"),
    "subject_kfold": (SubjectKFold, "k-fold with subjects kept whole"),
    "lodo": (LeaveOneDatasetOut, "leave one dataset out"),
    "given": (GivenSplits, "the release's own splits: train on train, test each test split (DFME)"),
}


def make_protocol(name: str, **params) -> Protocol:
    """The protocol ``name`` (``merkit list protocols``) with its parameters."""
    cls, _ = PROTOCOLS[check_choice("protocol", name, PROTOCOLS)]
    try:
        return cls(**params)
    except TypeError as error:
        raise ConfigError(f"Protocol {name!r} does not take {sorted(params)}: {error}") from None


def shared_subjects(dataset, fold: Fold) -> list[str]:
    """Subjects with clips in both the training and the test part of ``fold``."""
    groups = dataset.groups
    return sorted(set(groups[fold.train]) & set(groups[fold.test]))
