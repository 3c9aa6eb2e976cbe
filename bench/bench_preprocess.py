"""Speed of the preprocessing blocks (run by hand: ``.venv/bin/python bench/bench_preprocess.py``).

- ``magnify_eulerian`` on a 64-frame 240x320 RGB clip, in frames per second, beside the time of a
  plain NumPy copy of the clip (one read and one write of every value), so the distance from the
  memory-bandwidth bound reads as a ratio;
- TV-L1 optical flow pairs per second at 128x128 and 192x192 (DIS for comparison).
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from machine import cpu_name  # bench/machine.py
from merkit.preprocess.flow import optical_flow
from merkit.preprocess.magnify import magnify_eulerian


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    print(f"CPU: {cpu_name()}")
    rng = np.random.default_rng(0)
    clip = cv2.GaussianBlur(rng.random((240, 320 * 64 * 3)).astype(np.float32), (0, 0), 2).reshape(240, 320, 64, 3).transpose(2, 0, 1, 3).copy()
    copy = best_of(lambda: clip.copy(), 5)
    frames = np.rint(clip * 255).astype(np.uint8)  # as a camera delivers them
    first = best_of(lambda: magnify_eulerian(frames), 1)  # numba compiles its colour pass; OpenCV's first use
    magnify = best_of(lambda: magnify_eulerian(frames), 7)
    print(f"magnify_eulerian, 64 x 240 x 320 RGB uint8: {64 / magnify:6.1f} frames/s ({magnify * 1e3:.0f} ms, best of 7; "
          f"the first call in a process {first * 1e3:.0f} ms); numpy copy of the float clip {copy * 1e3:.1f} ms")
    for side in (128, 192):
        a = cv2.GaussianBlur(rng.random((side, side)).astype(np.float32), (0, 0), 1.5)
        b = np.roll(a, 1, axis=1)
        for method in ("tvl1", "dis"):
            t = best_of(lambda: optical_flow(a, b, method=method), 5)
            print(f"{method:5s} flow at {side}x{side}: {1 / t:7.1f} pairs/s ({t * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
