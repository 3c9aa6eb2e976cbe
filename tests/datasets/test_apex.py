import numpy as np
import pytest

from merkit.datasets import load
from merkit.preprocess.apex import estimate_apex, fill_apex
from merkit.synthetic import Expression, FaceGeometry, Nuisance, synthesize_clip


def test_middle_and_motion_apex_on_a_clip_with_a_known_peak():
    # a blob on a textured background moves right and back; it is furthest from its start at t = 17
    strength = np.exp(-0.5 * ((np.arange(30) - 17) / 3.0) ** 2)
    y, x = np.mgrid[0:32, 0:32]
    background = 50 + 10 * np.sin(x / 2.0) * np.cos(y / 3.0)
    frames = np.stack([background + 100 * np.exp(-((x - 12 - 4 * s) ** 2 + (y - 16) ** 2) / 8.0) for s in strength])
    assert estimate_apex(frames, 3, 25, method="middle") == 14
    assert estimate_apex(frames, 3, 25, method="motion") == 17


@pytest.mark.parametrize("apex", [10, 40])
def test_motion_apex_finds_an_early_or_late_apex_despite_drift_and_noise(apex):
    rng = np.random.default_rng(apex)
    geometry = FaceGeometry.random((144, 120), rng)
    frames, *_ = synthesize_clip(
        geometry,
        Expression.random("surprise", 0.8, rng),
        n_frames=50,
        onset=0,
        apex=apex,
        offset=49,
        nuisance=Nuisance(),
        rng=rng,
    )
    assert abs(estimate_apex(frames, 0, 49, method="middle") - apex) >= 14
    assert abs(estimate_apex(frames, 0, 49, method="motion") - apex) <= 3


def test_motion_apex_is_near_the_true_apex_of_synthetic_smic(layouts):
    written = layouts["smic_hs"]
    data = load("smic_hs", root=written.root, labels="original")
    filled = fill_apex(data, "motion")
    assert (filled.metadata["apex_source"] == "motion").all() and filled.metadata["apex"].notna().all()
    truth = {(t.subject, t.clip): t.apex for t in written.clips}

    def median_error(table):
        return np.median(
            [
                abs(int(a) - truth[(s, c)]) / n
                for s, c, a, n in table.metadata[["subject", "clip", "apex", "n_frames"]].itertuples(index=False)
            ]
        )

    motion, middle = median_error(filled), median_error(fill_apex(data, "middle"))
    assert motion < 0.15, "the apex found by motion is within 15% of the clip of the true one"
    assert motion < middle / 2, f"motion ({motion:.3f}) must beat the constant middle guess ({middle:.3f}) by half"


def test_annotated_apexes_are_kept_and_the_source_recorded(layouts):
    data = load("casme2", root=layouts["casme2"].root, labels="original")
    filled = fill_apex(data, "middle")
    annotated = data.metadata["apex"].notna()
    assert annotated.any() and (~annotated).any()
    assert (filled.metadata["apex"][annotated] == data.metadata["apex"][annotated]).all()
    assert set(filled.metadata["apex_source"][annotated]) == {"annotation"}
    assert set(filled.metadata["apex_source"][~annotated]) == {"middle"}
    middle = (data.metadata["onset"] + data.metadata["offset"]) // 2
    assert (filled.metadata["apex"][~annotated] == middle[~annotated]).all()
