"""The training loop shared by the networks: mini-batches, an optimiser, a fixed stopping rule.

Nothing here looks at test data: the caller hands in training batches only, and the stopping
rule reads the training loss alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from merkit.errors import ConfigError, check_choice
from merkit.progress import progress_bar
from merkit.training.recipe import Recipe


def seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


@contextmanager
def torch_threads(threads: int):
    """Run the block with PyTorch on ``threads`` threads. Sums split over threads round
    differently, so a fold trained on one thread gives the same figures whatever process runs it."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def torch_device(name: str | torch.device) -> torch.device:
    """``name`` (``cpu``, ``cuda``, ``cuda:N``, ``mps``) as a device PyTorch can use here, or a
    ConfigError that says why not and what to do."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device={name!r} is not a device; use cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        why = (
            "this is a CPU-only build of PyTorch" if torch.version.cuda is None else "no GPU or CUDA driver is visible"
        )
        raise ConfigError(
            f"device={name} asks for a GPU, but {why}. Install PyTorch 2.13.0 built for CUDA on a machine "
            "with an NVIDIA GPU, or leave device=cpu."
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device={name}: only {torch.cuda.device_count()} GPU(s) here (cuda:0 ..).")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name} needs Apple silicon with PyTorch's MPS backend; leave device=cpu.")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device={name!r}: merkit trains on cpu, cuda or mps.")
    return device


def best_device() -> str:
    """``cuda`` where PyTorch sees a GPU, else ``cpu``: where a loaded network runs unless told."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def tensor_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int):
    """``batches(rng)`` for ``train`` over data already in memory: each pass reshuffles (x, y)
    and slices it into mini-batches (the last one smaller), with no per-sample Python work."""

    def batches(rng: np.random.Generator):
        order = torch.from_numpy(rng.permutation(len(y)))
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            yield x[chosen], y[chosen]

    return batches


def train(
    model: nn.Module,
    batches: Callable[[np.random.Generator], Iterator[tuple[np.ndarray, np.ndarray]]],
    recipe: Recipe,
    *,
    rng: np.random.Generator,
    device: str = "cpu",
    loss_fn: Callable | None = None,
    after_epoch: Callable[[int], None] | None = None,
    description: str = "training",
) -> list[float]:
    """Train ``model`` in place; ``batches(rng)`` yields one pass of (inputs, int labels).

    ``loss_fn(model, logits, labels)`` defaults to cross-entropy; ``after_epoch(n)`` is called
    after the n-th pass (it may switch the model to evaluation: training resumes in training
    mode). Returns each pass's mean loss.
    """
    check_choice("optimizer", recipe.optimizer, ("sgd", "adam"))
    device = torch_device(device)
    model.to(device).train()
    if recipe.optimizer == "sgd":
        optimiser = torch.optim.SGD(
            model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
        )
    else:
        optimiser = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=recipe.lr_step, gamma=recipe.lr_decay)
    loss_fn = loss_fn or (lambda m, logits, y: nn.functional.cross_entropy(logits, y))
    history: list[float] = []
    with progress_bar(description, recipe.max_epochs) as advance:
        for _ in range(recipe.max_epochs):
            total, count = 0.0, 0
            for x, y in batches(rng):
                x, y = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
                optimiser.zero_grad()
                loss = loss_fn(model, model(x), y)
                loss.backward()
                optimiser.step()
                total, count = total + loss.item() * len(y), count + len(y)
            schedule.step()
            history.append(total / max(count, 1))
            if after_epoch is not None:
                after_epoch(len(history))
                model.train()
            advance()
            if len(history) > 1 and abs(history[-1] - history[-2]) < recipe.tolerance:
                break
    return history


@torch.no_grad()
def predict_logits(model: nn.Module, inputs: Iterator[np.ndarray], *, device: str = "cpu") -> np.ndarray:
    """(N, C) logits of the batches in ``inputs``."""
    device = torch_device(device)
    model.to(device).eval()
    return np.concatenate([model(torch.as_tensor(x, device=device)).cpu().numpy() for x in inputs])
