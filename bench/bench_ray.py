"""The demo's LOSO on a 2-CPU local Ray cluster against --jobs 2: start-up time and overhead per fold.

Run by hand: ``.venv/bin/python bench/bench_ray.py [--method lbptop_svm]``. Writes the synthetic
demo set, its cache and the runs under ``bench/results/ray``. The cluster is a head on 127.0.0.2
(Ray rewrites 127.0.0.1 to the interface address) with two CPUs, stopped at the end; the cache is
filled first, so both timings are the folds alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_name  # bench/machine.py
from merkit.datasets import load
from merkit.evaluation import evaluate
from merkit.evaluation.runner import prepare
from merkit.executors import LocalExecutor, RayExecutor
from merkit.methods import create_method
from merkit.preprocess.apex import fill_apex
from merkit.preprocess.cache import Cache
from merkit.synthetic import SynthConfig, is_written, write_casme2

HOST = "127.0.0.2"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="lbptop_svm")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ray")
    args = parser.parse_args()
    root, cache = args.out / "data", args.out / "cache"
    if not is_written(root, SynthConfig()):
        write_casme2(root, SynthConfig(), jobs=2)
    data = fill_apex(load("casme2", root=root, labels="seed4"), "middle")
    prepare(args.method, create_method(args.method).params(), data, Cache(cache), executor=LocalExecutor(2))
    print(f"{args.method}, LOSO on {len(data)} clips, {len(set(data.groups))} folds; {cpu_name()}")

    shutil.rmtree(args.out / "local", ignore_errors=True)
    start = time.perf_counter()
    evaluate(data, args.method, out=args.out / "local", cache=cache, executor=LocalExecutor(2))
    local = time.perf_counter() - start
    print(f"  --jobs 2 (local processes)        {local:6.1f} s")

    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent))
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = time.perf_counter()
    subprocess.run(
        [
            ray_bin,
            "start",
            "--head",
            "--node-ip-address",
            HOST,
            "--port",
            str(port),
            "--num-cpus",
            "2",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    executor = RayExecutor(f"{HOST}:{port}")
    started = time.perf_counter() - start
    try:
        import ray

        start = time.perf_counter()
        ray.get([ray.remote(lambda: None).remote() for _ in range(100)])
        empty = (time.perf_counter() - start) / 100
        shutil.rmtree(args.out / "ray", ignore_errors=True)
        start = time.perf_counter()
        evaluate(data, args.method, out=args.out / "ray", cache=cache, executor=executor)
        on_ray = time.perf_counter() - start
    finally:
        ray.shutdown()
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True)
    folds = len(set(data.groups))
    print(
        f"  Ray, 2-CPU local cluster          {on_ray:6.1f} s  ({(on_ray - local) / folds * 1e3:+.0f} ms per fold against --jobs 2)"
    )
    print(f"  Ray start-up (ray start + init)   {started:6.1f} s")
    print(f"  an empty Ray task, round trip     {empty * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
