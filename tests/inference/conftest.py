import shutil
import subprocess

import pytest

from merkit.synthetic import SynthConfig, write_casme2


@pytest.fixture(scope="session")
def casme2_pair(tmp_path_factory):
    """Two synthetic CASME II sets whose subjects differ (other seeds, other faces): train on the
    first, predict the second, as a user applies a model to people it never saw."""
    root = tmp_path_factory.mktemp("pair")
    return (
        write_casme2(root / "train", SynthConfig(n_subjects=8, seed=11), jobs=2),
        write_casme2(root / "new", SynthConfig(n_subjects=3, seed=12), jobs=2),
    )


@pytest.fixture(scope="session")
def headless_chromium():
    """``run(profile, *args)``: Debian's Chromium, headless and offline (no sync, updates or
    background traffic), with its own profile folder; the finished process, its output as text."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")

    def run(profile, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run
