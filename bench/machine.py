"""What the benchmarks ran on, printed first by each: a figure without its CPU is not a figure."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_name() -> str:
    """The model name ``lscpu`` shows, the cores, and whether AVX-512 is there (or held off:
    ``NPY_DISABLE_CPU_FEATURES`` / ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` set, as the AVX2 rows are run)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "unknown CPU"
    )
    keys = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NPY_DISABLE_CPU_FEATURES", "ATEN_CPU_CAPABILITY", "CC")
    held = [f"{k}={os.environ[k] or repr('')}" for k in keys if k in os.environ]
    return (
        f"{name}, {os.cpu_count()} cores"
        + (" with AVX-512" if " avx512f" in info else "")
        + (f"; held: {', '.join(held)}" if held else "")
    )


OPENCV_AVX512 = (
    "AVX512F,AVX512BW,AVX512CD,AVX512DQ,AVX512VL,AVX512IFMA,AVX512VBMI,AVX512VBMI2,AVX512VNNI,AVX512BITALG,"
    "AVX512VPOPCNTDQ,AVX512-SKX,AVX512-COMMON"
)
HELD_TO_AVX2 = {  # environment that makes this process compute as on an AVX2-only CPU without a C compiler
    "CC": "false",  # and no C compiler (merkit needs none)
    "NUMBA_CPU_NAME": "haswell",  # numba compiles for AVX2
    "NUMBA_CPU_FEATURES": "",  # and no more: without it numba adds the host's features (AVX-512) to haswell's
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's AVX2 kernels
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL",  # NumPy's
    "OPENCV_CPU_DISABLE": OPENCV_AVX512,  # OpenCV's
}
