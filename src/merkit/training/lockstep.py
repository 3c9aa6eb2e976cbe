"""Several folds' networks trained at once, in lockstep: the way to fill a GPU with small networks.

A :class:`FoldStack` holds F networks of one architecture as one module whose every parameter
and buffer has a leading fold axis; the architecture's ``forward_folds`` (e.g.
``Ststnet.forward_folds``) runs all F on a batch of shape (B, F, ...), with grouped convolutions
and batched matrix products, so each layer is one launch for every fold.

Each fold keeps everything its own training would have: its initial weights, its shuffles, its
dropout draws (from its own generator, in the order training it alone draws them), its batch
statistics and its Adam state. A step gives every fold its own next mini-batch; batches of
different sizes are padded to the largest, and the padding is kept out of batch statistics and
losses, so fold f's parameters receive exactly the gradient of its own loss. A fold with fewer
mini-batches per epoch sits out the extra steps (no update, no step count). The result equals
training the folds one at a time with :func:`merkit.training.trainer.train` up to float rounding
(``tests/training/test_lockstep.py``, on CPU).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from merkit.progress import progress_bar
from merkit.training.recipe import Recipe
from merkit.training.trainer import torch_device


class FoldStack(nn.Module):
    """The state of F networks of one architecture, each tensor stacked on a leading fold axis:
    ``stack[key]`` is (F, *shape) for every key of a network's state dict.

    ``generators[f]`` is fold f's random generator (its dropout draws); ``counts[f]`` the clips
    fold f has in the current step (its first rows of the batch; 0: it sits the step out).
    """

    def __init__(self, networks: Sequence[nn.Module], generators: Sequence[torch.Generator]):
        super().__init__()
        self.folds = len(networks)
        self.generators = list(generators)
        self.counts = [0] * self.folds
        states = [network.state_dict(keep_vars=True) for network in networks]
        self.keys = list(states[0])
        for key, value in states[0].items():
            stacked = torch.stack([state[key].detach() for state in states]).contiguous()
            if isinstance(value, nn.Parameter):
                self.register_parameter(self._name(key), nn.Parameter(stacked))
            else:
                self.register_buffer(self._name(key), stacked)

    @staticmethod
    def _name(key: str) -> str:
        return key.replace(".", "__")

    @property
    def active(self) -> torch.Tensor:
        """(F,) bool on the CPU: the folds that take part in the current step."""
        return torch.tensor(self.counts) > 0

    def __getitem__(self, key: str) -> torch.Tensor:
        return getattr(self, self._name(key))

    def unstack_into(self, networks: Sequence[nn.Module]) -> None:
        """Load fold f's state into ``networks[f]``."""
        for f, network in enumerate(networks):
            network.load_state_dict({key: self[key][f].detach().clone() for key in self.keys})


def per_map(x: torch.Tensor, function: Callable, *args) -> torch.Tensor:
    """A function of (B, maps, H, W) applied to every fold's maps: (B, F, C, H, W) -> (B, F, C, H', W')."""
    out = function(x.flatten(1, 2), *args)
    return out.view(*x.shape[:3], *out.shape[2:])


def conv2d(stack: FoldStack, prefix: str, x: torch.Tensor, *, padding: int) -> torch.Tensor:
    """Each fold's convolution ``prefix``: (B, F, C, H, W) -> (B, F, C', H', W'), one grouped call."""
    weight, bias = stack[f"{prefix}.weight"], stack[f"{prefix}.bias"]
    b, folds = x.shape[:2]
    out = F.conv2d(x.reshape(b, -1, *x.shape[3:]), weight.flatten(0, 1), bias.flatten(), padding=padding, groups=folds)
    return out.view(b, folds, -1, *out.shape[2:])


def linear(stack: FoldStack, prefix: str, x: torch.Tensor) -> torch.Tensor:
    """Each fold's linear layer ``prefix``: (B, F, D) -> (B, F, D')."""
    return torch.einsum("bfd,fod->bfo", x, stack[f"{prefix}.weight"]) + stack[f"{prefix}.bias"]


