"""Peak memory of ``merkit prepare`` on 25- and 100-clip synthetic sets: it must not grow with the
number of clips (clips are streamed, one at a time). Run by hand:
``.venv/bin/python bench/bench_prepare_memory.py``. Each run is a fresh process; its peak resident
memory comes from the operating system (getrusage of the child).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from merkit.synthetic import SynthConfig, write_casme2


def peak_prepare(root: Path, cache: Path, method: str, extra: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "merkit",
            "prepare",
            "--dataset",
            "casme2",
            "--root",
            str(root),
            "--method",
            method,
            "--cache",
            str(cache),
            "--jobs",
            "1",
            *extra,
        ],
        check=True,
        capture_output=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(after, before) / 1024, time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"{'clips':>5s} {'method':14s} {'peak RSS MB':>11s} {'time s':>7s}")
        for n_subjects in (4, 13):  # about 25 and 100 clips
            config = SynthConfig(n_subjects=n_subjects, clips_per_subject=(7, 8), seed=3)
            data = write_casme2(tmp / f"d{n_subjects}", config, jobs=2)
            for method, extra in (("lbptop_svm", []), ("apex_flow_svm", ["--apex", "middle"])):
                # getrusage keeps the largest child so far: measure each size in its own process
                code = (
                    f"import sys; sys.argv=['x']; from bench.bench_prepare_memory import peak_prepare; from pathlib import Path; "
                    f"print(*peak_prepare(Path({str(data.root)!r}), Path({str(tmp / ('c' + str(n_subjects) + method))!r}), {method!r}, {extra!r}))"
                )
                out = subprocess.run(
                    [sys.executable, "-c", code],
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=Path(__file__).parent.parent,
                )
                peak, seconds = map(float, out.stdout.split())
                print(f"{len(data.clips):5d} {method:14s} {peak:11.0f} {seconds:7.1f}", flush=True)


if __name__ == "__main__":
    main()
