"""Small C kernels, compiled at first use with the system's C compiler and called through ctypes.

A kernel is one ``<name>.c`` file beside this module. ``load(name)`` compiles it once per
source, compiler and CPU (``-O3 -march=native``, IEEE arithmetic kept: no fast-math) into
``<cache>/kernels/`` and returns the library, or None where no compiler works; every kernel has
a numba kernel computing the same function (no compiler needed), used then. The C kernel stays
only while it is faster on some CPU (STSTNet's, on AVX-512: ``docs/apex_flow_nets.md``).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import tempfile
import warnings
from pathlib import Path

from merkit.preprocess.cache import default_cache_dir

FLAGS = ("-O3", "-march=native", "-mprefer-vector-width=512", "-funroll-loops", "-shared", "-fPIC", "-fno-math-errno")


def _cpu_signature() -> str:
    try:
        return next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return platform.processor()


@functools.cache
def load(name: str) -> ctypes.CDLL | None:
    """The compiled kernel ``name``, or None (with a warning, once) if it cannot be built."""
    source = Path(__file__).with_name(f"{name}.c")
    compiler = os.environ.get("CC", "cc")
    key = hashlib.sha256("\n".join([source.read_text(), compiler, *FLAGS, platform.machine(), _cpu_signature()]).encode()).hexdigest()[:16]
    target = default_cache_dir() / "kernels" / f"{name}-{key}.so"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".so")
        os.close(fd)
        try:
            subprocess.run([compiler, *FLAGS, "-o", tmp, str(source)], check=True, capture_output=True, timeout=120)
            os.replace(tmp, target)
        except (OSError, subprocess.SubprocessError) as error:
            Path(tmp).unlink(missing_ok=True)
            detail = getattr(error, "stderr", b"") or b""
            if compiler not in ("false", ""):  # CC=false: no C kernels wanted, and numba's need no compiler
                warnings.warn(f"merkit could not compile its {name} kernel with {compiler!r} ({error}; "
                              f"{detail.decode(errors='replace')[:300]}); numba's kernel is used instead.", stacklevel=2)
            return None
    try:
        return ctypes.CDLL(str(target))
    except OSError as error:  # a damaged or foreign library in the cache: fall back, say how to rebuild
        warnings.warn(f"merkit could not load its compiled {name} kernel {target} ({error}); numba's kernel is used instead. "
                      "Delete that file to have it compiled again.", stacklevel=2)
        return None
