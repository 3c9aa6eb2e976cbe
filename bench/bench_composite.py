"""The flow networks on the MEGC 2019-sized synthetic stand-in: can each LOSO run in 15 minutes here?

Run by hand: ``.venv/bin/python bench/bench_composite.py [--methods sssnet,htnet,rcn,ensemble,offapexnet
--jobs 2 --budget 900]``. Writes the 442-clip, 68-subject flow-image manifest
(``merkit.synthetic.flow_images``, as ``bench_apex_flow_nets.py``), then for each method with a
fixed number of epochs first times fits of 1 and ``--probe-epochs`` epochs of the first fold's
training part (436 clips, one thread, as a fold trains; after one untimed fit, which takes the
process's one-time costs) and projects the LOSO: (the fit's fixed seconds + seconds per epoch x
epochs) x 68 folds / jobs. A method whose projection is within ``--budget`` seconds runs its whole
LOSO with ``--jobs`` (``evaluate``) and reports its wall time and figures; the others report the
projection only, marked as such (a run of hours on a shared machine). The ensemble's projection
is its probed members' (listed before it in ``--methods``) times ``bag``. Prints markdown rows,
the CPU and the load average first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from machine import cpu_name  # bench/machine.py
from merkit.datasets import load
from merkit.evaluation import evaluate
from merkit.evaluation.protocols import make_protocol
from merkit.methods import create_method
from merkit.preprocess.cache import Cache
from merkit.synthetic.flow_images import write_flow_manifest
from merkit.training.trainer import torch_threads


def probe(data, name: str, epochs: int, cache: Cache) -> tuple[float, float]:
    """(seconds per epoch, seconds per fit besides) of ``name`` on the first LOSO fold's training
    part: fits of 1 and of ``epochs`` epochs, timed after one untimed fit, which takes what a
    worker process pays once, not per fold (PyTorch's first optimiser imports torch._dynamo,
    about 1.4 s; numba compiles the fused kernels, about 2 s). Each fit's own fixed cost (reading
    the flow images from the cache, building the network) is paid per fold, not per epoch."""
    train = data.subset(make_protocol("loso").folds(data)[0].train)
    create_method(name).inputs(train, cache)  # the flow images are decoded once, before the clock
    seconds = []
    with torch_threads(1):
        for n in (1, 1, epochs):
            method = create_method(name, epochs=n)
            started = time.perf_counter()
            method.fit(train, seed=0, cache=cache)
            seconds.append(time.perf_counter() - started)
    per_epoch = (seconds[2] - seconds[1]) / (epochs - 1)
    return per_epoch, max(seconds[1] - per_epoch, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="rcn,sssnet,ensemble,offapexnet,htnet")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--budget", type=float, default=900.0, help="seconds: longer projections are not run")
    parser.add_argument("--probe-epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "composite")
    args = parser.parse_args()

    data = load("manifest", root=write_flow_manifest(args.out / "flows"))
    cache, folds = Cache(args.out / "cache"), len(set(data.groups))
    print(f"CPU: {cpu_name()}; load average at the start {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"{len(data)} clips, {folds} subjects (LOSO folds), --jobs {args.jobs}\n")
    print("| method | epochs | probe: s per epoch of one fold | LOSO wall time | UF1 / UAR | load after |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    projections: dict[str, float] = {}
    for name in args.methods.split(","):
        method = create_method(name)
        epochs = getattr(method, "epochs", None)
        per_epoch = None
        if epochs is not None:
            per_epoch, per_fit = probe(data, name, args.probe_epochs, cache)
            projections[name] = (per_fit + per_epoch * epochs) * folds / args.jobs
        members = [m for m in getattr(method, "members", "").split(",") if m in projections]
        projected = projections.get(name, sum(projections[m] * method.bag for m in members) if members else None)
        if projected is not None and projected > args.budget:
            what = (
                f"at least {projected / 60:.0f} min projected (its {', '.join(members)})"
                if members
                else f"{projected / 60:.0f} min projected"
            )
            print(
                f"| {name} | {epochs or '-'} | {'-' if per_epoch is None else f'{per_epoch:.3f}'} | not run: {what} | - | "
                f"{os.getloadavg()[0]:.1f} |",
                flush=True,
            )
            continue
        run = args.out / name
        shutil.rmtree(run, ignore_errors=True)  # time every fold, resume nothing
        started = time.perf_counter()
        result = evaluate(data, name, out=run, jobs=args.jobs, cache=args.out / "cache")
        elapsed, overall = time.perf_counter() - started, result.metrics["overall"]
        print(
            f"| {name} | {epochs or '-'} | {'-' if per_epoch is None else f'{per_epoch:.3f}'} | {elapsed:.0f} s "
            f"({elapsed / 60:.1f} min) | {overall['uf1']:.3f} / {overall['uar']:.3f} | {os.getloadavg()[0]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
