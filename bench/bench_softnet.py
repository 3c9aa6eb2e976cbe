"""``spot-evaluate --spotter softnet`` (trained leave-one-subject-out) on a synthetic set of
CAS(ME)²'s size: 22 subjects and 98 long videos (five videos for 10 subjects, four for 12), in
the CAS(ME)² layout. Times each step apart: writing the set, tracking every video (through the
executor, ``--jobs`` processes) and softnet's folds (flow images, training, spotting) together, as
``merkit spot-evaluate --spotter softnet --jobs 2`` runs them; then roi_flow on the same tracking,
for comparison. Prints F1 (MEGC protocol), the CPU and the load average before and after.

Run by hand, niced on a shared machine: ``nice -n 10 .venv/bin/python bench/bench_softnet.py
[--subjects 22] [--videos 98] [--seconds 20] [--difficulty easy] [--jobs 2] [--out DIR]``. Seed 60,
unlike the tests'.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from machine import cpu_name  # bench/machine.py
from merkit.datasets.long_videos import load_long_videos
from merkit.evaluation.spot_evaluate import evaluate_spotting
from merkit.executors import LocalExecutor
from merkit.spotting import create_spotter
from merkit.synthetic.long_videos import write_long_dataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=22)
    parser.add_argument("--videos", type=int, default=98, help="in all, spread over the subjects")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--difficulty", default="easy")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=None, help="keep the data and results here (default: a temporary folder)"
    )
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        per_subject = -(-args.videos // args.subjects)
        start = time.perf_counter()
        written = write_long_dataset(
            "casme2_long",
            out / "data",
            subjects=args.subjects,
            videos=per_subject,
            seconds=args.seconds,
            size=(240, 320),
            difficulty=args.difficulty,
            seed=60,
        )
        videos = load_long_videos("casme2_long", written.root)
        extra = len(videos) - args.videos  # the last video of the first `extra` subjects goes
        by_subject = {}
        for v in videos:
            by_subject.setdefault(v.subject, []).append(v)
        dropped = {id(vs[-1]) for vs in list(by_subject.values())[:extra]}
        videos = [v for v in videos if id(v) not in dropped]
        frames = sum(v.n_frames for v in videos)
        print(
            f"wrote {len(by_subject)} subjects, {len(videos)} videos of {args.seconds:g} s at 30 fps ({frames} frames, "
            f"{args.difficulty}) in {time.perf_counter() - start:.0f} s",
            flush=True,
        )
        start = time.perf_counter()
        scores = evaluate_spotting(videos, create_spotter("softnet"), out / "out", executor=LocalExecutor(args.jobs))
        seconds = time.perf_counter() - start
        print(
            f"softnet, {args.jobs} processes: {figures(scores)}  [{seconds:.0f} s, tracking included]; load average "
            f"{os.getloadavg()[0]:.1f}",
            flush=True,
        )
        start = time.perf_counter()
        scores = evaluate_spotting(videos, create_spotter("roi_flow"), out / "out")
        print(f"roi_flow on the same tracking: {figures(scores)}  [{time.perf_counter() - start:.0f} s]", flush=True)


def figures(scores: dict) -> str:
    return "  ".join(
        f"{k} F1 {v['f1']:.3f} ({v['tp']}/{v['annotated']}, {v['spotted']} spotted)"
        for k, v in scores["overall"].items()
    )


if __name__ == "__main__":
    main()
