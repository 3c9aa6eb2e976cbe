import dataclasses

import numpy as np
import pytest

from merkit.methods import FeatureMethod, register_method
from merkit.preprocess.pipeline import Representation, Step, register_step
from merkit.synthetic import LAYOUTS, SynthConfig, write_dataset

register_step("clip_lengths")(lambda data, clip: np.array([clip.n_frames], dtype=float))


@register_method
@dataclasses.dataclass
class LengthMethod(FeatureMethod):
    """Test double for runs over a dataset: classifies a clip by its number of frames (1-NN)."""

    name = "length_for_tests"
    summary = "test double: classifies by clip length"

    def representation(self):
        return Representation(Step("clip_lengths"))

    def make_classifier(self, seed):
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(1)


def layout_config(layout: str, **changes) -> SynthConfig:
    _, fps, emotions, _ = LAYOUTS[layout]
    return SynthConfig(
        **{
            "n_subjects": 3,
            "clips_per_subject": (2, 3),
            "fps": fps,
            "emotions": emotions,
            "missing_apex": 0.3,
            "seed": 2,
            **changes,
        }
    )


@pytest.fixture(scope="session")
def layouts(tmp_path_factory):
    """Every layout written once (3 subjects, 2-3 clips each, many missing apexes); read-only."""
    root = tmp_path_factory.mktemp("layouts")
    return {
        layout: write_dataset(layout, root / layout, layout_config(layout, n_subjects=9 if layout == "smic_hs" else 3))
        for layout in LAYOUTS
    }
