"""The habits of a maintained library: one version everywhere, ``merkit --version``, ``python -m merkit``."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from typer.testing import CliRunner

import merkit
from merkit.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_written_once_and_named_alike_everywhere():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", merkit.__version__)
    releases = re.findall(r"^## (\d+\.\d+\.\d+)", (ROOT / "CHANGELOG.md").read_text(), flags=re.M)
    assert releases[0] == merkit.__version__
    assert f'version: "{merkit.__version__}"' in (ROOT / "CITATION.cff").read_text()


def test_no_upper_cap_on_python_or_any_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    for requirement in project["dependencies"]:
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+>=[\d.]+", requirement), requirement


def test_version_option_prints_the_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"merkit {merkit.__version__}"


def test_python_dash_m_merkit_is_the_merkit_command():
    done = subprocess.run([sys.executable, "-m", "merkit", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"merkit {merkit.__version__}"
