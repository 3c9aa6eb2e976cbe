"""Speed of ``lbp_top`` on a 30x128x128 clip with 5x5 blocks (the lbptop_svm default grid).

Run by hand: ``.venv/bin/python bench/bench_lbp_top.py``. Prints the median of repeated runs
and, for scale, the time of one pass of NumPy over the clip (a copy).
"""

from __future__ import annotations

import time

import numpy as np

from machine import cpu_name  # bench/machine.py
from merkit.features import lbp_top


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    clip = np.random.default_rng(0).integers(0, 256, (30, 128, 128)).astype(np.float64)
    print(f"lbp_top on a 30x128x128 clip, 5x5x1 blocks, P=8 ({cpu_name()})")
    copy = median_seconds(lambda: clip.copy(), 50)
    print(f"  numpy copy of the clip        {copy * 1e3:7.2f} ms")
    for radius in [(1, 1, 1), (1, 1, 4)]:
        for interpolation in ("nearest", "bilinear"):
            t = median_seconds(lambda: lbp_top(clip, radius=radius, blocks=(5, 5, 1), interpolation=interpolation), 20)
            print(
                f"  radius {radius} {interpolation:8s}  {t * 1e3:7.2f} ms  ({1 / t:6.1f} clips/s, {t / copy:5.0f}x a copy)"
            )


if __name__ == "__main__":
    main()
