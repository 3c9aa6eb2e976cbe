"""HTNet (Wang et al., Neurocomputing 2024): a hierarchical transformer on four facial areas of
the onset-to-apex flow (``merkit.models.htnet``), trained like the other flow networks.
"""

from __future__ import annotations

from dataclasses import dataclass

from merkit.methods.apex_flow_nets import ApexFlowNetwork
from merkit.methods.registry import register_method
from merkit.preprocess.pipeline import Representation, Step


@register_method
@dataclass
class HtnetMethod(ApexFlowNetwork):
    """HTNet on the left eye, right eye, left lip and right lip areas of u, v and strain.

    The flow (u, v, strain at 28x28, each map scaled to [0, 1], or a flow image's) is cut into
    four 14x14 areas around five face landmarks (``merkit.preprocess.regions``): where the clip
    has frames, dlib's landmarks on its onset frame (HTNet finds MTCNN's on the apex frame);
    where it has none (a flow image) or no face is found, the standard positions of an aligned
    28x28 face, which HTNet's code uses when MTCNN finds no face.

    Recipe of the paper and its code: Adam, learning rate 5e-5, mini-batches of 256, 800 epochs,
    cross-entropy; network: patches of 7, width 256, 3 heads, 3 levels of (2, 2, 10) blocks.
    Where merkit differs: HTNet's published figures keep, for each test subject, the epoch
    with the best accuracy on that subject; merkit trains the fixed 800 epochs and keeps the
    last network (``early_stopping=inner`` chooses the number on the training part instead).
    The network has about 140 million weights: on one CPU core a fold of the CASME II set
    (about 140 training clips) takes about 3 s an epoch, so pass ``device=cuda`` for full
    runs. Folds train one at a time.
    """

    name = "htnet"
    summary = "HTNet: hierarchical transformer on four facial areas of onset-to-apex u, v, strain (28x28); Adam 5e-5, 800 epochs"
    network = "htnet"
    channels = 3
    lockstep = False

    epochs: int = 800
    lr: float = 5e-5
    dim: int = 256
    heads: int = 3
    block_repeats: tuple[int, ...] = (2, 2, 10)

    def representation(self) -> Representation:
        """The flow maps of the other networks, then HTNet's four areas of them."""
        return Representation(
            Step("apex_flow", method=self.flow, size=self.size, normalise="minmax"), Step("face_regions")
        )

    def create_network(self, num_classes: int):
        from merkit.models import create_model

        return create_model(
            self.network,
            num_classes=num_classes,
            input_size=self.size[0],
            dim=self.dim,
            heads=self.heads,
            hierarchies=len(self.block_repeats),
            block_repeats=tuple(self.block_repeats),
        )
