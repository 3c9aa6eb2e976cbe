"""HTNet: a hierarchical transformer on four facial regions of the onset-to-apex flow.

The input is one (B, 3, 28, 28) image made of four 14x14 crops of the flow image (u, v, strain):
the left and the right eye areas on top, the left and the right lip areas below
(``merkit.preprocess.regions.face_regions`` makes it). The network is the nested hierarchical
transformer (NesT) HTNet builds on: 7x7 patches embedded as tokens (a 4x4 map), then
``hierarchies`` levels; at each level the map is cut into blocks and a transformer runs inside
each block only (local self-attention), then an aggregation (3x3 convolution, layer
normalisation, 3x3 max pooling with stride 2) halves the map and doubles the width, so that
the next level's blocks see the interactions between neighbouring areas. With the paper's
sizes every block holds one token: the first level works on each 7x7 patch alone, the second
on a 2x2 map whose tokens stand for the four facial areas (the aggregation's convolution and
pooling pass information between neighbours), the third on one token for the whole face.

References
----------
Z. Wang, K. Zhang, W. Luo, R. Sankaranarayana, "HTNet for micro-expression recognition",
Neurocomputing 602, 2024 (arXiv 2307.14637).

Z. Zhang, H. Zhang, L. Zhao, T. Chen, S. Ö. Arik, T. Pfister, "Nested hierarchical transformer:
towards accurate, data-efficient and interpretable visual understanding", AAAI 2022 (NesT).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from merkit.errors import ConfigError
from merkit.models.base import Network
from merkit.models.registry import register_model


class Attention(nn.Module):
    """Multi-head self-attention over the tokens of each block. Shape: (N, T, C) -> (N, T, C).

    As HTNet's code: ``heads`` heads of ``dim // heads`` channels each, queries, keys and values
    without bias, an output projection with bias.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        inner = self.heads * self.head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.out = nn.Linear(inner, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return F.dropout(self.out(attended.transpose(1, 2).reshape(n, t, -1)), self.dropout, self.training)


class Transformer(nn.Module):
    """``depth`` pre-norm blocks (attention, then a GELU feed-forward of ``mlp_mult`` x width),
    after a learned position embedding of one scalar per token position (HTNet's).
    Shape: (N, T, C) -> (N, T, C)."""

    def __init__(self, dim: int, tokens: int, depth: int, heads: int, mlp_mult: int, dropout: float = 0.0):
        super().__init__()
        self.position = nn.Parameter(torch.randn(tokens, 1))
        self.attention_norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(depth))
        self.attentions = nn.ModuleList(Attention(dim, heads, dropout) for _ in range(depth))
        self.feedforward_norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(depth))
        self.feedforwards = nn.ModuleList(
            nn.Sequential(
                nn.Linear(dim, dim * mlp_mult),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(dim * mlp_mult, dim),
                nn.Dropout(dropout),
            )
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.position
        for norm, attention, ff_norm, feedforward in zip(
            self.attention_norms, self.attentions, self.feedforward_norms, self.feedforwards
        ):
            x = x + attention(norm(x))
            x = x + feedforward(ff_norm(x))
        return x


def to_blocks(x: torch.Tensor, blocks: int) -> torch.Tensor:
    """(B, C, H, W) -> (B * blocks², H / blocks * W / blocks, C): each block's tokens."""
    b, c, h, w = x.shape
    x = x.view(b, c, blocks, h // blocks, blocks, w // blocks).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b * blocks * blocks, (h // blocks) * (w // blocks), c)


def from_blocks(x: torch.Tensor, blocks: int, size: tuple[int, int]) -> torch.Tensor:
    """The inverse of :func:`to_blocks`: (B * blocks², T, C) -> (B, C, H, W)."""
    h, w = size
    c = x.shape[-1]
    x = x.view(-1, blocks, blocks, h // blocks, w // blocks, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(-1, c, h, w)


class Aggregate(nn.Module):
    """3x3 convolution to ``dim_out``, layer normalisation over channels, 3x3 max pooling with
    stride 2. Shape: (B, C, H, W) -> (B, dim_out, ceil(H / 2), ceil(W / 2))."""

    def __init__(self, dim: int, dim_out: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim_out, 3, padding=1)
        self.norm = nn.LayerNorm(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return F.max_pool2d(x, 3, stride=2, padding=1)


class Htnet(Network):
    """HTNet. Shape: (B, 3, S, S) four facial areas of (u, v, strain) -> (B, num_classes).

    Parameters
    ----------
    input_size : S, the side of the four areas together (28: four 14x14 areas)
    patch_size : side of the patches embedded as tokens (S divisible by it)
    dim : width of the first level; level i has ``dim * 2**i`` channels and ``heads * 2**i`` heads
    hierarchies : number of levels; the first has ``4**(hierarchies - 1)`` blocks
    block_repeats : transformer blocks at each level
    mlp_mult : feed-forward width as a multiple of the level's width
    dropout : in attention and feed-forward (0 in HTNet)

    Notes
    -----
    Defaults: the paper's (28, 7, 256, 3 heads, 3 levels, (2, 2, 10)), about 140 million
    weights, 126 million of them in the last level. Where merkit differs from HTNet's code:
    tokens are rows of a (N, T, C) tensor and the 1x1 convolutions linear layers (the same
    function); the patch embedding orders each patch's values (channel, row, column).
    """

    input_shape = (3, 28, 28)

    def __init__(
        self,
        num_classes: int,
        *,
        input_size: int = 28,
        patch_size: int = 7,
        dim: int = 256,
        heads: int = 3,
        hierarchies: int = 3,
        block_repeats: tuple[int, ...] = (2, 2, 10),
        mlp_mult: int = 4,
        dropout: float = 0.0,
    ):
        super().__init__()
        side, blocks = input_size // patch_size, 2 ** (hierarchies - 1)
        if input_size % patch_size or side % blocks:
            raise ConfigError(
                f"HTNet needs an input_size divisible by patch_size ({patch_size}) and a patch map divisible "
                f"into {blocks}x{blocks} blocks; got input_size={input_size}."
            )
        if len(block_repeats) != hierarchies:
            raise ConfigError(
                f"block_repeats gives {len(block_repeats)} levels; hierarchies={hierarchies}: give one number per level."
            )
        self.patch_size, self.hierarchies = patch_size, hierarchies
        self.embed = nn.Linear(3 * patch_size * patch_size, dim)
        tokens = (side // blocks) ** 2  # the same number of tokens per block at every level
        widths = [dim * 2**level for level in range(hierarchies)]
        self.transformers = nn.ModuleList(
            Transformer(width, tokens, depth, heads * 2**level, mlp_mult, dropout)
            for level, (width, depth) in enumerate(zip(widths, block_repeats))
        )
        self.aggregates = nn.ModuleList(Aggregate(widths[level], widths[level + 1]) for level in range(hierarchies - 1))
        self.norm = nn.LayerNorm(widths[-1])
        self.head = nn.Linear(widths[-1], num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, dim * 2**(hierarchies - 1)): the last level's tokens, normalised and averaged."""
        b, c, s, _ = x.shape
        p, side = self.patch_size, s // self.patch_size
        patches = x.view(b, c, side, p, side, p).permute(0, 2, 4, 1, 3, 5).reshape(b, side, side, c * p * p)
        x = self.embed(patches).permute(0, 3, 1, 2)  # (B, dim, side, side)
        for level, transformer in enumerate(self.transformers):
            blocks = 2 ** (self.hierarchies - 1 - level)
            x = from_blocks(transformer(to_blocks(x, blocks)), blocks, tuple(x.shape[-2:]))
            if level < self.hierarchies - 1:
                x = self.aggregates[level](x)
        return self.norm(x.permute(0, 2, 3, 1)).mean(dim=(1, 2))


@register_model
def htnet(num_classes: int, **kwargs) -> Htnet:
    """HTNet on (B, 3, 28, 28) four facial areas of u, v, strain; the sizes are options."""
    return Htnet(num_classes, **kwargs)
