"""Recognition methods: a representation, a classifier and its training recipe.

A method's hyper-parameters are the fields of its dataclass (defaults from its paper); ``fit``
sees only a fold's training clips and ``predict`` only its test clips, so augmentation, which
runs inside ``fit``, can never touch a test clip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import numpy as np

from merkit.datasets.base import Clip, ClipDataset
from merkit.io.atomic import atomic_write_bytes
from merkit.preprocess.cache import Cache
from merkit.preprocess.pipeline import Representation


class Method:
    """Base of every method. Subclasses are dataclasses registered with ``@register_method``."""

    name: ClassVar[str]
    summary: ClassVar[str]
    quick: ClassVar[bool] = False  # runs in ``merkit demo`` (a LOSO in well under a minute on 2 cores)

    def params(self) -> dict:
        """The hyper-parameters, as given to the constructor."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def representation(self) -> Representation | None:
        """What the method reads of each clip, computed once per clip and cached (None: nothing)."""
        return None

    def prepare(self, clip: Clip, cache: Cache) -> bool:
        """Compute and cache what ``clip`` needs before any fold; True if computed now."""
        representation = self.representation()
        return representation.get(clip, cache)[1] if representation is not None else False

    def fit(self, train: ClipDataset, *, seed: int, cache: Cache) -> Method:
        raise NotImplementedError

    def predict(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        """(n_clips,) predicted class names."""
        raise NotImplementedError

    def save(self, path: Path) -> bool:
        """Write what ``fit`` learned to ``path``, atomically; False if the method keeps nothing
        worth a file (the runner then writes none)."""
        return False

    def load(self, path: Path) -> Method:
        """Restore what ``save`` wrote: the method then predicts as the fitted one did."""
        raise NotImplementedError(f"{self.name} saves no fitted state.")


class NetworkMethod(Method):
    """A method whose fitted state is ``model_`` (a network built by ``create_network``) and
    ``classes_``, fed by ``clip_input`` one clip at a time."""

    def create_network(self, num_classes: int):
        raise NotImplementedError

    def clip_input(self, clip: Clip, cache: Cache) -> np.ndarray:
        """The network's float32 input for one clip (its shape without the batch axis)."""
        raise NotImplementedError

    def inputs(self, data: ClipDataset, cache: Cache) -> np.ndarray:
        """(n_clips, ...) float32: every clip's input, stacked."""
        return np.stack([self.clip_input(clip, cache) for clip in data])

    def save(self, path: Path) -> bool:
        import io

        import torch

        buffer = io.BytesIO()
        torch.save({"classes": list(self.classes_), "state": self.model_.state_dict()}, buffer)
        atomic_write_bytes(path, buffer.getvalue())
        return True

    def load(self, path: Path) -> NetworkMethod:
        import torch

        saved = torch.load(path, map_location="cpu", weights_only=True)
        self.classes_ = tuple(saved["classes"])
        self.model_ = self.create_network(len(self.classes_))
        self.model_.load_state_dict(saved["state"])
        return self


class FeatureMethod(Method):
    """A fixed (fold-independent) descriptor per clip, its representation, then a scikit-learn classifier."""

    def make_classifier(self, seed: int):
        raise NotImplementedError

    def augment(self, features: np.ndarray, clip: Clip, rng: np.random.Generator) -> Iterable[np.ndarray]:
        """Training-only variants of one clip's descriptor (default: the descriptor itself)."""
        yield features

    def features(self, clip: Clip, cache: Cache) -> np.ndarray:
        """(D,) the clip's representation, flattened."""
        return self.representation().get(clip, cache)[0].ravel()

    def fit(self, train: ClipDataset, *, seed: int, cache: Cache) -> FeatureMethod:
        rng = np.random.default_rng(seed)
        samples, labels = [], []
        for clip in train:
            for variant in self.augment(self.features(clip, cache), clip, rng):
                samples.append(variant)
                labels.append(clip.label)
        self.classifier_ = self.make_classifier(seed).fit(np.stack(samples), np.asarray(labels))
        return self

    def predict(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        return self.classifier_.predict(np.stack([self.features(clip, cache) for clip in test]))