def batch_norm(
    stack: FoldStack, prefix: str, x: torch.Tensor, valid: torch.Tensor, norm: nn.BatchNorm2d
) -> torch.Tensor:
    """Each fold's training-mode batch normalisation ``prefix`` over its own valid clips:
    x (B, F, C, H, W), valid (B, F) bool. Updates the running statistics of the active folds as
    PyTorch does (``norm`` gives momentum and eps)."""
    weights = valid.to(x.dtype)[:, :, None, None, None]
    n = (weights.sum(0) * x.shape[3] * x.shape[4]).clamp_min(1)  # (F, 1, 1, 1); an idle fold divides by 1
    mean = (x * weights).sum((0, 3, 4), keepdim=True) / n
    var = ((x - mean).square() * weights).sum((0, 3, 4), keepdim=True) / n
    out = (x - mean) * torch.rsqrt(var + norm.eps)
    out = out * stack[f"{prefix}.weight"][:, :, None, None] + stack[f"{prefix}.bias"][:, :, None, None]
    with torch.no_grad():
        active = stack.active.to(x.device)[:, None]
        unbiased = var.squeeze(0).flatten(1) * n.flatten(0)[:, None] / (n.flatten(0)[:, None] - 1).clamp_min(1)
        for key, batch in (("running_mean", mean.squeeze(0).flatten(1)), ("running_var", unbiased)):
            running = stack[f"{prefix}.{key}"]
            running.copy_(torch.where(active, running.lerp(batch, norm.momentum), running))
        stack[f"{prefix}.num_batches_tracked"].add_(active.flatten().long())
    return out


def dropout(stack: FoldStack, x: torch.Tensor, p: float) -> torch.Tensor:
    """Each active fold's dropout as PyTorch draws it on a CPU (``bernoulli_(1 - p)`` on a tensor
    of the fold's batch, from its generator): x (B, F, ...) with the folds' clips first."""
    if p == 0:
        return x
    noise = torch.zeros_like(x, device="cpu")
    counts = stack.counts
    for f in torch.nonzero(stack.active).flatten().tolist():
        noise[: counts[f], f] = torch.empty(counts[f], *x.shape[2:]).bernoulli_(1 - p, generator=stack.generators[f])
    return x * noise.div_(1 - p).to(x.device)


