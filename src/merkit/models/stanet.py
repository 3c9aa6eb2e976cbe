"""STANet: spatial and temporal attention over an optical-flow sequence.

"Spatial-Temporal Attention Network for Micro-expression Recognition" (STANet). Section by
section:

- 3.1 Spatial Attention Module: a convolutional backbone runs over each flow frame; its third
  feature map L3 is re-weighted by the Spatial Attention Branch (SAB), an hourglass (bottom-up:
  convolution + max pooling; top-down: bilinear upsampling with the bottom-up map of the same
  size added, Newell et al.'s skip connections), ending in a sigmoid mask m, and
  S = (1 + m) * L3 (eq. 2); the rest of the backbone gives f(x_i).
- 3.2 Temporal Attention Module: H = [h_1 .. h_t] are the hidden states of a recurrent layer
  over f(x_1) .. f(x_t), C = tanh(H^T H) (eq. 3), p_i = sum_j C_ij, w = softmax(p) (eq. 4),
  T(x_i) = (1 + w_i) f(x_i) (eq. 5).
- 3.3 Loss: cross-entropy + lambda ||M||_1 (``merkit.methods.stanet``).

Where the paper is silent (its Fig. 1 is not in the text), merkit chooses after the works it
cites (Wang et al.'s residual attention network, Newell et al.'s hourglass, Liu et al.'s
recurrent context), and says so:

- backbone: four stages of [3x3 convolution, batch normalisation, ReLU] x 2 and 2x2 max
  pooling, ``widths`` (32, 64, 128, 256) maps; L3 is the output of the third stage (1/8 of the
  input size); after the fourth stage, global average pooling gives f(x_i) of ``widths[3]``;
- SAB: ``depth`` = 2 levels of [3x3 convolution, BN, ReLU, max pooling] down and bilinear
  upsampling + skip addition + [3x3 convolution, BN, ReLU] up, then a 1x1 convolution to
  ``mask_channels`` (1: one spatial mask shared by all maps of L3, which is what the paper's
  Fig. 6 shows; ``widths[2]`` for one mask per map) and a sigmoid;
- recurrent layer: a bidirectional LSTM with ``hidden`` units each way, so h_i has 2 x hidden
  entries; T(x) is averaged over time and read by one linear layer.

Input (batch, frames, 2, height, width); the backbone's three poolings and the SAB's ``depth``
need height and width of at least 8 x 2**depth (32 by default). The ablations of Table 2 are
``spatial_attention`` (SAB) and ``temporal_attention`` (TAB) switched off.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from merkit.models.base import Network
from merkit.models.registry import register_model


def conv_block(c_in: int, c_out: int, convs: int = 1) -> nn.Sequential:
    """``convs`` x [3x3 convolution, batch normalisation, ReLU]; keeps the size."""
    layers = []
    for k in range(convs):
        layers += [
            nn.Conv2d(c_in if k == 0 else c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class SpatialAttentionBranch(nn.Module):
    """Hourglass mask over a feature map. Shape: (N, C, H, W) -> (N, mask_channels, H, W) in (0, 1)."""

    def __init__(self, channels: int, *, depth: int = 2, mask_channels: int = 1):
        super().__init__()
        self.down = nn.ModuleList(conv_block(channels, channels) for _ in range(depth))
        self.up = nn.ModuleList(conv_block(channels, channels) for _ in range(depth))
        self.to_mask = nn.Conv2d(channels, mask_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:  # bottom-up
            skips.append(x)
            x = F.max_pool2d(block(x), 2)
        for block, skip in zip(self.up, reversed(skips)):  # top-down
            x = block(F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False) + skip)
        return torch.sigmoid(self.to_mask(x))


class TemporalAttentionBranch(nn.Module):
    """Frame weights from the affinity of recurrent states. Shape: (B, T, D) -> (B, T), rows sum to 1."""

    def __init__(self, features: int, *, hidden: int = 128):
        super().__init__()
        self.recurrent = nn.LSTM(features, hidden, batch_first=True, bidirectional=True)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        h, _ = self.recurrent(f)  # (B, T, 2 hidden): row i is h_i
        affinity = torch.tanh(h @ h.transpose(1, 2))  # C_ij = tanh(h_i . h_j), eq. 3
        return torch.softmax(affinity.sum(dim=2), dim=1)  # p_i = sum_j C_ij, w = softmax(p), eq. 4


@dataclass
class Attention:
    """What the last forward pass attended to: masks (B, T, mask_channels, h, w) on L3, or None
    without the SAB; weights (B, T), or None without the TAB."""

    masks: torch.Tensor | None
    weights: torch.Tensor | None


class Stanet(Network):
    """STANet. Shape: (B, T, 2, H, W) flow sequences -> (B, num_classes).

    After each forward pass ``last_attention`` holds its masks and frame weights (the loss
    penalises the masks; ``merkit explain`` draws both).
    """

    input_shape = (19, 2, 64, 64)  # the CPU configuration: 20 frames give 19 flows

    def __init__(
        self,
        num_classes: int,
        *,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        spatial_attention: bool = True,
        temporal_attention: bool = True,
        depth: int = 2,
        mask_channels: int = 1,
        hidden: int = 128,
        in_channels: int = 2,
    ):
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"STANet's backbone has four stages; got widths={widths}.")
        c1, c2, c3, c4 = widths
        self.stage1, self.stage2 = conv_block(in_channels, c1, 2), conv_block(c1, c2, 2)
        self.stage3, self.stage4 = conv_block(c2, c3, 2), conv_block(c3, c4, 2)
        self.sab = SpatialAttentionBranch(c3, depth=depth, mask_channels=mask_channels) if spatial_attention else None
        self.tab = TemporalAttentionBranch(c4, hidden=hidden) if temporal_attention else None
        self.head = nn.Linear(c4, num_classes)
        self.last_attention = Attention(None, None)

    def frame_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N, 2, H, W) frames -> f(x) (N, D) and the SAB's masks (N, mask_channels, H/8, W/8) or None."""
        l3 = F.max_pool2d(self.stage3(F.max_pool2d(self.stage2(F.max_pool2d(self.stage1(x), 2)), 2)), 2)
        mask = None
        if self.sab is not None:
            mask = self.sab(l3)
            l3 = (1 + mask) * l3  # S = (1 + m) * L3, eq. 2
        return F.adaptive_avg_pool2d(F.max_pool2d(self.stage4(l3), 2), 1).flatten(1), mask

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 2, H, W) -> (B, D): T(x_i) averaged over the frames."""
        b, t = x.shape[:2]
        f, masks = self.frame_features(x.flatten(0, 1))
        f, weights = f.view(b, t, -1), None
        if self.tab is not None:
            weights = self.tab(f)
            f = (1 + weights.unsqueeze(2)) * f  # T(x_i) = (1 + w_i) f(x_i), eq. 5
        self.last_attention = Attention(None if masks is None else masks.view(b, t, *masks.shape[1:]), weights)
        return f.mean(dim=1)


@register_model
def stanet(num_classes: int, **kwargs) -> Stanet:
    """STANet on (B, T, 2, H, W); ``widths``, ``spatial_attention``, ``temporal_attention``, ``depth``,
    ``mask_channels`` and ``hidden`` are options."""
    return Stanet(num_classes, **kwargs)
