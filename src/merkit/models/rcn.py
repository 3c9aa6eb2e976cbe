"""RCN: shrunk recurrent convolutional networks with parameter-free modules, on flow images.

Xia et al. shrink MER-RCNN (the seed's recurrent convolutional network, by the same authors) to
a few dozen feature maps and one recurrent layer for the small composite database, and add
modules without weights of their own. merkit offers the five variants of their paper as
``variant``:

- ``a`` (RCN-A): the attention unit. A class activation map of the first layer's maps, made
  from the classifier's own weights (no weights of its own), reweights the pooled features.
- ``s`` (RCN-S): shortcut connections: a densely connected block (every convolution reads the
  sum of the block's input and all earlier outputs) in place of the recurrent layer.
- ``w`` (RCN-W): wide expansion: three parallel strided stems (plain, dilated 2, dilated 3).
- ``p`` (RCN-P): the hybrid their architecture search found: two stems (plain, dilated 3) with
  pooling, the attention unit and the dense block.
- ``c`` (RCN-C): the cascade: the wide stems, reweighted by an attention map of the input
  itself, then the dense block.

The input is (B, 3, S, S) onset-to-apex u, v and strain.

References
----------
Z. Xia, W. Peng, H.-Q. Khor, X. Feng, G. Zhao, "Revealing the invisible with model and data
shrinking for composite-database micro-expression recognition", IEEE Transactions on Image
Processing 29, 2020.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from merkit.errors import check_choice
from merkit.models.base import Network
from merkit.models.registry import register_model

VARIANTS = ("a", "s", "w", "p", "c")


def conv_norm_relu(maps_in: int, maps_out: int, kernel: int, padding: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(maps_in, maps_out, kernel, padding=padding), nn.BatchNorm2d(maps_out), nn.ReLU())


class RecurrentLayer(nn.Module):
    """One recurrent convolutional layer unfolded twice: y = f(x), then y = g(x + y) twice with
    the same 3x3 convolution g, then 2x2 max pooling and dropout. (B, C, H, W) -> (B, C, H/2, W/2)."""

    def __init__(self, maps: int, dropout: float):
        super().__init__()
        self.feedforward, self.recurrent = conv_norm_relu(maps, maps, 1, 0), conv_norm_relu(maps, maps, 3, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.feedforward(x)
        for _ in range(2):
            y = self.recurrent(x + y)
        return self.dropout(F.max_pool2d(y, 2))


class DenseLayer(nn.Module):
    """The shortcut block: y = f(x), z = g(x + y), e = g(x + y + z), out = g(x + y + z + e) with one
    3x3 convolution g, then 2x2 max pooling and dropout. (B, C, H, W) -> (B, C, H/2, W/2)."""

    def __init__(self, maps: int, dropout: float):
        super().__init__()
        self.feedforward, self.shared = conv_norm_relu(maps, maps, 1, 0), conv_norm_relu(maps, maps, 3, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x + self.feedforward(x)
        for _ in range(2):
            total = total + self.shared(total)
        return self.dropout(F.max_pool2d(self.shared(total), 2))


def class_activation(maps: torch.Tensor, weights: torch.Tensor, *, over_channels: bool = False) -> torch.Tensor:
    """The parameter-free attention map: (B, C, P, P) maps, (classes, D) classifier weights -> (B, 1, P, P).

    Each class's weights, read as (C, P, P) maps (``over_channels``: their mean over the
    classifier's channels, for maps with other channels, as the input), multiply ``maps``; the
    mean over channels is scaled to [0, 1] per clip (minus its minimum, over its maximum); the
    classes' maps are averaged.
    """
    b, c, p, _ = maps.shape
    w = weights.view(len(weights), -1, p, p)
    w = w.mean(dim=1, keepdim=True) if over_channels else w
    cams = (w.unsqueeze(0) * maps.unsqueeze(1)).mean(dim=2)  # (B, classes, P, P)
    cams = cams - cams.amin(dim=(2, 3), keepdim=True)
    cams = cams / cams.amax(dim=(2, 3), keepdim=True).clamp_min(torch.finfo(cams.dtype).tiny)
    return cams.mean(dim=1, keepdim=True)


class Rcn(Network):
    """RCN with its parameter-free modules. Shape: (B, 3, S, S) (u, v, strain) -> (B, num_classes).

    Parameters
    ----------
    variant : {'a', 's', 'w', 'p', 'c'}, the paper's RCN-A, -S, -W, -P, -C (module docstring)
    maps : feature maps of every layer (the authors' code: 32)
    pool : side of the adaptive average pooling before the classifier (5)
    dropout : after each pooling (0.5)

    Notes
    -----
    Initialisation as the authors' code: convolutions He-normal (fan out), batch normalisation
    1 and 0, the classifier normal (std 0.01) with zero bias. Where merkit differs: the
    attention's division by the map's maximum is guarded against a constant map (0 / 0); the
    authors' RCN-A, -P and -C read the classifier as ``self.classifier``, a name only their
    RCN-S defines (the others call theirs ``fc``, RCN-C's is ``fcr``): merkit reads the one
    classifier, ``head``.
    """

    input_shape = (3, 28, 28)

    def __init__(
        self,
        num_classes: int,
        *,
        variant: str = "a",
        maps: int = 32,
        pool: int = 5,
        dropout: float = 0.5,
        input_size: int = 28,
    ):
        super().__init__()
        self.variant, self.pool = check_choice("variant", variant, VARIANTS), pool
        half, quarter = maps // 2, maps // 4
        if variant in ("a", "s"):  # 5x5 convolution, then 2x2 pooling
            self.stems = nn.ModuleList(
                [
                    nn.Sequential(
                        nn.Conv2d(3, maps, 5), nn.BatchNorm2d(maps), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout)
                    )
                ]
            )
        elif variant in ("w", "c"):  # three strided stems: plain, dilated 2, dilated 3 (ReLU before normalisation)
            self.stems = nn.ModuleList(
                nn.Sequential(
                    nn.Conv2d(3, width, 3, stride=3, padding=dilation, dilation=dilation),
                    nn.ReLU(),
                    nn.BatchNorm2d(width),
                    nn.Dropout(dropout),
                )
                for width, dilation in ((half, 1), (quarter, 2), (maps - half - quarter, 3))
            )
        else:  # "p": two stems, plain and dilated 3, each pooled 3x3 with stride 3
            self.stems = nn.ModuleList(
                nn.Sequential(
                    nn.Conv2d(3, width, 3, padding=dilation, dilation=dilation),
                    nn.ReLU(),
                    nn.BatchNorm2d(width),
                    nn.MaxPool2d(3, 3, padding=1),
                    nn.Dropout(dropout),
                )
                for width, dilation in ((half, 1), (maps - half, 3))
            )
        self.body = RecurrentLayer(maps, dropout) if variant in ("a", "w") else DenseLayer(maps, dropout)
        self.head = nn.Linear(maps * pool * pool, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        nn.init.normal_(self.head.weight, 0, 0.01)
        nn.init.constant_(self.head.bias, 0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, maps * pool * pool)."""
        p = self.pool
        if self.variant == "c":  # the input's attention map, on the stems' maps
            attention = class_activation(F.adaptive_avg_pool2d(x, p), self.head.weight, over_channels=True)
        stems = torch.cat([stem(x) for stem in self.stems], dim=1)
        if self.variant == "c":
            stems = stems * F.interpolate(attention, stems.shape[-2:])
        y = F.adaptive_avg_pool2d(self.body(stems), p)
        if self.variant in ("a", "p"):  # the stems' attention map, on the pooled features
            y = y * class_activation(F.adaptive_avg_pool2d(stems, p), self.head.weight)
        return y.flatten(1)


@register_model
def rcn(num_classes: int, **kwargs) -> Rcn:
    """RCN on (B, 3, S, S) u, v, strain; ``variant`` (a, s, w, p, c), ``maps``, ``pool`` and ``dropout`` are options."""
    return Rcn(num_classes, **kwargs)
