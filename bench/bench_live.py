"""``merkit live`` on synthetic recordings played at their own frame rate (``realtime``, as a
camera sends them: frames are dropped when processing falls behind).

1. 640 x 480 at 30 fps: frames dropped (want 0) and each interval's report delay, the clock's
   seconds from the arrival of its last frame to its decision (want at most 1 s more than the
   spotter's lookahead: roi_flow's macro gap plus micro gap, 2.5 s).
2. 320 x 240 at rising frame rates: the highest input rate held without a dropped frame
   (high-speed cameras record micro-expressions at 100-200 fps).

Run by hand: ``.venv/bin/python bench/bench_live.py [seconds]`` (default 60 s for part 1, 15 s
per rate for part 2). The machine may be shared: the load average is printed with each figure.

``bench_live.py agree [seconds] [seeds]``: online against offline instead: on synthetic
recordings (320 x 240, 30 fps), ``live`` as fast as it can (no frame dropped) against
``analyze``: the intervals both find (same kind, IoU >= 0.5), those only one finds, and each
against the truth (MEGC's IoU >= 0.5).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_name  # bench/machine.py
from merkit.inference.live import live
from merkit.io.video import video_writer
from merkit.spotting import create_spotter
from merkit.synthetic.long_videos import plan_long_video, render_long_video


def write_recording(path: Path, seconds: float, fps: float, size: tuple[int, int]) -> int:
    """A synthetic recording with an expression or a blink every few seconds (streamed)."""
    n = max(1, int(seconds / 5))
    plan = plan_long_video(
        seconds, fps, size=size, micro=n // 2 + 1, macro=max(1, n // 4), distractors={"blink": max(1, n // 4)}, seed=7
    )
    with video_writer(path, fps, crf=18) as write:
        for frame in render_long_video(plan):
            write(frame)
    return plan.n_frames


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(video: Path, out: Path) -> tuple[dict, float, float]:
    """The session's summary, its wall-clock seconds and its CPU seconds (all threads: a figure the load moves less)."""
    start, used = time.perf_counter(), cpu()
    summary = live(video, out, realtime=True, log=lambda _: None)
    return summary, time.perf_counter() - start, cpu() - used


def agree(seconds: float, seeds: int) -> None:
    from merkit.datasets.intervals import Interval
    from merkit.evaluation.spotting import matched_pairs, spotting_scores
    from merkit.inference.analyze import analyze

    print(f"CPU: {cpu_name()}; {load()}")
    pairs = {"live": [], "analyze": []}
    same = only_live = only_analyze = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            plan = plan_long_video(
                seconds,
                30.0,
                size=(240, 320),
                micro=int(seconds / 10),
                macro=int(seconds / 20),
                distractors={"blink": int(seconds / 20), "head_turn": 1, "talking": 1},
                seed=200 + seed,
            )
            video = Path(tmp) / f"rec{seed}.mkv"
            with video_writer(video, 30.0) as write:
                for frame in render_long_video(plan):
                    write(frame)
            found = {
                "live": live(video, Path(tmp) / f"live{seed}", log=lambda _: None)["intervals"],
                "analyze": analyze(video, Path(tmp) / f"analyze{seed}", annotate=False)["intervals"],
            }
            spans = {
                k: [Interval(r["onset_frame"], r["offset_frame"], r["kind"]) for r in rows] for k, rows in found.items()
            }
            truth = [Interval(e.onset, e.offset, e.kind) for e in plan.expressions]
            for k in pairs:
                pairs[k].append((truth, spans[k]))
            both = matched_pairs(spans["live"], spans["analyze"])  # one to one, same kind, IoU >= 0.5
            same += len(both)
            only_live += len(spans["live"]) - len(both)
            only_analyze += len(spans["analyze"]) - len(both)
            apart = [
                (k, (i.kind, i.onset, i.offset))
                for k, mine in spans.items()
                for i in mine
                if not any(i is pair[0 if k == "live" else 1] for pair in both)
            ]
            print(
                f"seed {200 + seed}: live {len(spans['live'])}, analyze {len(spans['analyze'])}, both {len(both)}; "
                f"apart: {apart}; {load()}",
                flush=True,
            )
    print(
        f"{seeds} recordings of {seconds:g} s: found by both {same}, by live only {only_live}, by analyze only {only_analyze}"
    )
    for k, results in pairs.items():
        scores = spotting_scores(results)
        print(
            f"{k:8s} against the truth: "
            + ", ".join(
                f"{kind} F1 {scores[kind]['f1']:.2f} ({scores[kind]['tp']} of "
                f"{scores[kind]['annotated']}, {scores[kind]['spotted']} spotted)"
                for kind in ("micro", "macro", "overall")
            )
        )


def main() -> None:
    if sys.argv[1:2] == ["agree"]:
        agree(float(sys.argv[2]) if len(sys.argv) > 2 else 40.0, int(sys.argv[3]) if len(sys.argv) > 3 else 3)
        return
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    lookahead = create_spotter("roi_flow").online(30.0).lookahead / 30.0
    print(f"CPU: {cpu_name()}; {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "vga.mp4"
        n = write_recording(video, seconds, 30.0, (480, 640))
        before = load()
        summary, wall, used = run(video, Path(tmp) / "vga")
        delays = [r["delay_s"] for r in summary["intervals"]]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"640x480 at 30 fps, {n} frames in {wall:.1f} s, {1000 * used / n:.1f} ms of CPU a frame (peak RSS {peak:.0f} MB): "
            f"{summary['dropped']} dropped; {len(delays)} intervals, "
            f"report delay after their end {min(delays, default=0):.2f}-{max(delays, default=0):.2f} s "
            f"(want <= {lookahead + 1:.1f} s: lookahead {lookahead:.2f} s + 1 s); before: {before}, after: {load()}",
            flush=True,
        )
        held = 0.0
        for fps in (30.0, 60.0, 90.0, 120.0, 150.0, 200.0):
            video = Path(tmp) / f"qvga{fps:g}.mp4"
            n = write_recording(video, min(seconds, 15.0), fps, (240, 320))
            before = load()
            summary, wall, used = run(video, Path(tmp) / f"qvga{fps:g}")
            print(
                f"320x240 at {fps:g} fps, {n} frames in {wall:.1f} s, {1000 * used / n:.1f} ms of CPU a frame: {summary['dropped']} dropped "
                f"({100 * summary['dropped'] / n:.1f}%); before: {before}, after: {load()}",
                flush=True,
            )
            if summary["dropped"]:
                break
            held = fps
        print(f"highest input rate held without a drop at 320x240: {held:g} fps")


if __name__ == "__main__":
    main()
