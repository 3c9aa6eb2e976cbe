import shutil

import pytest

from merkit.synthetic import SynthConfig, write_casme2, write_megc2019

SMALL = SynthConfig(n_subjects=5, clips_per_subject=(3, 4), seed=1)
QUICK = {  # each registered method at a size that trains in seconds on the small set
    "apex_flow_svm": {}, "lbptop_svm": {}, "mdmo_svm": {"flow": "dis"}, "au_prevalence": {},
    "ststnet": {"epochs": 2}, "offapexnet": {"epochs": 2},
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
