"""MER-RCNN: the recurrent convolutional network of Xia et al. (Table 1).

Z. Xia, X. Feng, X. Hong, G. Zhao, "Spontaneous Facial Micro-expression Recognition via Deep
Convolutional Network", IPTA 2018.

Input (batch, 3, pixels, frames): each colour channel of each frame flattened to a column, the
frames side by side (the paper's "1966 x 30 x 3" tensor, width x height x channel). Table 1:

    Conv1  5x5, no padding                      Pool1  max 4x1
    RCL2   1x1 feed-forward + 3 recurrent 3x3   Pool2  max 4x1
    RCL3                                        Pool3  max 4x4
    RCL4                                        Pool4  max 4x2
    RCL5                                        Pool5  global average -> linear to C classes

The first pooling size runs along the pixels, the second along the frames. A recurrent
convolutional layer (Liang & Hu 2015) computes z(n) = w_f * u + w_r * v(n-1) + b with v(0) = 0
for n = 1 .. N + 1 (N = 3 recurrent iterations sharing w_r), v(n) = LRN(ReLU(z(n))).

Choices where the paper is silent, taken from Liang & Hu 2015 (M. Liang, X. Hu, "Recurrent
Convolutional Neural Network for Object Recognition", CVPR 2015): M = 96 feature maps in every
layer (their smallest model, RCNN-96; the paper's data are small); local response normalisation
across M / 8 + 1 maps with alpha = 0.001, beta = 0.75; Conv1 followed by ReLU and the same LRN.
Convolutions start from He et al.'s initialisation (MatConvNet's 'xavierimproved'): with
PyTorch's default the signal fades through the ten layers and the network cannot even fit one
mini-batch (measured: loss 1.351 -> 1.344 in 30 steps; with He's, 2.48 -> 1.26).
"""

from __future__ import annotations

import torch
from torch import nn

from merkit.models.base import Network
from merkit.models.registry import register_model

POOLS = ((4, 1), (4, 1), (4, 4), (4, 2))  # (pixels, frames) after Conv1, RCL2, RCL3, RCL4


def normalised_activation(maps: int) -> nn.Sequential:
    """ReLU then local response normalisation across feature maps (Liang & Hu 2015)."""
    return nn.Sequential(nn.ReLU(), nn.LocalResponseNorm(maps // 8 + 1, alpha=0.001, beta=0.75, k=1.0))


class RecurrentConv(nn.Module):
    """Recurrent convolutional layer: a 1x1 feed-forward convolution and ``depth`` iterations of
    one shared 3x3 recurrent convolution. Shape: (B, M, H, W) -> (B, M, H, W)."""

    def __init__(self, maps: int, depth: int = 3):
        super().__init__()
        self.depth = depth
        self.feedforward = nn.Conv2d(maps, maps, 1)
        self.recurrent = nn.Conv2d(maps, maps, 3, padding=1, bias=False)
        self.activation = normalised_activation(maps)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        drive = self.feedforward(u)  # w_f * u + b, the same at every iteration
        v = self.activation(drive)  # n = 1: v(0) = 0
        for _ in range(self.depth):
            v = self.activation(drive + self.recurrent(v))
        return v


class MerRcnn(Network):
    """The network of Table 1. Shape: (B, 3, pixels, frames) -> (B, num_classes)."""

    input_shape = (3, 676, 30)  # the default representation: 26 x 26 pixels, 30 frames

    def __init__(self, num_classes: int, *, maps: int = 96, depth: int = 3, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, maps, 5), normalised_activation(maps))
        self.pool1, self.pool2, self.pool3, self.pool4 = (nn.MaxPool2d(p, p) for p in POOLS)
        self.rcl2, self.rcl3, self.rcl4, self.rcl5 = (RecurrentConv(maps, depth) for _ in range(4))
        self.pool5 = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(maps, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, pixels, frames) -> (B, M) pooled features."""
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.rcl2(x))
        x = self.pool3(self.rcl3(x))
        x = self.pool4(self.rcl4(x))
        return self.pool5(self.rcl5(x)).flatten(1)


@register_model
def mer_rcnn(num_classes: int, **kwargs) -> MerRcnn:
    """MER-RCNN with Table 1's layers; ``maps`` (M, default 96) and ``depth`` (N, default 3) are options."""
    return MerRcnn(num_classes, **kwargs)
