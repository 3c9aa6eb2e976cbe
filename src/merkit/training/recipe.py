"""Training recipes: plain settings, importable without torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """How to train.

    optimizer : {'sgd', 'adam'}
    lr_decay : the learning rate is multiplied by this after every pass over the training set
    tolerance : stop when the mean training loss of a pass changes by less than this
    max_epochs : stop after this many passes in any case
    """

    optimizer: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 64
    lr_decay: float = 1.0
    tolerance: float = 0.0
    max_epochs: int = 20
