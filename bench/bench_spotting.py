"""Each spotter's F1 (MEGC protocol, IoU >= 0.5) on synthetic long videos in the CAS(ME)² and
SAMM-LV layouts, read back through the dataset readers and scored by ``spot-evaluate``'s code, and
where its false positives fall: on a blink, a head turn, talking, a change of light, an expression
of the other kind, or nothing. Seeds differ from those the defaults were set on (100-103) and
from the tests'. Run by hand: ``.venv/bin/python bench/bench_spotting.py``.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path

from machine import cpu_name  # bench/machine.py
from merkit.datasets.long_videos import load_long_videos
from merkit.evaluation.spot_evaluate import evaluate_spotting
from merkit.spotting import create_spotter
from merkit.synthetic.long_videos import write_long_dataset

SETS = {"casme2_long": dict(subjects=3, videos=2, seconds=60, fps=30.0), "samm_lv": dict(subjects=2, videos=1, seconds=40, fps=200.0)}


def false_positive_causes(scores: dict, plans: dict) -> Counter:
    """Where the unmatched spotted intervals lie (by the event at their peak), from spot-evaluate's per-video rows."""
    causes = Counter()
    for row in scores["videos"]:
        plan = plans[row["video"]]
        for interval in row["spotted"]:
            if interval["matched"]:
                continue
            peak = interval["apex"] if interval["apex"] is not None else (interval["onset"] + interval["offset"]) // 2
            under = [e.kind for e in plan.events if e.onset - 0.2 * plan.fps <= peak <= e.offset + 0.2 * plan.fps]
            causes[f"{interval['kind']} on " + (under[0] if under else "nothing")] += 1
    return causes


def main() -> None:
    print(f"CPU: {cpu_name()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for layout, options in SETS.items():
            written = write_long_dataset(layout, tmp / layout, size=(240, 320), seed=50, **options)
            videos = load_long_videos(layout, written.root)
            for name in ("roi_flow", "feature_difference"):
                spotter = create_spotter(name)
                start = time.perf_counter()
                scores = evaluate_spotting(videos, spotter, tmp / f"out_{layout}")
                seconds = time.perf_counter() - start
                figures = "  ".join(f"{k} F1 {v['f1']:.3f} ({v['tp']}/{v['annotated']} found, {v['spotted']} spotted)"
                                    for k, v in scores["overall"].items())
                print(f"{layout:12s} {name:18s} {figures}  [{seconds:.0f} s]", flush=True)
                print(f"{'':31s} false positives: {dict(false_positive_causes(scores, written.plans))}", flush=True)


if __name__ == "__main__":
    main()
