"""Where work runs: local processes or a Ray cluster, behind one small interface.

An executor takes calls ``{key: (fn, *args)}`` and yields ``(key, fn(*args))`` as each finishes,
with a progress bar. Evaluation, preparation and training submit their folds and clips through
it, so none of them knows which executor runs the work:

- ``local`` (the default): here, in order, with ``jobs=1``; otherwise in ``jobs`` processes,
  which end with the run: interrupted (Ctrl-C, SIGTERM) or killed, no worker trains on.
- ``ray``: tasks on a Ray cluster that already exists (``address='auto'`` or ``'HOST:PORT'``),
  or on one started for the run (``address=None``). Each task declares ``num_cpus`` (and
  ``num_gpus`` for networks on ``cuda``); a task whose worker process dies is run again
  (``max_retries``), and the caller writes each result as it arrives, so a driver that dies
  loses only the tasks in flight.

Arguments shared by many calls (a dataset) go to Ray's object store once, not once per task.
Functions and arguments must be importable by the workers: merkit must be installed on every
node, at the same version.
"""

from __future__ import annotations

import ast
import os
import sys
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from merkit.errors import ConfigError, check_choice
from merkit.progress import progress_bar

Calls = dict[Hashable, tuple]  # key -> (fn, *args)


def die_with(parent: int) -> None:
    """Make this process end when the process ``parent`` does (Linux: ``PR_SET_PDEATHSIG``), so a
    worker never outlives a run that was killed; if ``parent`` is already gone, end now."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _start_worker(parent: int, threads: int) -> None:
    die_with(parent)
    limit_threads(threads)


def limit_threads(threads: int) -> None:
    """Share the cores between parallel tasks: OpenMP/BLAS, OpenCV and PyTorch threads."""
    import cv2
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    cv2.setNumThreads(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass


def _guarded_lines(path: str) -> list[range]:
    """The line ranges of ``path``'s ``if`` blocks whose test compares ``__name__`` with ``"__main__"``."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), path)
    blocks = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
            words = {n.value for n in ast.walk(node.test) if isinstance(n, ast.Constant)}
            if "__name__" in names and "__main__" in words:
                blocks.append(range(node.lineno, node.end_lineno + 1))
    return blocks


