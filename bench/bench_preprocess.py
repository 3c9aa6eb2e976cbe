"""Speed of the preprocessing blocks (run by hand: ``.venv/bin/python bench/bench_preprocess.py``).

- ``magnify_eulerian`` on a 64-frame 240x320 RGB clip, float32 in 0..1 and uint8 (as a camera
  delivers it), in frames per second: the median, least and most of ``--rounds`` calls in a warm
  process, the CPU time per call (``time.process_time``, all threads: less moved by other
  processes than the wall clock), the first call (numba compiles), and the load average before
  and after; beside them the time of a plain NumPy copy of the float clip (one read and one write
  of every value), so the distance from the memory-bandwidth bound reads as a ratio;
- TV-L1 optical flow pairs per second at 128x128 and 192x192 (DIS for comparison).

``--held-to-avx2`` runs the same in a fresh process with ``machine.HELD_TO_AVX2`` (numba, NumPy
and OpenCV computing as on an AVX2-only CPU); ``--magnify-only`` skips the flow rows.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import cv2
import numpy as np

from machine import HELD_TO_AVX2, cpu_name  # bench/machine.py
from merkit.preprocess.flow import optical_flow
from merkit.preprocess.magnify import magnify_eulerian


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def timed(fn, rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """(rounds,) wall and CPU seconds of each call of ``fn``."""
    wall, cpu = [], []
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return np.array(wall), np.array(cpu)


def load() -> str:
    return "load " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def magnify_rows(rounds: int) -> None:
    rng = np.random.default_rng(0)
    clip = (
        cv2.GaussianBlur(rng.random((240, 320 * 64 * 3)).astype(np.float32), (0, 0), 2)
        .reshape(240, 320, 64, 3)
        .transpose(2, 0, 1, 3)
        .copy()
    )
    copy = best_of(lambda: clip.copy(), 5)
    clips = {"float32 (0..1)": np.clip(clip, 0, 1), "uint8": np.rint(clip * 255).astype(np.uint8)}
    print(
        f"magnify_eulerian, 64 x 240 x 320 RGB, {rounds} calls in a warm process ({load()}); "
        f"numpy copy of the float clip {copy * 1e3:.1f} ms"
    )
    for name, frames in clips.items():
        first = best_of(
            lambda: magnify_eulerian(frames), 1
        )  # numba compiles its passes for this dtype; OpenCV's first use
        wall, cpu = timed(lambda: magnify_eulerian(frames), rounds)
        fps = 64 / wall
        print(
            f"  {name:15s} {np.median(fps):6.0f} frames/s median ({fps.min():.0f}-{fps.max():.0f}; "
            f"{np.median(wall) * 1e3:.1f} ms), CPU {np.median(cpu) * 1e3:.0f} ms per call; first call {first * 1e3:.0f} ms"
        )
    print(f"  ({load()} after)")


def flow_rows() -> None:
    rng = np.random.default_rng(0)
    for side in (128, 192):
        a = cv2.GaussianBlur(rng.random((side, side)).astype(np.float32), (0, 0), 1.5)
        b = np.roll(a, 1, axis=1)
        for method in ("tvl1", "dis"):
            t = best_of(lambda: optical_flow(a, b, method=method), 5)
            print(f"{method:5s} flow at {side}x{side}: {1 / t:7.1f} pairs/s ({t * 1e3:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7, help="timed calls per row, after the first")
    parser.add_argument("--held-to-avx2", action="store_true", help="run in a fresh process held to AVX2")
    parser.add_argument("--magnify-only", action="store_true")
    args = parser.parse_args()
    if args.held_to_avx2 and any(os.environ.get(k) != v for k, v in HELD_TO_AVX2.items()):
        argv = [sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
        sys.exit(
            subprocess.run(argv, env={**os.environ, **HELD_TO_AVX2}).returncode
        )  # vector widths are fixed at start-up
    print(f"CPU: {cpu_name()}")
    magnify_rows(args.rounds)
    if not args.magnify_only:
        flow_rows()


if __name__ == "__main__":
    main()
