"""RCN (Xia et al., IEEE TIP 2020): shrunk recurrent convolutional networks with parameter-free
modules (``merkit.models.rcn``) on the onset-to-apex flow, trained like the other flow networks.
"""

from __future__ import annotations

from dataclasses import dataclass

from merkit.errors import check_choice
from merkit.methods.apex_flow_nets import ApexFlowNetwork
from merkit.methods.registry import register_method
from merkit.models.rcn import VARIANTS
from merkit.training.recipe import Recipe


@register_method
@dataclass
class RcnMethod(ApexFlowNetwork):
    """RCN on u, v and strain; ``variant`` picks RCN-A (the default, the attention unit MEB
    measured: 0.682 UF1 on the composite), -S, -W, -P or -C.

    Recipe of the authors' code (its README's command): SGD with momentum 0.9, learning rate
    5e-4 halved every 10 epochs, mini-batches of 64, 20 epochs, 32 feature maps, pooling to
    5x5, cross-entropy. Where merkit differs: the input is the 28x28 flow image (the paper
    shrinks its inputs too, as part of its "data shrinking"; ``--set size=...`` changes it);
    the last mini-batch of an epoch is kept, smaller; the authors' sixth variant (RCN-F, whose
    published code does not run) is not offered. Folds train one at a time.
    """

    name = "rcn"
    summary = "RCN: shrunk recurrent conv net with parameter-free attention (variant=a,s,w,p,c) on u, v, strain; SGD 5e-4, 20 epochs"
    network = "rcn"
    channels = 3
    lockstep = False

    epochs: int = 20
    batch_size: int = 64
    lr: float = 5e-4
    momentum: float = 0.9
    variant: str = "a"
    maps: int = 32

    def __post_init__(self):
        super().__post_init__()
        check_choice("variant", self.variant, VARIANTS)

    def create_network(self, num_classes: int):
        from merkit.models import create_model

        return create_model(
            self.network, num_classes=num_classes, variant=self.variant, maps=self.maps, input_size=self.size[0]
        )

    def recipe(self) -> Recipe:
        return Recipe(
            optimizer="sgd",
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            lr_decay=0.5,
            tolerance=0.0,
            max_epochs=self.epochs,
            lr_step=10,
        )
