"""Training recipes: plain settings, importable without torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """How to train. No defaults here: a method's own parameters (its paper's numbers) fill it.

    optimizer : {'sgd', 'adam'}
    lr_decay : the learning rate is multiplied by this after every ``lr_step`` passes over the
        training set (``lr_step=1``: after every pass)
    tolerance : stop when the mean training loss of a pass changes by less than this (0: never)
    max_epochs : stop after this many passes in any case
    """

    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    lr_decay: float
    tolerance: float
    max_epochs: int
    lr_step: int = 1
