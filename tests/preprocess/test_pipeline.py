import numpy as np
import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.datasets import load
from merkit.errors import ConfigError
from merkit.features import lbp_top
from merkit.preprocess.cache import Cache
from merkit.preprocess.pipeline import Representation, Step, register_step
from merkit.preprocess.temporal import tim

CALLS = []


@register_step("count_for_tests")
def _count(data, clip, *, tag):
    CALLS.append(tag)
    return np.asarray(data, dtype=float) + 1 if data is not None else np.array([float(clip.n_frames)])


def test_results_come_from_the_cache_and_kept_steps_are_shared(small_casme2, tmp_path):
    clip = load("casme2", root=small_casme2.root)[0]
    cache = Cache(tmp_path)
    first = Representation(Step("count_for_tests", tag="a", keep=True), Step("count_for_tests", tag="b"))
    CALLS.clear()
    value, computed = first.get(clip, cache)
    assert computed and value.tolist() == [clip.n_frames + 1] and CALLS == ["a", "b"]
    again, computed = first.get(clip, cache)
    assert not computed and np.array_equal(again, value)
    assert CALLS == ["a", "b"], "the second call read the cache"
    other = Representation(Step("count_for_tests", tag="a", keep=True), Step("count_for_tests", tag="c"))
    other.get(clip, cache)
    assert CALLS == ["a", "b", "c"], "the kept first step was reused, only the new last step ran"


def test_lbp_top_representation_is_the_descriptor_of_the_resized_tim_clip(small_casme2, tmp_path):
    import cv2

    clip = load("casme2", root=small_casme2.root)[1]
    rep = Representation(
        Step("frames", grey=True),
        Step("resize", size=(64, 64)),
        Step("tim", n_frames=12),
        Step("lbp_top", radius=(1, 1, 2), blocks=(2, 2, 1)),
    )
    frames = clip.read(grey=True)[clip.onset : clip.offset + 1]
    resized = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in frames])
    expected = lbp_top(np.clip(np.rint(tim(resized, 12)), 0, 255), radius=(1, 1, 2), blocks=(2, 2, 1))
    np.testing.assert_allclose(rep.get(clip, Cache(tmp_path))[0], expected, rtol=1e-6)


def test_unknown_steps_are_named():
    with pytest.raises(ConfigError, match="Unknown preprocessing step 'blur'"):
        Step("blur")


def test_prepare_summarises_computed_reused_and_failed(small_casme2, tmp_path):
    runner = CliRunner()
    args = ["prepare", "--dataset", "casme2", "--root", str(small_casme2.root), "--cache", str(tmp_path)]
    first = runner.invoke(app, [*args, "--method", "lbptop_svm", "--set", "size=64x64", "--jobs", "2"])
    n = len(small_casme2.clips)
    assert first.exit_code == 0 and f"{n} computed, 0 reused from the cache, 0 failed" in first.output, first.output
    again = runner.invoke(app, [*args, "--method", "lbptop_svm", "--set", "size=64x64"])
    assert f"0 computed, {n} reused from the cache, 0 failed" in again.output
    no_apex = sum(c.apex is None for c in small_casme2.clips)
    flows = runner.invoke(app, [*args, "--method", "apex_flow_svm"])
    assert flows.exit_code == 1 and f"{no_apex} failed" in flows.output and "--apex middle" in flows.output
    fixed = runner.invoke(app, [*args, "--method", "apex_flow_svm", "--apex", "motion"])
    assert fixed.exit_code == 0 and f"{no_apex} computed, {n - no_apex} reused" in fixed.output


def test_an_aligned_30_frame_magnified_clip_at_32x32(small_casme2, tmp_path):
    clip = load("casme2", root=small_casme2.root)[2]
    rep = Representation(
        Step("frames"),
        Step("align", size=(128, 112), upsample=2, keep=True),
        Step("resize_time", n_frames=30, method="bicubic"),
        Step("magnify", alpha=10, lambda_c=16),
        Step("resize", size=(32, 32)),
    )
    value, computed = rep.get(clip, Cache(tmp_path))
    assert computed and value.shape == (30, 32, 32, 3) and value.dtype == np.float32
    assert 0.0 <= value.min() and value.max() <= 1.0

    def chain(*middle):
        return (
            Representation(
                Step("frames"),
                *middle,
                Step("resize_time", n_frames=30, method="bicubic"),
                Step("resize", size=(32, 32)),
            )
            .get(clip, Cache(tmp_path))[0]
            .astype(np.float32)
            / 255
        )

    aligned = chain(Step("align", size=(128, 112), upsample=2, keep=True))
    still = Representation(*rep.steps[:3], Step("magnify", alpha=0, lambda_c=16), rep.steps[4]).get(
        clip, Cache(tmp_path)
    )[0]
    # alpha 0: the aligned frames, up to the rounding of the uint8 chain to grey levels (a few
    # pixels, under 1 %, differ by up to 5 levels where the float pyramid meets that rounding)
    gap = np.abs(still - aligned) * 255
    assert gap.mean() < 0.5 and np.quantile(gap, 0.99) < 1.5, (
        gap.mean(),
        np.quantile(gap, 0.99),
    )  # rounding alone: 0.25, 0.5
    change = np.abs(value - value[0]).mean(axis=(1, 2, 3))
    change_still = np.abs(still - still[0]).mean(axis=(1, 2, 3))
    assert change.max() > 2 * change_still.max(), "magnification amplifies the change from the onset"
    unaligned = chain()
    assert np.abs(unaligned[0] - aligned[0]).mean() > 0.02, "alignment moved and scaled the face"