def _loss(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """(F,) each fold's mean loss over its valid clips: logits (B, F, C), targets (B, F) or (B, F, C)."""
    if multilabel:
        each = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(-1)
    else:
        each = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(valid.shape)
    each = torch.where(valid, each, torch.zeros_like(each))
    return each.sum(0) / valid.sum(0).clamp_min(1)


class FoldAdam:
    """Adam (PyTorch's, without amsgrad) on stacked parameters, with a step count per fold and
    updates only for the active folds: fold f follows exactly the path its own Adam would."""

    def __init__(self, parameters, *, lr: float, weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.parameters = [p for p in parameters if p.requires_grad]
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in self.parameters]
        self.steps = torch.zeros(len(self.parameters[0]), dtype=torch.float64, device=self.parameters[0].device)

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        beta1, beta2 = self.betas
        self.steps += active.to(self.steps)
        steps = self.steps.clamp_min(1)
        step_size = (self.lr / (1 - beta1**steps)).float()
        correction2 = torch.sqrt(1 - beta2**steps).float()
        for p, (m, v) in zip(self.parameters, self.moments):
            shape = (-1,) + (1,) * (p.dim() - 1)
            on = active.view(shape)
            grad = p.grad if self.weight_decay == 0 else p.grad + self.weight_decay * p
            m.copy_(torch.where(on, m.lerp(grad, 1 - beta1), m))
            v.copy_(torch.where(on, v * beta2 + (1 - beta2) * grad * grad, v))
            denom = v.sqrt() / correction2.view(shape) + self.eps
            p.copy_(torch.where(on, p - step_size.view(shape) * (m / denom), p))


@contextmanager
def ieee_float32():
    """Convolutions and matrix products in full float32 on a GPU: PyTorch lets cuDNN's
    convolutions round their inputs to TF32 (10-bit mantissas) by default, which would make the
    folds differ from the CPU's by far more than float rounding."""
    backends = (torch.backends.cudnn.conv, torch.backends.cuda.matmul)
    before = [backend.fp32_precision for backend in backends]
    for backend in backends:
        backend.fp32_precision = "ieee"
    try:
        yield
    finally:
        for backend, precision in zip(backends, before):
            backend.fp32_precision = precision


def train_lockstep(
    stack: FoldStack,
    forward: Callable[[FoldStack, torch.Tensor, torch.Tensor], torch.Tensor],
    data: Sequence[tuple[torch.Tensor, torch.Tensor]],
    recipe: Recipe,
    *,
    rngs: Sequence[np.random.Generator],
    device: str = "cpu",
    multilabel: bool = False,
    description: str = "training folds in lockstep",
) -> list[list[float]]:
    """Train the F networks of ``stack`` at once, fold f on ``data[f]`` = (inputs (N_f, ...),
    targets (N_f,) int or (N_f, C) float) with its shuffles from ``rngs[f]``; ``forward(stack, x,
    valid)`` maps (B, F, ...) to (B, F, C) logits. Returns each fold's per-epoch mean losses, as
    ``train`` does for one. Adam only (the recipe of the networks trained this way)."""
    if recipe.optimizer != "adam":
        raise ValueError(f"lockstep training implements Adam only, not {recipe.optimizer!r}")
    device = torch_device(device)
    folds = stack.folds
    sizes = [len(y) for _, y in data]
    inputs = torch.zeros(folds, max(sizes), *data[0][0].shape[1:], device=device)
    targets = torch.zeros(folds, max(sizes), *data[0][1].shape[1:], dtype=data[0][1].dtype, device=device)
    for f, (x, y) in enumerate(data):
        inputs[f, : len(y)], targets[f, : len(y)] = x.to(device), y.to(device)
    stack.to(device).train()
    optimiser = FoldAdam(stack.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    histories: list[list[float]] = [[] for _ in range(folds)]
    training = np.ones(folds, dtype=bool)  # folds not yet stopped by the recipe's tolerance
    fold_index = torch.arange(folds, device=device)
    with progress_bar(description, recipe.max_epochs) as advance, ieee_float32():
        for epoch in range(recipe.max_epochs):
            orders = [
                torch.from_numpy(rng.permutation(n)) if go else torch.zeros(0, dtype=torch.long)
                for rng, n, go in zip(rngs, sizes, training)
            ]
            totals = torch.zeros(folds, dtype=torch.float64, device=device)
            for start in range(0, max(len(order) for order in orders), recipe.batch_size):
                chosen = [order[start : start + recipe.batch_size] for order in orders]
                counts = [len(c) for c in chosen]
                index = torch.zeros(max(counts), folds, dtype=torch.long)
                for f, c in enumerate(chosen):
                    index[: len(c), f] = c
                index = index.to(device)
                stack.counts = counts
                sizes_now = torch.tensor(counts, device=device)
                valid = torch.arange(max(counts), device=device)[:, None] < sizes_now
                for p in stack.parameters():
                    p.grad = None
                losses = _loss(
                    forward(stack, inputs[fold_index, index], valid), targets[fold_index, index], valid, multilabel
                )
                losses.sum().backward()
                optimiser.step(sizes_now > 0)
                totals += losses.detach().double() * sizes_now
            if recipe.lr_decay != 1.0 and (epoch + 1) % recipe.lr_step == 0:
                optimiser.lr *= recipe.lr_decay
            means = (totals.cpu().numpy() / np.maximum(sizes, 1)).tolist()
            for f in np.flatnonzero(training):
                histories[f].append(means[f])
                if len(histories[f]) > 1 and abs(histories[f][-1] - histories[f][-2]) < recipe.tolerance:
                    training[f] = False
            advance()
            if not training.any():
                break
    return histories
