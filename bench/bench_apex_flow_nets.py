"""STSTNet on the MEGC 2019-sized synthetic stand-in: LOSO time on this CPU, and where it goes.

Run by hand: ``.venv/bin/python bench/bench_apex_flow_nets.py [--epochs 500 --jobs 2]``; on a
GPU, ``--device cuda`` (every fold at once, in lockstep: ``merkit.training.lockstep``).
Writes the 442-clip, 68-subject flow-image manifest (``merkit.synthetic.flow_images``), runs
a LOSO of ``ststnet`` through ``merkit.evaluation.evaluate`` and prints the wall time, the time
per fold-epoch and the figures; then times one training epoch (435 clips) of the network as
merkit trains it, with numba's fused kernel, with PyTorch's layers (one 16-filter convolution,
channels-last), and as three separate streams in PyTorch's default layout, and the max pooling
alone in both layouts. Each timing is on one thread, as a fold trains. For an AVX2-only CPU on
any machine: ``NUMBA_CPU_NAME=haswell ATEN_CPU_CAPABILITY=avx2`` (and NumPy's and OpenCV's
switches: ``machine.HELD_TO_AVX2``, docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numba
import numpy as np
import torch
from torch import nn

from machine import cpu_name  # bench/machine.py
from merkit.datasets import load
from merkit.evaluation import evaluate
from merkit.models import create_model
from merkit.synthetic.flow_images import write_flow_manifest


class ThreeStreams(nn.Module):
    """STSTNet as three separate streams in PyTorch's default (channels-first) layout."""

    def __init__(self):
        super().__init__()
        self.streams = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(3, c, 3, padding=2), nn.ReLU(), nn.BatchNorm2d(c), nn.MaxPool2d(3, 3, 1), nn.Dropout(0.5)
            )
            for c in (3, 5, 8)
        )
        self.head = nn.Linear(400, 3)

    def forward(self, x):
        return self.head(nn.functional.avg_pool2d(torch.cat([s(x) for s in self.streams], 1), 2).flatten(1))


def epoch_time(model: nn.Module, n: int = 435, batch: int = 256, repeats: int = 10) -> float:
    """Seconds per training epoch of ``n`` random 28x28 samples."""
    x, y = torch.rand(n, 3, 28, 28), torch.randint(0, 3, (n,))
    optimiser = torch.optim.Adam(model.parameters(), 5e-5)

    def one_epoch():
        for start in range(0, n, batch):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x[start : start + batch]), y[start : start + batch]).backward()
            optimiser.step()

    one_epoch()
    started = time.perf_counter()
    for _ in range(repeats):
        one_epoch()
    return (time.perf_counter() - started) / repeats


def lockstep_epoch_time(folds: int = 8, n: int = 435, repeats: int = 2) -> float:
    """Seconds per fold-epoch of ``folds`` STSTNets trained in lockstep (the GPU's way) here."""
    from merkit.training.lockstep import FoldStack, train_lockstep
    from merkit.training.recipe import Recipe

    networks = [create_model("ststnet", num_classes=3) for _ in range(folds)]
    stack = FoldStack(networks, [torch.Generator() for _ in networks])
    data = [(torch.rand(n, 3, 28, 28), torch.randint(0, 3, (n,))) for _ in networks]
    recipe = Recipe(
        optimizer="adam",
        lr=5e-5,
        momentum=0.0,
        weight_decay=0.0,
        batch_size=256,
        lr_decay=1.0,
        tolerance=0.0,
        max_epochs=repeats,
    )
    rngs = [np.random.default_rng(f) for f in range(folds)]
    started = time.perf_counter()
    train_lockstep(stack, networks[0].forward_folds, data, recipe, rngs=rngs)
    return (time.perf_counter() - started) / (repeats * folds)


def pool_time(channels_last: bool, repeats: int = 20) -> float:
    z = torch.randn(256, 16, 30, 30)
    z = z.contiguous(memory_format=torch.channels_last) if channels_last else z
    started = time.perf_counter()
    for _ in range(repeats):
        nn.functional.max_pool2d(z, 3, 3, 1)
    return (time.perf_counter() - started) / repeats


def result_at_once(args) -> str:
    from merkit.methods import create_method

    together = create_method("ststnet", device=args.device, folds_at_once=args.folds_at_once).folds_together()
    return "all" if together == 0 else str(together)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=500, help="500: the paper's")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cuda: the LOSO with every fold in lockstep on the GPU")
    parser.add_argument("--folds-at-once", type=int, default=0, help="0: every fold on a GPU, one at a time on a CPU")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "apex_flow_nets")
    args = parser.parse_args()

    manifest = write_flow_manifest(args.out / "flows")
    data = load("manifest", root=manifest)
    run = args.out / f"ststnet_e{args.epochs}_{args.device}"
    shutil.rmtree(run, ignore_errors=True)  # time every fold, resume nothing
    params = {"epochs": args.epochs, "device": args.device, "folds_at_once": args.folds_at_once}
    started = time.perf_counter()
    result = evaluate(data, "ststnet", params=params, out=run, jobs=args.jobs, cache=args.out / "cache")
    elapsed = time.perf_counter() - started
    folds = len(result.metrics["per_fold"])
    overall = result.metrics["overall"]
    where = torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else cpu_name()
    print(
        f"ststnet LOSO on {where}, {len(data)} clips, {folds} folds, {args.epochs} epochs, --jobs {args.jobs}, "
        f"folds at once {result_at_once(args)}: {elapsed:.0f} s "
        f"({elapsed * args.jobs / (folds * args.epochs) * 1000:.0f} ms per fold-epoch per process); "
        f"UF1 {overall['uf1']:.3f}, UAR {overall['uar']:.3f}"
    )
    for name, s in result.metrics["per_dataset"].items():
        print(f"  {name}: UF1 {s['uf1']:.3f}, UAR {s['uar']:.3f} ({s['n']} clips)")
    if args.device != "cpu":
        return

    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"CPU: {cpu_name()}; numba target {numba.config.CPU_NAME or 'host'}")
    print("| one epoch, 435 clips, 1 thread | ms |\n|---|---|")
    print(
        f"| merkit's ststnet as it trains (numba's fused kernel) | {epoch_time(create_model('ststnet', num_classes=3)) * 1000:.1f} |"
    )
    print(
        f"| merkit's ststnet, PyTorch layers (one 16-filter conv, channels-last) | "
        f"{epoch_time(create_model('ststnet', num_classes=3, fused=False)) * 1000:.0f} |"
    )
    print(f"| three separate streams, channels-first | {epoch_time(ThreeStreams()) * 1000:.0f} |")
    print(f"| in lockstep, 8 folds at once (the GPU's way), per fold | {lockstep_epoch_time() * 1000:.0f} |")
    print(
        f"| max pooling of 256x16x30x30 alone: channels-first / channels-last | "
        f"{pool_time(False) * 1000:.1f} / {pool_time(True) * 1000:.1f} |"
    )


if __name__ == "__main__":
    main()
