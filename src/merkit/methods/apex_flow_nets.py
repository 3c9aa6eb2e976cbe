"""STSTNet and OFF-ApexNet: networks on the onset-to-apex optical flow, trained fast on a CPU.

The representation (u, v and optical strain from the onset to the apex frame, each map scaled
to [0, 1], at 28x28) is computed once per clip through the cache, or read from a manifest of
flow images. A fold's training set then fits in memory as one tensor: training draws
mini-batches by indexing it, with no per-sample Python work. Each fold trains on one thread,
so its figures do not depend on how many folds run side by side; ``--jobs 2`` uses both cores.
Training runs a fixed number of epochs: nothing (epoch, threshold, checkpoint) is chosen on a
test fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from merkit.datasets.base import ClipDataset
from merkit.errors import MerkitError
from merkit.methods.base import NetworkMethod, labels_of
from merkit.methods.registry import register_method
from merkit.preprocess.cache import Cache
from merkit.preprocess.pipeline import Representation, Step
from merkit.training.recipe import Recipe


@dataclass
class ApexFlowNetwork(NetworkMethod):
    """A registered network on (u, v, strain) at ``size``; subclasses set the network and recipe.

    Parameters
    ----------
    flow : optical-flow estimator for raw clips (``tvl1`` as the papers)
    size : (height, width) of the maps
    epochs, batch_size, lr, weight_decay : the Adam recipe, a fixed number of epochs
    threads : PyTorch threads per fold (1: identical figures for any ``--jobs``)
    device : 'cpu', or 'cuda' for a GPU
    """

    network: ClassVar[str]
    channels: ClassVar[int]  # the first ``channels`` of (u, v, strain)
    needs_apex = True
    paper_labels = {"megc2019": "megc3"}
    multilabel = True  # on action units: one sigmoid output per AU, binary cross-entropy

    flow: str = "tvl1"
    size: tuple[int, int] = (28, 28)
    epochs: int = 500
    batch_size: int = 256
    lr: float = 5e-5
    weight_decay: float = 0.0
    threads: int = 1
    device: str = "cpu"

    def representation(self) -> Representation:
        """Onset-to-apex u, v, strain at ``size``, each map scaled to [0, 1] (or a flow image's)."""
        return Representation(Step("apex_flow", method=self.flow, size=self.size, normalise="minmax"))

    def clip_input(self, clip, cache: Cache) -> np.ndarray:
        """(channels, height, width) float32, from the cache."""
        maps = self.representation().get(clip, cache)[0]
        return np.ascontiguousarray(maps.transpose(2, 0, 1)[: self.channels], dtype=np.float32)

    def create_network(self, num_classes: int):
        from merkit.models import create_model

        return create_model(self.network, num_classes=num_classes, input_size=self.size[0])

    def fit(self, train: ClipDataset, *, seed: int, cache: Cache) -> ApexFlowNetwork:
        import torch

        from merkit.training.trainer import seed_everything, tensor_batches, torch_threads
        from merkit.training.trainer import train as run

        self.classes_ = train.classes
        self.multilabel_ = train.multilabel
        targets = train.targets.astype(np.float32) if train.multilabel else train.y
        x, y = torch.from_numpy(self.inputs(train, cache)), torch.from_numpy(targets)
        recipe = Recipe(optimizer="adam", lr=self.lr, momentum=0.0, weight_decay=self.weight_decay,
                        batch_size=self.batch_size, lr_decay=1.0, tolerance=0.0, max_epochs=self.epochs)
        loss = (lambda model, logits, labels: torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)) \
            if train.multilabel else None
        with torch_threads(self.threads):
            rng = seed_everything(seed)
            self.model_ = self.create_network(len(self.classes_))
            self.history_ = run(self.model_, tensor_batches(x, y, self.batch_size), recipe, rng=rng, loss_fn=loss,
                                device=self.device, description=f"{self.name}: training")
        return self

    def predict(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        if getattr(self, "multilabel_", False):  # each AU's sigmoid above one half
            return labels_of(self.logits(test, cache=cache) > 0, self.classes_)
        return super().predict(test, cache=cache)

    def predict_proba(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        if getattr(self, "multilabel_", False):
            raise MerkitError(f"{self.name} on action units gives one probability per AU, not class probabilities.")
        return super().predict_proba(test, cache=cache)

    def logits(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        from merkit.training.trainer import predict_logits, torch_threads

        with torch_threads(self.threads):
            return predict_logits(self.model_, [self.inputs(test, cache)], device=self.device)


@register_method
@dataclass
class StstnetMethod(ApexFlowNetwork):
    """STSTNet (Liong et al., FG 2019) on u, v and strain at 28x28.

    Recipe of the authors' code for the paper (MATLAB): Adam, learning rate 5e-5, 500 epochs,
    mini-batches of 256. Their later PyTorch release trains 800 epochs; pass ``epochs=800`` to
    match it. MATLAB drops the samples that do not fill a last mini-batch; merkit reshuffles
    every epoch and keeps the smaller last batch, so every training clip is seen every epoch.
    """

    name = "ststnet"
    summary = "STSTNet: three shallow conv streams on onset-to-apex u, v, strain (28x28); Adam 5e-5, 500 epochs"
    network = "ststnet"
    channels = 3


@register_method
@dataclass
class OffApexNetMethod(ApexFlowNetwork):
    """OFF-ApexNet (Gan et al., Signal Processing: Image Communication 2019) on u and v at 28x28.

    Defaults as we read the paper: Adam, learning rate 1e-4, 3000 epochs, mini-batches of 256
    (the batch size is merkit's; set ``--set epochs=N`` for a shorter run).
    """

    name = "offapexnet"
    summary = "OFF-ApexNet: two conv streams on onset-to-apex u and v (28x28) + two FC-1024; Adam 1e-4"
    network = "offapexnet"
    channels = 2

    epochs: int = 3000
    lr: float = 1e-4
