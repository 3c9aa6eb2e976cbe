import numpy as np
import pytest

from merkit.datasets import load
from merkit.evaluation import make_protocol
from merkit.methods import create_method
from merkit.methods.mer_rcnn import to_tensor
from merkit.preprocess.cache import Cache

TINY = dict(maps=4, max_epochs=2, batch_size=32, align=False)


class RecordingCache(Cache):
    """A cache that notes which clips were asked for."""

    def __init__(self, root):
        super().__init__(root)
        self.asked = []

    def path(self, step, clip, params):
        self.asked.append(clip.key)
        return super().path(step, clip, params)


def test_to_tensor_flattens_each_channel_of_each_frame_to_a_column():
    frames = np.arange(2 * 3 * 4 * 3).reshape(2, 3, 4, 3)
    x = to_tensor(frames)
    assert x.shape == (3, 12, 2)
    np.testing.assert_array_equal(x[1, :, 0], frames[0, :, :, 1].ravel())  # green of frame 0, row by row
    np.testing.assert_array_equal(x[2, 5, :], frames[:, 1, 1, 2])


def test_jittering_multiplies_training_clips_only(small_casme2, tmp_path):
    data = load("casme2", root=small_casme2.root)
    fold = make_protocol("loso").folds(data)[0]
    train, test = data.subset(fold.train), data.subset(fold.test)
    cache = RecordingCache(tmp_path)
    method = create_method("mer_rcnn", **TINY).fit(train, seed=0, cache=cache)
    assert method.n_training_samples_ == 48 * len(train)
    assert set(cache.asked) == set(train.keys), "fit reads the training clips and nothing else"
    cache.asked.clear()
    predicted = method.predict(test, cache=cache)
    assert set(cache.asked) == set(test.keys) and len(predicted) == len(test)
    assert set(predicted) <= set(data.classes)
    plain = create_method("mer_rcnn", **TINY, jitter=False).fit(train, seed=0, cache=cache)
    assert plain.n_training_samples_ == len(train)
    levels = create_method("mer_rcnn", **TINY, keep_levels=2).fit(train, seed=0, cache=cache)
    assert levels.n_training_samples_ == 16 * len(train)


@pytest.mark.slow
def test_mer_rcnn_runs_loso_end_to_end(small_casme2, cache_dir, tmp_path):
    from typer.testing import CliRunner

    from merkit.cli import app

    out = tmp_path / "run"
    args = [
        "evaluate",
        "--dataset",
        "casme2",
        "--root",
        str(small_casme2.root),
        "--method",
        "mer_rcnn",
        "--out",
        str(out),
        "--cache",
        str(cache_dir),
        "--jobs",
        "2",
    ]
    for key, value in {**TINY, "max_epochs": 1, "keep_levels": 1}.items():
        args += ["--set", f"{key}={value}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "report.md").is_file() and "mer_rcnn" in result.output


def test_default_gains_follow_the_papers_bound_at_160():
    """Eq. (5): alpha_c = lambda / (8 delta) - 1 with delta = 16 / 8 / 11. At 160x160, lambda =
    sqrt(2) 160 / 3 = 75.42 at the residual, halved per level: 37.71 -> 24.9 (capped at 10),
    18.86 -> 11.96 (10), 9.43 -> 5.48, 4.71 -> 2.24, 2.36 -> 0.62; the finest level and the
    residual get 0. MIT's script doubles each bound."""
    from merkit.preprocess.magnify import level_gains, pyramid_height

    step = next(s for s in create_method("mer_rcnn").representation().steps if s.name == "magnify")
    bound = {k: v for k, v in step.params.items() if k in ("alpha", "lambda_c", "exaggeration")}
    gains = level_gains((160, 160), pyramid_height((160, 160)), **bound)
    np.testing.assert_allclose(gains, [0, 0.6205, 2.2410, 5.4820, 10, 10, 0], atol=1e-3)
    mit = level_gains((160, 160), pyramid_height((160, 160)), **{**bound, "exaggeration": 2})
    np.testing.assert_allclose(mit, [0, 1.2410, 4.4820, 10, 10, 10, 0], atol=1e-3)


def test_the_gain_is_one_over_the_training_parts_rms(small_casme2, monkeypatch):
    """Hand-worked: two clips whose frames alternate +-1 and +-3 around their own means centre to
    values of magnitude 1 and 3; the mean square over both is (1 + 9) / 2 = 5, the gain 1/sqrt(5)."""
    data = load("casme2", root=small_casme2.root).subset([0, 1])
    method = create_method("mer_rcnn", **{**TINY, "max_epochs": 1, "jitter": False})
    signs = np.where(np.arange(30) % 2 == 0, 1.0, -1.0).astype(np.float32)[:, None, None, None]
    clips = {
        data[0].key: 0.5 + signs * np.ones((30, 26, 26, 3), np.float32),
        data[1].key: 0.2 + 3 * signs * np.ones((30, 26, 26, 3), np.float32),
    }
    monkeypatch.setattr(type(method), "clip_frames", lambda self, clip, cache: clips[clip.key].copy())
    method.fit(data, seed=0, cache=None)
    assert float(method.gain_) == pytest.approx(1 / np.sqrt(5), rel=1e-6)
