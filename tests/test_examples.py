"""Every Python example of the README and the documentation runs, as written, as a script.

Each ```python block is saved as a file and run with ``python example.py``, the way most people
run an example, on the small synthetic CASME II; only the paths it names are replaced, by the
table below. A new example that names a path not in the table fails here, saying which.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from merkit.io.video import write_video

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
EXAMPLES = [(page, i, code) for page in PAGES for i, code in enumerate(BLOCK.findall(page.read_text()))]


def test_the_readme_and_the_python_guide_have_examples():
    assert {page.relative_to(ROOT).as_posix() for page, _, _ in EXAMPLES} >= {"README.md", "docs/guide/python.md"}


@pytest.fixture(scope="module")
def inputs(small_casme2, tmp_path_factory):
    """{path as the examples write it: the synthetic stand-in}."""
    folder = tmp_path_factory.mktemp("example-inputs")
    from merkit.datasets import load

    clip = load("casme2", root=small_casme2.root, labels="seed4")[0]
    frames = clip.read()[clip.onset : clip.offset + 1]
    write_video(folder / "clip.mp4", frames, clip.fps, crf=10)
    for name in ("clip_a", "clip_b"):
        (folder / name).mkdir()
        for k, frame in enumerate(frames):
            cv2.imwrite(str(folder / name / f"img{k + 1}.png"), frame[..., ::-1])
    return {
        '"/data/CASME2"': repr(str(small_casme2.root)),
        '"clip.mp4"': repr(str(folder / "clip.mp4")),
        '"clip_a/"': repr(str(folder / "clip_a")),
        '"clip_b/"': repr(str(folder / "clip_b")),
    }


@pytest.mark.parametrize(
    ("page", "index", "code"), EXAMPLES, ids=[f"{p.relative_to(ROOT).as_posix()}#{i}" for p, i, _ in EXAMPLES]
)
def test_the_example_runs_as_a_script(page, index, code, inputs, tmp_path):
    for written, real in inputs.items():
        code = code.replace(written, real)
    unknown = re.findall(r"\"/(?:data|home|Users)/[^\"]*\"", code)
    assert not unknown, f"{page.name} example {index} names {unknown}: add a synthetic stand-in to this test's table"
    script = tmp_path / "example.py"
    script.write_text(code)
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{page.name} example {index} failed:\n{run.stdout}\n{run.stderr}"
