"""STSTNet, OFF-ApexNet and SSSNet: networks on the onset-to-apex optical flow, trained fast on a CPU.

The representation (u, v and optical strain from the onset to the apex frame, each map scaled
to [0, 1], at 28x28) is computed once per clip through the cache, or read from a manifest of
flow images. A fold's training set then fits in memory as one tensor: training draws
mini-batches by indexing it, with no per-sample Python work. Each fold trains on one thread,
so its figures do not depend on how many folds run side by side; ``--jobs 2`` uses both cores.
Training runs a fixed number of epochs: nothing (epoch, threshold, checkpoint) is chosen on a
test fold. ``early_stopping=inner`` chooses the number of epochs inside the training part only
(:meth:`ApexFlowNetwork.inner_epochs`), then trains on the whole of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from merkit.datasets.base import ClipDataset
from merkit.errors import ConfigError, MerkitError, check_choice
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
    folds_at_once : folds trained together in lockstep, as one batched model (0: every fold of
        the run on a GPU, one at a time on a CPU); the same per-fold networks either way, up to
        float rounding
    early_stopping : 'fixed' (the paper's ``epochs``) or 'inner': the number of epochs, up to
        ``epochs``, with the best UF1 on a subject-grouped fifth of the training part, trained
        on the other four fifths; the network is then trained on the whole training part for
        that many epochs (folds one at a time)
    """

    network: ClassVar[str]
    channels: ClassVar[int]  # the first ``channels`` of (u, v, strain)
    lockstep: ClassVar[bool] = True  # the network has ``forward_folds``: several folds can train as one batched model
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
    folds_at_once: int = 0
    early_stopping: str = "fixed"

    def __post_init__(self):
        if not isinstance(self.folds_at_once, int) or self.folds_at_once < 0:
            raise ConfigError(
                f"folds_at_once={self.folds_at_once!r}: give how many folds to train together (1, 2, ...), "
                "or 0 for all of them on a GPU and one at a time on a CPU."
            )
        check_choice("early_stopping", self.early_stopping, ("fixed", "inner"))
        if not self.lockstep and self.folds_at_once > 1:
            raise ConfigError(
                f"folds_at_once={self.folds_at_once}: {self.name} trains its folds one at a time; leave it at 0 or 1."
            )

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

    def recipe(self) -> Recipe:
        return Recipe(
            optimizer="adam",
            lr=self.lr,
            momentum=0.0,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            lr_decay=1.0,
            tolerance=0.0,
            max_epochs=self.epochs,
        )

    def _start(self, train: ClipDataset, seed: int, cache: Cache):
        """Set the fitted attributes, seed PyTorch and build the network; (inputs, targets, the
        shuffles' generator) to train on, in the order ``fit`` draws its random numbers."""
        import torch

        from merkit.training.trainer import seed_everything

        self.classes_ = train.classes
        self.multilabel_ = train.multilabel
        targets = train.targets.astype(np.float32) if train.multilabel else train.y
        x, y = torch.from_numpy(self.inputs(train, cache)), torch.from_numpy(targets)
        rng = seed_everything(seed)
        self.model_ = self.create_network(len(self.classes_))
        return x, y, rng

    def fit(self, train: ClipDataset, *, seed: int, cache: Cache) -> ApexFlowNetwork:
        import torch

        from merkit.training.trainer import tensor_batches, torch_threads
        from merkit.training.trainer import train as run

        loss = (
            (lambda model, logits, labels: torch.nn.functional.binary_cross_entropy_with_logits(logits, labels))
            if train.multilabel
            else None
        )
        self.epochs_ = (
            self.epochs if self.early_stopping == "fixed" else self.inner_epochs(train, seed=seed, cache=cache)
        )
        recipe = dataclasses.replace(self.recipe(), max_epochs=self.epochs_)
        with torch_threads(self.threads):
            x, y, rng = self._start(train, seed, cache)
            self.history_ = run(
                self.model_,
                tensor_batches(x, y, self.batch_size),
                recipe,
                rng=rng,
                loss_fn=loss,
                device=self.device,
                description=f"{self.name}: training",
            )
        return self

    def inner_epochs(self, train: ClipDataset, *, seed: int, cache: Cache) -> int:
        """The number of epochs (1 to ``epochs``) whose network has the best UF1 (the mean of the
        classes' F1 over the classes present; ties: the fewest epochs) on a validation part of
        ``train``: one fold of a stratified 5-fold split by subjects (fewer folds with fewer
        subjects), the network trained on the rest. Only ``train``'s clips are read."""
        from sklearn.metrics import f1_score
        from sklearn.model_selection import StratifiedGroupKFold

        from merkit.training.trainer import predict_logits, tensor_batches, torch_threads
        from merkit.training.trainer import train as run

        if train.multilabel:
            raise ConfigError(
                f"{self.name}: early_stopping=inner scores one class per clip; leave early_stopping=fixed for action units."
            )
        subjects = len(set(train.groups))
        if subjects < 2:
            raise MerkitError(
                f"{self.name}: early_stopping=inner needs at least 2 subjects in a training part to hold some out; "
                f"this one has {subjects}. Use early_stopping=fixed, or a protocol with larger training parts."
            )
        splitter = StratifiedGroupKFold(min(5, subjects), shuffle=True, random_state=seed % 2**32)
        kept, held = next(splitter.split(np.zeros(len(train)), train.y, train.groups))
        validation = train.subset(held)
        probe, scores = dataclasses.replace(self, early_stopping="fixed"), []
        with torch_threads(self.threads):
            x, y, rng = probe._start(train.subset(kept), seed, cache)
            x_validation, y_validation = probe.inputs(validation, cache), validation.y

            def score(epoch: int) -> None:
                predicted = predict_logits(probe.model_, [x_validation], device=self.device).argmax(axis=1)
                scores.append(
                    f1_score(y_validation, predicted, labels=np.unique(y_validation), average="macro", zero_division=0)
                )

            run(
                probe.model_,
                tensor_batches(x, y, self.batch_size),
                self.recipe(),
                rng=rng,
                after_epoch=score,
                device=self.device,
                description=f"{self.name}: choosing the epochs",
            )
        return int(np.argmax(scores)) + 1

    def folds_together(self) -> int:
        """``folds_at_once``, or by default every fold at once on a GPU and one at a time on a CPU
        (where the fused kernel trains one fold faster than PyTorch's layers train many); one at
        a time with ``early_stopping=inner`` or a network without a lockstep form."""
        if self.early_stopping == "inner" or not self.lockstep:
            return 1
        return self.folds_at_once or (0 if self.device.startswith("cuda") else 1)

    def fit_folds(self, trains: list[ClipDataset], *, seeds: list[int], cache: Cache) -> list[ApexFlowNetwork]:
        """Every training part's network trained at once (``merkit.training.lockstep``): the same
        per-fold networks as ``fit`` one at a time, up to float rounding (at 28x28 for STSTNet,
        whose fused kernel's dropout draws the lockstep reproduces). Where the GPU's memory
        does not hold them all (about 90 MB per STSTNet fold at 256 clips a batch), they are
        trained in halves, quarters...: each fold's result does not depend on its companions."""
        import torch

        fitted, group = [], len(trains)
        while len(fitted) < len(trains):  # groups already trained are kept when a later one does not fit
            start = len(fitted)
            try:
                fitted += self._fit_together(trains[start : start + group], seeds[start : start + group], cache)
            except torch.OutOfMemoryError:
                if group == 1:
                    raise MerkitError(
                        f"{self.name}: one fold's training does not fit in the memory of {self.device}; "
                        "pass a smaller --set batch_size, or leave device=cpu."
                    ) from None
                group = (group + 1) // 2
                torch.cuda.empty_cache()
        return fitted

    def _fit_together(self, trains: list[ClipDataset], seeds: list[int], cache: Cache) -> list[ApexFlowNetwork]:
        import torch

        from merkit.training.lockstep import FoldStack, train_lockstep
        from merkit.training.trainer import torch_device, torch_threads

        if len(trains) == 1 and (
            torch_device(self.device).type != "cuda" or self.early_stopping == "inner"
        ):  # on a CPU the fused kernel
            return [dataclasses.replace(self).fit(trains[0], seed=seeds[0], cache=cache)]
        fitted, data, rngs, generators = [], [], [], []
        with torch_threads(self.threads):
            for train, seed in zip(trains, seeds):
                method = dataclasses.replace(self)
                x, y, rng = method._start(train, seed, cache)
                generator = torch.Generator()
                generator.set_state(
                    torch.get_rng_state()
                )  # where PyTorch's generator stands when ``fit`` starts training
                fitted.append(method)
                data.append((x, y))
                rngs.append(rng)
                generators.append(generator)
            stack = FoldStack([method.model_ for method in fitted], generators)
            histories = train_lockstep(
                stack,
                fitted[0].model_.forward_folds,
                data,
                self.recipe(),
                rngs=rngs,
                device=self.device,
                multilabel=trains[0].multilabel,
                description=f"{self.name}: {len(trains)} folds in lockstep",
            )
            stack.unstack_into([method.model_ for method in fitted])
        for method, history in zip(fitted, histories):
            method.history_ = history
        return fitted

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