def check_main_guarded(jobs: int) -> None:
    """Refuse to spawn worker processes from a script's unguarded top level, naming the line.

    A spawned worker runs the main script again; where the script calls merkit at its top level
    without ``if __name__ == "__main__":``, each worker would start workers of its own and die
    (``BrokenProcessPool``). From ``python -c``, a notebook or a guarded script this passes.

    Raises
    ------
    ConfigError
        Naming the script, the line and what to add.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path or not path.endswith(".py"):
        return
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)):
        frame = frame.f_back
    if frame is None:
        return
    try:
        blocks = _guarded_lines(frame.f_code.co_filename)
    except (OSError, SyntaxError, UnicodeDecodeError):  # no readable source: let the pool say what it says
        return
    line = frame.f_lineno
    if not any(line in block for block in blocks):
        raise ConfigError(
            f"{path}, line {line}: merkit runs jobs={jobs} in spawned worker processes, and each of them runs "
            f'this script again from the top. Put the script\'s work under `if __name__ == "__main__":` '
            f"(or in a main() called from there), or pass jobs=1."
        )


def spawn_pool(jobs: int, **options) -> ProcessPoolExecutor:
    """A pool of ``jobs`` spawned processes, after :func:`check_main_guarded`."""
    check_main_guarded(jobs)
    return ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), **options)


class Executor:
    """Runs calls and yields ``(key, result)`` as each finishes (any order).

    ``ships_representations``: the workers may see neither the dataset nor the cache folder, so
    the caller prepares every clip itself and sends the representations with the work.
    """

    name = "executor"
    ships_representations = False

    def map(self, calls: Calls, description: str) -> Iterator[tuple[Hashable, object]]:
        raise NotImplementedError


class LocalExecutor(Executor):
    """Calls here, in order (``jobs=1`` or a single call), or in ``jobs`` spawned processes."""

    name = "local"

    def __init__(self, jobs: int = 1):
        if not isinstance(jobs, int) or jobs < 1:
            raise ConfigError(f"--jobs must be a positive whole number; got {jobs!r}.")
        self.jobs = jobs

    def map(self, calls: Calls, description: str) -> Iterator[tuple[Hashable, object]]:
        with progress_bar(description, len(calls)) as advance:
            if self.jobs <= 1 or len(calls) <= 1:
                for key, (fn, *args) in calls.items():
                    yield key, fn(*args)
                    advance()
                return
            threads = max(1, (os.cpu_count() or 1) // self.jobs)
            pool = spawn_pool(self.jobs, initializer=_start_worker, initargs=(os.getpid(), threads))
            try:
                futures = {pool.submit(fn, *args): key for key, (fn, *args) in calls.items()}
                for future in as_completed(futures):
                    yield futures[future], future.result()
                    advance()
            except BaseException:  # interrupted (Ctrl-C, SIGTERM), a failed call, or the caller stopped reading
                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    process.terminate()  # running calls stop now; the results already yielded stay written
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown()


def _run_task(threads: int, fn: Callable, *args):
    limit_threads(threads)
    return fn(*args)


def _reachable_head(address: str) -> str | None:
    """The host of ``HOST:PORT`` once something answers there (None for ``auto``). ``ray.init``
    retries an address where nothing listens for minutes; this says so at once."""
    import socket

    if address == "auto":
        return None
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address!r}: give the Ray head as HOST:PORT (e.g. 10.0.0.5:6379) or auto.")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return host
    except OSError as error:
        raise ConfigError(
            f"No Ray cluster answers at --address {address} ({error.strerror or error}); start it with "
            "`ray start --head` there, or check the host and port."
        ) from None


class RayExecutor(Executor):
    """Calls as Ray tasks on an existing cluster (``address``) or a local one started for the run.

    Parameters
    ----------
    address : str, optional
        ``'auto'``, ``'HOST:PORT'`` of a running cluster's head, or None to start one here.
    num_cpus, num_gpus : resources each task declares (threads per task follow ``num_cpus``)
    max_retries : how many times a task whose worker process died is run again
    storage : {'shared', 'driver'}
        ``shared``: every node reads the dataset and the cache folder at the same paths (a shared
        filesystem), and workers compute and cache representations as they would here.
        ``driver``: only the driver sees them; it prepares every clip itself and ships the
        representations to the tasks through Ray's object store.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int = 1,
        num_gpus: float = 0,
        max_retries: int = 3,
        storage: str = "shared",
    ):
        check_choice("Ray storage", storage, ("shared", "driver"))
        self.ships_representations = storage == "driver"
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'merkit[ray]' (or pip install ray).") from None
        if num_cpus < 1:
            raise ConfigError(f"Each Ray task needs at least one CPU; got num_cpus={num_cpus}.")
        self.ray, self.num_cpus, self.num_gpus, self.max_retries = ray, int(num_cpus), num_gpus, max_retries
        host = _reachable_head(address) if address else None
        if not ray.is_initialized():
            options = {"log_to_driver": False, "include_dashboard": False, "configure_logging": False}
            if (
                host and host.startswith("127.") and host != "127.0.0.1"
            ):  # Ray rewrites only 127.0.0.1 to the interface address
                options["_node_ip_address"] = host
            ray.init(address=address, **options)

    def map(self, calls: Calls, description: str) -> Iterator[tuple[Hashable, object]]:
        ray = self.ray
        task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=self.max_retries)(_run_task)
        uses = Counter(id(a) for _, *args in calls.values() for a in args)
        shared: dict[int, object] = {}  # id(argument) -> its object reference, for arguments several calls share

        def ref(argument):
            if uses[id(argument)] < 2 or isinstance(argument, (str, int, float, bool, type(None))):
                return argument
            if id(argument) not in shared:
                shared[id(argument)] = ray.put(argument)
            return shared[id(argument)]

        pending = {task.remote(self.num_cpus, fn, *[ref(a) for a in args]): key for key, (fn, *args) in calls.items()}
        try:
            with progress_bar(description, len(pending)) as advance:
                while pending:
                    done, _ = ray.wait(list(pending), num_returns=1)
                    for finished in done:
                        yield pending.pop(finished), ray.get(finished)
                        advance()
        except BaseException:  # interrupted: the tasks this run submitted stop too
            for ref_ in pending:
                ray.cancel(ref_, force=True)
            raise


EXECUTORS = ("local", "ray")


def make_executor(
    name: str = "local", *, jobs: int = 1, address: str | None = None, num_gpus: float = 0, storage: str = "shared"
) -> Executor:
    """The executor ``name``: ``local`` with ``jobs`` processes, or ``ray`` at ``address``."""
    check_choice("executor", name, EXECUTORS)
    if name == "local":
        return LocalExecutor(jobs)
    return RayExecutor(address, num_gpus=num_gpus, storage=storage)
