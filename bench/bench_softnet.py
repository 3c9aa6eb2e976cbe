"""SOFTNet trained leave-one-subject-out against roi_flow on one synthetic CAS(ME)²-layout set: F1
(MEGC protocol) and wall-clock time of ``spot-evaluate``, with the CPU. roi_flow runs first and
its time includes tracking every video; softnet's reuses that tracking cache, so its time is the
flow images and one training and spotting per held-out subject.

Run by hand: ``.venv/bin/python bench/bench_softnet.py [SUBJECTS VIDEOS_PER_SUBJECT SECONDS]``
(default 4 1 30; CAS(ME)²'s size is 22 subjects and 98 videos). Seed 60, unlike the tests'.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_name  # bench/machine.py
from merkit.datasets.long_videos import load_long_videos
from merkit.evaluation.spot_evaluate import evaluate_spotting
from merkit.spotting import create_spotter
from merkit.synthetic.long_videos import write_long_dataset


def main(subjects: int = 4, videos: int = 1, seconds: float = 30.0) -> None:
    print(f"CPU: {cpu_name()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        written = write_long_dataset("casme2_long", tmp / "data", subjects=subjects, videos=videos, seconds=seconds,
                                     size=(240, 320), seed=60)
        data = load_long_videos("casme2_long", written.root)
        print(f"{subjects} subjects x {videos} videos x {seconds:g} s at 30 fps")
        for name in ("roi_flow", "softnet"):  # roi_flow first: it tracks the videos into the shared cache
            start = time.perf_counter()
            scores = evaluate_spotting(data, create_spotter(name), tmp / "out")
            figures = "  ".join(f"{k} F1 {v['f1']:.3f} ({v['tp']}/{v['annotated']}, {v['spotted']} spotted)"
                                for k, v in scores["overall"].items())
            print(f"{name:10s} {figures}  [{time.perf_counter() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]), *(float(a) for a in sys.argv[3:4]))
