"""The constant baseline for action units: each AU drawn with its training prevalence.

Every action-unit table shows it beside the methods: a method that does not beat it on an AU
has learned nothing about that AU. As F1 needs yes/no decisions, the baseline says yes to AU k
on each test clip with the probability p_k it had among the fold's training clips (a seeded
draw, like scikit-learn's ``DummyClassifier(strategy='stratified')``): its expected F1 on AU k is
about p_k when the test clips show AU k as often, and 0 for an AU never seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from merkit.datasets.base import ClipDataset
from merkit.errors import MerkitError
from merkit.methods.base import Method, labels_of
from merkit.methods.registry import register_method
from merkit.preprocess.cache import Cache


@register_method
@dataclass
class AuPrevalence(Method):
    """Each action unit said yes with its training prevalence; reads no frame."""

    name = "au_prevalence"
    summary = "constant baseline for action units: each AU drawn with its training prevalence"
    multilabel = True
    single_label = False

    def fit(self, train: ClipDataset, *, seed: int, cache: Cache) -> AuPrevalence:
        if not train.multilabel:
            raise MerkitError("au_prevalence is a baseline for action units; evaluate it with --labels aus.")
        self.classes_ = train.classes
        self.prevalence_ = train.targets.mean(axis=0)
        self.seed_ = seed
        return self

    def predict(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        draws = np.random.default_rng(self.seed_).random((len(test), len(self.classes_)))
        return labels_of(draws < self.prevalence_, self.classes_)

    def predict_proba(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        raise MerkitError("au_prevalence gives each action unit's prevalence, not class probabilities.")
