"""MER-RCNN ablations on synthetic sub-pixel micro-expressions, with the time per fold on this CPU.

Run by hand: ``.venv/bin/python bench/bench_mer_rcnn.py [--subjects 8 --folds 3 --maps 16 ...]`` (about 20
minutes on 2 cores).
Compares with and without Eulerian magnification and with and without temporal jittering, under
a subject-grouped k-fold (LOSO over 16 subjects takes hours at M = 96 on a CPU). Folds run one
at a time on every core, so the time per fold is that of one fold on this machine. Prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from merkit.datasets import load
from merkit.evaluation import evaluate
from merkit.preprocess.apex import fill_apex
from merkit.synthetic import SynthConfig, is_written, write_casme2

VARIANTS = {
    "magnification + jittering (the paper)": {},
    "no magnification": {"magnify": False},
    "no jittering": {"jitter": False},
    "neither": {"magnify": False, "jitter": False},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--maps", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--keep-levels", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-decay", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "mer_rcnn")
    args = parser.parse_args()
    config = SynthConfig(n_subjects=args.subjects, seed=11)
    root = args.out / "data"
    if not is_written(root, config):
        write_casme2(root, config, jobs=2)
    data = fill_apex(load("casme2", root=root, labels="seed4"), "middle")
    common = {"maps": args.maps, "max_epochs": args.epochs, "keep_levels": args.keep_levels, "align": False,
              "lr": args.lr, "lr_decay": args.lr_decay}
    print(f"{len(data)} clips, {args.subjects} subjects, subject {args.folds}-fold, seed4; {common}\n")
    print("| variant | accuracy | UF1 | UAR | time per fold |\n| --- | ---: | ---: | ---: | ---: |", flush=True)
    for i, (name, switches) in enumerate(VARIANTS.items()):
        start = time.perf_counter()
        result = evaluate(data, "mer_rcnn", out=args.out / f"run{i}", params=common | switches, protocol="subject_kfold",
                          protocol_params={"n_splits": args.folds}, cache=args.out / "cache", jobs=1)
        o = result.metrics["overall"]
        per_fold = (time.perf_counter() - start) / max(len(result.computed_folds), 1)
        print(f"| {name} | {o['accuracy']:.3f} | {o['uf1']:.3f} | {o['uar']:.3f} | {per_fold:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
