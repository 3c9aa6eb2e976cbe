"""The speed figures of one table, on this CPU as it is, without a C compiler, and held to AVX2.

Run by hand: ``.venv/bin/python bench/bench_speed.py [--epochs 500 --jobs 2]`` (about 15 minutes
on 2 cores). Each row runs in a fresh process with its environment set before anything is
imported (numba, NumPy, OpenCV and PyTorch pick their vector width at start-up):

- as it is: this machine, its C compiler on ``PATH``;
- no C compiler: ``CC=false`` and ``PATH`` holding only the Python environment's ``bin`` (merkit
  compiles its kernels with numba, so this row must equal the first);
- held to AVX2: ``machine.HELD_TO_AVX2`` (numba for haswell, PyTorch's, NumPy's and OpenCV's
  AVX2 kernels, no C compiler), as most researchers' CPUs compute.

Figures: the STSTNet LOSO of the 442-clip MEGC 2019 stand-in (``--epochs``, ``--jobs``), its ms
per fold-epoch, one training epoch of 435 clips on one thread, Eulerian magnification of a
64-frame 240x320 RGB clip in frames/s, LBP-TOP of a 30x128x128 clip with 5x5 blocks in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from machine import HELD_TO_AVX2, cpu_name  # bench/machine.py

ROWS = {
    "as it is": {},
    "no C compiler (CC=false, none on PATH)": {"CC": "false", "PATH": str(Path(sys.executable).parent)},
    "held to AVX2": HELD_TO_AVX2,
}


def measure(args) -> dict:
    """This process's figures (its environment is the row's)."""
    import cv2
    import numpy as np
    import torch

    from bench_apex_flow_nets import epoch_time
    from bench_lbp_top import median_seconds
    from bench_preprocess import best_of
    from merkit.datasets import load
    from merkit.evaluation import evaluate
    from merkit.features import lbp_top
    from merkit.models import create_model
    from merkit.preprocess.magnify import magnify_eulerian

    data = load("manifest", root=args.out / "flows" / "manifest.csv")
    run = args.out / "run"
    shutil.rmtree(run, ignore_errors=True)
    started = time.perf_counter()
    result = evaluate(
        data, "ststnet", params={"epochs": args.epochs}, out=run, jobs=args.jobs, cache=args.out / "cache"
    )
    loso = time.perf_counter() - started
    folds = len(result.metrics["per_fold"])

    rng = np.random.default_rng(0)
    clip = cv2.GaussianBlur(rng.random((240, 320 * 64 * 3)).astype(np.float32), (0, 0), 2)
    frames = np.rint(clip.reshape(240, 320, 64, 3).transpose(2, 0, 1, 3) * 255).astype(np.uint8)
    magnify_eulerian(frames)
    magnify = best_of(lambda: magnify_eulerian(frames), 7)
    volume = rng.integers(0, 256, (30, 128, 128)).astype(np.float64)
    lbp = median_seconds(lambda: lbp_top(volume, radius=(1, 1, 4), blocks=(5, 5, 1)), 20)
    torch.set_num_threads(1)
    compiler = (shutil.which("cc") or "none on PATH") + (f", CC={os.environ['CC']}" if "CC" in os.environ else "")
    return {
        "cpu": cpu_name(),
        "cc": compiler,
        "loso_s": loso,
        "fold_epoch_ms": loso * args.jobs / (folds * args.epochs) * 1000,
        "epoch_ms": epoch_time(create_model("ststnet", num_classes=3)) * 1000,
        "uf1": result.metrics["overall"]["uf1"],
        "magnify_fps": 64 / magnify,
        "lbp_top_ms": lbp * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "speed")
    parser.add_argument("--row", action="store_true", help=argparse.SUPPRESS)  # a child: measure, print JSON
    args = parser.parse_args()
    if args.row:
        print(json.dumps(measure(args)))
        return

    from merkit.datasets import load
    from merkit.evaluation.runner import prepare
    from merkit.preprocess.cache import Cache
    from merkit.synthetic.flow_images import write_flow_manifest

    manifest = write_flow_manifest(args.out / "flows")  # and every clip's maps cached, so rows time training only
    prepare("ststnet", {}, load("manifest", root=manifest), Cache(args.out / "cache"), jobs=args.jobs)
    print(f"CPU: {cpu_name()}; STSTNet LOSO of the 442-clip stand-in, {args.epochs} epochs, --jobs {args.jobs}\n")
    print(
        "| row | LOSO | ms per fold-epoch | one epoch, 435 clips, 1 thread | magnification, 64x240x320 RGB | "
        "LBP-TOP, 30x128x128, 5x5 blocks |\n| --- | ---: | ---: | ---: | ---: | ---: |"
    )
    for name, env in ROWS.items():
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--row",
                "--epochs",
                str(args.epochs),
                "--jobs",
                str(args.jobs),
                "--out",
                str(args.out),
            ],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
        )
        if child.returncode:
            print(f"| {name} | failed: {child.stderr.strip().splitlines()[-1]} |")
            continue
        row = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"| {name} (cc: {row['cc']}) | {row['loso_s']:.0f} s ({row['loso_s'] / 60:.1f} min, UF1 {row['uf1']:.3f}) | "
            f"{row['fold_epoch_ms']:.1f} | {row['epoch_ms']:.1f} ms | {row['magnify_fps']:.0f} frames/s | "
            f"{row['lbp_top_ms']:.1f} ms |",
            flush=True,
        )


if __name__ == "__main__":
    main()
