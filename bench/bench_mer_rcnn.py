"""MER-RCNN ablations on synthetic sub-pixel micro-expressions, with the time per fold on this CPU.

Run by hand: ``.venv/bin/python bench/bench_mer_rcnn.py [--subjects 8 --folds 3 --maps 16 ...]`` (about 40
minutes on 2 cores).
Compares with and without Eulerian magnification and with and without temporal jittering, under
a subject-grouped k-fold (LOSO over 16 subjects takes hours at M = 96 on a CPU). Folds run one
at a time on every core, so the time per fold is that of one fold on this machine. Prints a
Markdown table.

Every variant takes the same number of gradient steps: a variant without jittering makes as many
passes over its clips as there are jittered versions per clip times ``--epochs``, so the table
compares what the training data hold, not how long each variant trained. The learning rate is
the paper's (1e-3) but held, in batches of 16: the paper's schedule (halved after every pass,
batches of 64; ``--paper-schedule``) stops learning within a few passes on a set this small.
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
    parser.add_argument("--epochs", type=int, default=8, help="passes over the jittered versions")
    parser.add_argument("--keep-levels", type=int, default=2, help="the first of the six kept-frame shares")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-decay", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--paper-schedule", action="store_true", help="lr 1e-3 halved every pass, batches of 64")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "mer_rcnn")
    args = parser.parse_args()
    config = SynthConfig(n_subjects=args.subjects, seed=11)
    root = args.out / "data"
    if not is_written(root, config):
        write_casme2(root, config, jobs=2)
    data = fill_apex(load("casme2", root=root, labels="seed4"), "middle")
    if args.paper_schedule:
        args.lr, args.lr_decay, args.batch = 1e-3, 0.5, 64
    common = {
        "maps": args.maps,
        "keep_levels": args.keep_levels,
        "align": False,
        "lr": args.lr,
        "lr_decay": args.lr_decay,
        "batch_size": args.batch,
        "tolerance": 0.0,
    }
    versions = args.keep_levels * 8
    print(
        f"{len(data)} clips, {args.subjects} subjects, subject {args.folds}-fold, seed4; {common}; passes: "
        f"{args.epochs} over {versions} versions per clip with jittering, {args.epochs * versions} without\n"
    )
    print("| variant | accuracy | UF1 | UAR | time per fold |\n| --- | ---: | ---: | ---: | ---: |", flush=True)
    for i, (name, switches) in enumerate(VARIANTS.items()):
        epochs = args.epochs * (1 if switches.get("jitter", True) else versions)  # the same number of steps
        start = time.perf_counter()
        result = evaluate(
            data,
            "mer_rcnn",
            out=args.out / f"run{i}",
            params=common | switches | {"max_epochs": epochs},
            protocol="subject_kfold",
            protocol_params={"n_splits": args.folds},
            cache=args.out / "cache",
            jobs=1,
            overwrite=True,
        )
        o = result.metrics["overall"]
        per_fold = (time.perf_counter() - start) / max(len(result.computed_folds), 1)
        print(f"| {name} | {o['accuracy']:.3f} | {o['uf1']:.3f} | {o['uar']:.3f} | {per_fold:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
