"""How hard is the synthetic task? lbptop_svm LOSO on the demo-sized set at three nuisance levels.

Run by hand: ``.venv/bin/python bench/bench_synthetic_difficulty.py [--jobs 2]``. Writes the
data and runs under ``bench/results/difficulty`` and prints a table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from merkit.datasets import load
from merkit.evaluation import evaluate
from merkit.evaluation.reports import chance_levels
from merkit.synthetic import Nuisance, SynthConfig, is_written, write_casme2

LEVELS = {
    "none": Nuisance(0, 0, 0, 0),
    "default (0.2 px drift, noise 1, flicker 0.2%)": Nuisance(),
    "strong (0.3 px drift, noise 1.5, flicker 0.6%)": Nuisance(0.3, 1.5, 0.006, 0.1),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "difficulty")
    args = parser.parse_args()
    print(f"{'nuisance':50s} {'clips':>5s} {'acc':>6s} {'UF1':>6s} {'UAR':>6s} {'chance UAR':>10s} {'time':>6s}")
    for i, (name, nuisance) in enumerate(LEVELS.items()):
        config = SynthConfig(nuisance=nuisance)
        root = args.out / f"data{i}"
        if not is_written(root, config):
            write_casme2(root, config, jobs=args.jobs)
        data = load("casme2", root=root, labels="seed4")
        start = time.perf_counter()
        result = evaluate(data, "lbptop_svm", out=args.out / f"run{i}", jobs=args.jobs, cache=args.out / "cache")
        o = result.metrics["overall"]
        print(
            f"{name:50s} {len(data):5d} {o['accuracy']:6.3f} {o['uf1']:6.3f} {o['uar']:6.3f} "
            f"{chance_levels(result.metrics)['uar']:10.3f} {time.perf_counter() - start:5.0f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
