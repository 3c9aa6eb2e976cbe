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
