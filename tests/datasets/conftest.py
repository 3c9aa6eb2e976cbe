import pytest

from merkit.synthetic import LAYOUTS, SynthConfig, write_dataset


def layout_config(layout: str, **changes) -> SynthConfig:
    _, fps, emotions, _ = LAYOUTS[layout]
    return SynthConfig(**{"n_subjects": 3, "clips_per_subject": (2, 3), "fps": fps, "emotions": emotions,
                          "missing_apex": 0.3, "seed": 2, **changes})


@pytest.fixture(scope="session")
def layouts(tmp_path_factory):
    """Every layout written once (3 subjects, 2-3 clips each, many missing apexes); read-only."""
    root = tmp_path_factory.mktemp("layouts")
    return {layout: write_dataset(layout, root / layout, layout_config(layout, n_subjects=9 if layout == "smic_hs" else 3))
            for layout in LAYOUTS}

