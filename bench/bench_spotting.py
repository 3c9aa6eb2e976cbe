"""Each spotter's F1 (MEGC protocol, IoU >= 0.5) on synthetic long videos in the CAS(ME)² and
SAMM-LV layouts at both difficulty levels (``easy``, ``hard``), read back through the dataset
readers and scored by ``spot-evaluate``'s code, its time on the tracked faces (tracking is timed
apart: every spotter reads the same cache), and where its false positives fall: on a blink, a
head turn, talking, a change of light, an expression of the other kind, or nothing. Learned
spotters are trained leave-one-subject-out in one process. Seeds differ from those the defaults
were set on (100-103) and from the tests'. Run by hand: ``nice -n 10 .venv/bin/python
bench/bench_spotting.py [LEVEL ...] [LAYOUT ...]`` (default: both of each).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from machine import cpu_name  # bench/machine.py
from merkit.datasets.long_videos import load_long_videos
from merkit.evaluation.spot_evaluate import evaluate_spotting
from merkit.io.paths import safe_name
from merkit.preprocess.track_cache import FrameSource, TrackCache, track_video
from merkit.spotting import list_spotters
from merkit.synthetic.long_videos import write_long_dataset

# SAMM-LV's 200 fps make each second cost 6.7 times CAS(ME)²'s: two people (a fold learns from one)
SETS = {
    "casme2_long": dict(subjects=4, videos=1, seconds=30, fps=30.0),
    "samm_lv": dict(subjects=2, videos=1, seconds=25, fps=200.0),
}


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


def main(levels: list[str], layouts: list[str]) -> None:
    print(f"CPU: {cpu_name()}; load average {os.getloadavg()[0]:.1f}")
    print("| data | level | spotter | micro F1 (found / annotated, spotted) | macro F1 | overall F1 | time |")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for level in levels:
            for layout in layouts:
                options = SETS[layout]
                written = write_long_dataset(
                    layout, tmp / layout / level, size=(240, 320), seed=50, difficulty=level, **options
                )
                videos = load_long_videos(layout, written.root)
                out = tmp / f"out_{layout}_{level}"
                start = time.perf_counter()
                for v in videos:
                    track_video(
                        FrameSource(v.frame_paths[0].parent, v.fps, v.n_frames),
                        TrackCache(out / "cache" / safe_name(v.key)),
                    )
                print(
                    f"| {layout} | {level} | (tracking, shared) | | | | {time.perf_counter() - start:.0f} s |",
                    flush=True,
                )
                for spotter in list_spotters():
                    start = time.perf_counter()
                    scores = evaluate_spotting(videos, spotter(), out)
                    seconds = time.perf_counter() - start
                    s = scores["overall"]
                    cells = [
                        f"{s[k]['f1']:.3f} ({s[k]['tp']}/{s[k]['annotated']}, {s[k]['spotted']})"
                        for k in ("micro", "macro")
                    ]
                    print(
                        f"| {layout} | {level} | `{spotter.name}` | {' | '.join(cells)} | {s['overall']['f1']:.3f} | {seconds:.0f} s |",
                        flush=True,
                    )
                    print(f"<!-- false positives: {dict(false_positive_causes(scores, written.plans))} -->", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(
        [a for a in sys.argv[1:] if a not in SETS] or ["easy", "hard"],
        [a for a in sys.argv[1:] if a in SETS] or list(SETS),
    )
