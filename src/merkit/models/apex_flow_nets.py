"""Networks on the onset-to-apex optical flow: STSTNet, OFF-ApexNet and SSSNet.

All read the MEGC-era representation (``merkit.preprocess.flow.apex_flow``): u, v and optical
strain at 28x28, as a tensor of shape (batch, 3, 28, 28) with channels (u, v, strain).

References
----------
S.-T. Liong, Y. S. Gan, J. See, H.-Q. Khor, Y.-C. Huang, "Shallow Triple Stream
Three-dimensional CNN (STSTNet) for Micro-expression Recognition", IEEE FG 2019.

Y. S. Gan, S.-T. Liong, W.-C. Yau, Y.-C. Huang, L.-K. Tan, "OFF-ApexNet on micro-expression
recognition system", Signal Processing: Image Communication 74, 2019.

T. Varanka, W. Peng, G. Zhao, "Micro-expression recognition with noisy labels", IS&T Electronic
Imaging: Human Vision and Electronic Imaging, 2021 (SSSNet); T. Varanka, Y. Li, W. Peng, G. Zhao,
"Data leakage and evaluation issues in micro-expression analysis", IEEE Transactions on
Affective Computing, 2024 (its MEB benchmark, where SSSNet leads the honest tables).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from merkit.errors import ConfigError
from merkit.models import fused_pool_conv, fused_stem
from merkit.models.base import Network
from merkit.models.registry import register_model
from merkit.training import lockstep


class Ststnet(Network):
    """STSTNet. Shape: (B, 3, 28, 28) -> (B, num_classes).

    Three streams of 3, 5 and 8 filters (3x3, padding 2), each followed by ReLU, batch
    normalisation, 3x3 max pooling (stride 3, padding 1) and dropout; the 16 maps are
    concatenated, average pooled (2x2) to 5x5 and read by one linear layer. Layer order, padding
    and dropout follow the authors' public PyTorch release; each stream sees all three input
    maps, as there.

    The three streams are convolutions of the same input, so they are computed as one
    convolution whose 16 filters are the streams' filters side by side (``streams`` gives the
    split); normalisation, pooling and dropout act on each map alone, so this is the same
    network, one pass cheaper. In training on a CPU, convolution, ReLU, normalisation, pooling
    and dropout run as one kernel compiled by numba (``merkit.models.fused_stem``, any CPU, no C
    compiler needed), which computes the same function as PyTorch's layers (``fused=False``:
    channels-last, where its CPU pooling is 7x faster than channels-first). All measured in
    ``bench/bench_apex_flow_nets.py``.
    """

    streams = (3, 5, 8)
    input_shape = (3, 28, 28)

    def __init__(
        self, num_classes: int, *, in_channels: int = 3, input_size: int = 28, dropout: float = 0.5, fused: bool = True
    ):
        super().__init__()
        self.fused = fused and in_channels == 3
        maps = sum(self.streams)
        self.conv = nn.Conv2d(in_channels, maps, 3, padding=2)
        self.norm = nn.BatchNorm2d(maps)
        self.pool = nn.MaxPool2d(3, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.avgpool = nn.AvgPool2d(2, 2)
        side = ((input_size + 2 + 2 - 3) // 3 + 1) // 2  # 28 -> 30 -> 10 -> 5
        self.head = nn.Linear(maps * side * side, num_classes)
        self.to(memory_format=torch.channels_last)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 16 * 5 * 5) for 28x28 inputs."""
        if self.fused and self.training and torch.is_grad_enabled():
            if fused_stem.handles(x):
                return fused_stem.fused_features(x, self.conv, self.norm, self.dropout.p).flatten(1)
        x = self.pool(self.norm(torch.relu(self.conv(x.contiguous(memory_format=torch.channels_last)))))
        return self.avgpool(self.dropout(x)).flatten(1)

    def forward_folds(self, stack: lockstep.FoldStack, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """F STSTNets of this shape in training, for ``training.lockstep``: (B, F, 3, H, W) ->
        (B, F, classes). Each fold's dropout mask is the one the fused kernel draws from the fold's
        generator (one seed per step), so at 28x28, where the kernel trains a fold alone, the
        folds are trained as they would be one at a time."""
        r = torch.relu(lockstep.conv2d(stack, "conv", x, padding=2))
        pooled = lockstep.per_map(lockstep.batch_norm(stack, "norm", r, valid, self.norm), F.max_pool2d, 3, 3, 1)
        b, folds = pooled.shape[:2]
        seeds = torch.tensor(
            [
                int(torch.randint(0, 2**62, (1,), generator=g).item()) if on else 0
                for g, on in zip(stack.generators, stack.active.tolist())
            ]
        )
        factors = fused_stem.dropout_factors(seeds.to(x.device), b, self.dropout.p, tuple(pooled.shape[-2:]))
        dropped = pooled * factors.transpose(0, 1)
        return lockstep.linear(stack, "head", lockstep.per_map(dropped, F.avg_pool2d, 2).flatten(2))


class OffApexNet(Network):
    """OFF-ApexNet. Shape: (B, 2, 28, 28) (u, v) -> (B, num_classes).

    Two streams, one on u and one on v, each: 5x5 convolution with 6 filters, ReLU, 2x2 max
    pooling, 5x5 convolution with 16 filters, ReLU, 2x2 max pooling (padding keeps the size,
    28 -> 14 -> 7); the two flattened streams are concatenated and read by two fully connected
    layers of 1024 units (ReLU, dropout) and a linear output layer.
    """

    input_shape = (2, 28, 28)

    def __init__(self, num_classes: int, *, input_size: int = 28, hidden: int = 1024, dropout: float = 0.5):
        super().__init__()

        def stream() -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(1, 6, 5, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(6, 16, 5, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
            )

        self.u_stream, self.v_stream = stream(), stream()
        side = input_size // 4
        self.fully_connected = nn.Sequential(
            nn.Linear(2 * 16 * side * side, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.head = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, H, W) -> (B, hidden)."""
        return self.fully_connected(torch.cat([self.u_stream(x[:, :1]), self.v_stream(x[:, 1:2])], dim=1))

    def forward_folds(self, stack: lockstep.FoldStack, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """F OFF-ApexNets of this shape in training, for ``training.lockstep``: (B, F, 2, H, W) ->
        (B, F, classes), each fold's dropout drawn from its generator as PyTorch's would be."""
        streams = []
        for channel, name in enumerate(("u_stream", "v_stream")):
            y = x[:, :, channel : channel + 1]
            for layer in ("0", "3"):
                y = lockstep.per_map(
                    torch.relu(lockstep.conv2d(stack, f"{name}.{layer}", y, padding=2)), F.max_pool2d, 2
                )
            streams.append(y.flatten(2))
        y = torch.cat(streams, dim=2)
        p = self.fully_connected[2].p
        for layer in ("0", "3"):
            y = lockstep.dropout(stack, torch.relu(lockstep.linear(stack, f"fully_connected.{layer}", y)), p)
        return lockstep.linear(stack, "head", y)


class Sssnet(Network):
    """SSSNet, the shallow single-stream network. Shape: (B, 3, S, S) (u, v, strain) -> (B, num_classes).

    One stream of two convolutions, as MEB defines it: 5x5 convolution with 32 filters, ReLU, 3x3
    max pooling (stride 3), batch normalisation, channel dropout; 3x3 convolution with 64
    filters, ReLU, 2x2 max pooling, batch normalisation, channel dropout; no padding anywhere
    (64 -> 60 -> 20 -> 18 -> 9 at MEB's input size, 28 -> 24 -> 8 -> 6 -> 3 at 28x28); then a
    fully connected layer of 256 units (ReLU, dropout) and the linear output layer.

    In training on a CPU at 28x28, the first convolution, its ReLU and its pooling run as one
    kernel compiled by numba (``merkit.models.fused_pool_conv``: the weight gradients only at
    each window's argmax), which computes the same function and gradients as PyTorch's layers;
    the rest, dropout's draws included, is PyTorch's. A training step of 128 clips on one thread:
    60 ms through PyTorch's layers, 18-21 ms fused (``docs/htnet_rcn.md``). ``fused=False``,
    evaluation and other sizes use PyTorch's layers; the parameters are the same either way.
    """

    input_shape = (3, 28, 28)

    def __init__(
        self,
        num_classes: int,
        *,
        input_size: int = 28,
        widths: tuple[int, int, int] = (32, 64, 256),
        dropout: float = 0.5,
        fused: bool = True,
    ):
        super().__init__()
        self.fused = fused
        first, second, hidden = widths
        side = ((input_size - 4) // 3 - 2) // 2
        if side < 1:
            raise ConfigError(f"SSSNet needs inputs of at least 14x14 pixels; got {input_size}.")
        self.stem = nn.Sequential(
            nn.Conv2d(3, first, 5),
            nn.ReLU(),
            nn.MaxPool2d(3, 3),
            nn.BatchNorm2d(first),
            nn.Dropout2d(dropout),
            nn.Conv2d(first, second, 3),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.BatchNorm2d(second),
            nn.Dropout2d(dropout),
            nn.Flatten(),
        )
        self.fully_connected = nn.Sequential(nn.Linear(second * side * side, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, 256)."""
        conv = self.stem[0]
        if self.fused and self.training and torch.is_grad_enabled() and fused_pool_conv.handles(x, conv):
            y = self.stem[3:](fused_pool_conv.fused_block(x, conv))
        else:
            y = self.stem(x)
        return self.fully_connected(y)


@register_model
def ststnet(num_classes: int, **kwargs) -> Ststnet:
    """STSTNet on (B, 3, 28, 28) u, v, strain; ``input_size`` and ``dropout`` are options."""
    return Ststnet(num_classes, **kwargs)


@register_model
def offapexnet(num_classes: int, **kwargs) -> OffApexNet:
    """OFF-ApexNet on (B, 2, 28, 28) u, v; ``input_size``, ``hidden`` and ``dropout`` are options."""
    return OffApexNet(num_classes, **kwargs)


@register_model
def sssnet(num_classes: int, **kwargs) -> Sssnet:
    """SSSNet on (B, 3, S, S) u, v, strain; ``input_size``, ``widths`` and ``dropout`` are options."""
    return Sssnet(num_classes, **kwargs)