@register_method
@dataclass
class SssnetMethod(ApexFlowNetwork):
    """SSSNet (Varanka et al., 2021) on u, v and strain: the shallow single-stream network that
    leads the honest tables of MEB (Varanka et al., IEEE TAC 2024: 0.744-0.762 UF1 on the MEGC
    2019 composite, LOSO, fixed epochs).

    Recipe of MEB's SSSNet: SGD with momentum 0.9, learning rate 0.01, weight decay 1e-3,
    mini-batches of 128, 200 epochs, dropout 0.5, cross-entropy. Where merkit differs: the
    input is the 28x28 flow image itself (MEB resizes its flows to 64x64; ``--set size=64x64``
    does so here, through PyTorch's layers only: the fused first block is built for 28x28); the
    last mini-batch of an epoch is kept, smaller, as for STSTNet; folds train one at a time
    (there is no lockstep form of this network yet, so ``folds_at_once`` above 1 is refused).
    """

    name = "sssnet"
    summary = "SSSNet: one shallow conv stream on onset-to-apex u, v, strain (28x28); SGD 0.01, 200 epochs (MEB)"
    network = "sssnet"
    channels = 3
    lockstep = False

    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.01
    weight_decay: float = 1e-3
    momentum: float = 0.9

    def recipe(self) -> Recipe:
        return Recipe(
            optimizer="sgd",
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            lr_decay=1.0,
            tolerance=0.0,
            max_epochs=self.epochs,
        )
