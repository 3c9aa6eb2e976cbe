import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from merkit.synthetic import SynthConfig, write_casme2, write_megc2019

SMALL = SynthConfig(n_subjects=5, clips_per_subject=(3, 4), seed=1)
QUICK = {  # each registered method at a size that trains in seconds on the small set
    "apex_flow_svm": {},
    "lbptop_svm": {},
    "mdmo_svm": {"flow": "dis"},
    "au_prevalence": {},
    "ststnet": {"epochs": 2},
    "offapexnet": {"epochs": 2},
    "sssnet": {"epochs": 2},
    "htnet": {"epochs": 2, "dim": 8, "heads": 1, "block_repeats": (1, 1, 1)},
    "rcn": {"epochs": 2, "maps": 8},
    "ensemble": {"members": "apex_flow_svm,sssnet", "bag": 2, "member_settings": "sssnet.epochs=2"},
    "mer_rcnn": {"maps": 4, "max_epochs": 1, "batch_size": 32, "align": False, "jitter": False},
    "stanet": {"size": 32, "widths": (4, 8, 8, 8), "n_frames": 6, "epochs": 1, "hidden": 4},
}


@pytest.fixture(scope="session")
def quick():
    """{method: parameters} that train each registered method in seconds (a test guards that
    every method registered in merkit has an entry)."""
    return QUICK


@pytest.fixture(scope="session")
def small_casme2(tmp_path_factory):
    """A synthetic CASME II of 5 subjects, 3-4 clips each, with its truth (read-only: copy to change)."""
    return write_casme2(tmp_path_factory.mktemp("casme2"), SMALL)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One preprocessing cache for the whole session, as a user's runs share theirs."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def casme2_copy(small_casme2, tmp_path):
    """A copy of the small synthetic CASME II that a test may damage."""
    return shutil.copytree(small_casme2.root, tmp_path / "CASME2")


@pytest.fixture(scope="session")
def megc(tmp_path_factory):
    """A synthetic MEGC 2019 composite (4 subjects per dataset) and what was written; read-only."""
    root = tmp_path_factory.mktemp("megc")
    return root, write_megc2019(root, SynthConfig(n_subjects=4, clips_per_subject=(3, 4), seed=5))


RAY_HOST = (
    "127.0.0.2"  # Ray rewrites 127.0.0.1 (and localhost) to the interface address on Linux; it leaves this one alone
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((RAY_HOST, 0))
        return s.getsockname()[1]


def _stop_ray_processes(temp_dir: str) -> None:
    """End this cluster's processes only: those whose command line names its ``temp_dir``, and
    their descendants (the workers). ``ray stop`` would end every Ray process on the machine."""
    processes = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                args = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            processes[int(entry)] = (int(stat.rsplit(")", 1)[1].split()[1]), args)
    ours = {pid for pid, (_, args) in processes.items() if temp_dir in args}
    while more := {pid for pid, (parent, _) in processes.items() if parent in ours} - ours:
        ours |= more

    def running(pid):
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in ours:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + 3  # some outlast SIGTERM by 10 s (teardowns took 10.5 s); SIGKILL follows
        while any(map(running, ours)) and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster():
    """A real Ray cluster on loopback for one test module: ``ray start --head`` on 127.0.0.2 and a
    second node joined to it, one CPU each; its address ``HOST:PORT``. Every connection stays on
    this machine, and only this cluster's processes are stopped at the end of the module."""
    ray = pytest.importorskip("ray")
    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent))
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="merkit-ray-")  # short: Ray's socket paths live under it
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path]),
    }
    common = ["--num-cpus", "1", "--object-store-memory", "100000000", "--disable-usage-stats", "--temp-dir", temp_dir]
    try:
        subprocess.run(
            [
                ray_bin,
                "start",
                "--head",
                "--node-ip-address",
                RAY_HOST,
                "--port",
                str(port),
                "--include-dashboard",
                "false",
                *common,
            ],
            check=True,
            env=env,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [ray_bin, "start", "--address", f"{RAY_HOST}:{port}", "--node-ip-address", RAY_HOST, *common],
            check=True,
            env=env,
            capture_output=True,
            timeout=120,
        )
        yield f"{RAY_HOST}:{port}"
    finally:
        ray.shutdown()
        _stop_ray_processes(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
