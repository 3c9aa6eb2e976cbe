"""``merkit analyze`` on synthetic 640 x 480, 30 fps recordings: frames per second of the whole
analysis (tracking, spotting, annotated video, report) and peak memory, for a 1- and a 10-minute
video. Memory must not grow with the video. Run by hand: ``.venv/bin/python bench/bench_analyze.py
[minutes ...]``. Each analysis runs in a fresh process; its peak resident memory comes from the
operating system (getrusage of the child). Say which CPU (``lscpu``) the figures come from.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from machine import cpu_name  # bench/machine.py
from merkit.io.video import video_writer
from merkit.synthetic.long_videos import plan_long_video, render_long_video


def write_recording(path: Path, minutes: float) -> int:
    """A synthetic recording with an event every few seconds (streamed: one frame in memory)."""
    seconds = 60 * minutes
    n_events = int(seconds / 6)
    plan = plan_long_video(
        seconds,
        30.0,
        size=(480, 640),
        micro=n_events // 3,
        macro=n_events // 6,
        distractors={"blink": n_events // 4, "head_turn": n_events // 12, "talking": n_events // 12, "light": 1},
        seed=5,
    )
    with video_writer(path, 30.0, crf=18) as write:
        for frame in render_long_video(plan):
            write(frame)
    return plan.n_frames


def main() -> None:
    minutes = [float(m) for m in sys.argv[1:]] or [1.0, 10.0]
    print(f"CPU: {cpu_name()}")
    print(f"{'minutes':>7s} {'frames':>7s} {'seconds':>8s} {'frames/s':>8s} {'peak RSS MB':>11s}")
    with tempfile.TemporaryDirectory() as tmp:
        for m in minutes:
            video = Path(tmp) / f"rec{m:g}.mp4"
            n = write_recording(video, m)
            # a fresh process per size: getrusage keeps the largest child so far
            code = (
                "import resource, sys, time; from merkit.inference.analyze import analyze; t = time.perf_counter(); "
                f"analyze({str(video)!r}, {str(Path(tmp) / f'out{m:g}')!r}); "
                "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
            )
            out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
            seconds, peak = map(float, out.stdout.split())
            print(f"{m:7g} {n:7d} {seconds:8.1f} {n / seconds:8.1f} {peak:11.0f}", flush=True)


if __name__ == "__main__":
    main()
