"""What every network offers (timm's contract): ``forward_features`` then ``forward_head``."""

from __future__ import annotations

import torch
from torch import nn


class Network(nn.Module):
    """A classifier in two parts, so training code never special-cases an architecture.

    Subclasses define ``forward_features(x) -> (B, D)`` and a linear ``head`` (D -> classes).
    """

    head: nn.Linear

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
