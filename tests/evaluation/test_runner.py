import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from merkit.datasets import load
from merkit.errors import MerkitError
from merkit.evaluation import evaluate, runner
from merkit.methods import FeatureMethod, register_method
from merkit.preprocess.pipeline import Representation, Step, register_step

register_step("spy_lengths")(lambda data, clip: np.array([clip.n_frames, clip.offset - clip.onset], dtype=float))


@register_method
@dataclasses.dataclass
class SpyMethod(FeatureMethod):
    """Records which clips its augmentation saw in each fold; classifies by clip length."""

    name = "spy_for_tests"
    summary = "test double"
    log = []  # (augmented clip keys, test clip keys) per fold

    def representation(self):
        return Representation(Step("spy_lengths"))

    def augment(self, features, clip, rng):
        self.augmented_.append(clip.key)
        yield features
        yield features + rng.normal(0, 0.1, features.shape)

    def fit(self, train, *, seed, cache):
        self.augmented_ = []
        return super().fit(train, seed=seed, cache=cache)

    def predict(self, test, *, cache):
        SpyMethod.log.append((list(self.augmented_), [c.key for c in test]))
        return super().predict(test, cache=cache)

    def make_classifier(self, seed):
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(1)


@pytest.fixture
def dataset(small_casme2):
    return load("casme2", root=small_casme2.root, labels="seed4")


def test_augmentation_sees_each_training_clip_and_no_test_clip(dataset, cache_dir, tmp_path):
    SpyMethod.log.clear()
    evaluate(dataset, "spy_for_tests", out=tmp_path / "run", cache=cache_dir)
    assert len(SpyMethod.log) == len(set(dataset.groups))
    for augmented, tested in SpyMethod.log:
        subject = tested[0].rsplit("/", 1)[0]
        assert sorted(augmented) == sorted(k for k in dataset.keys if not k.startswith(subject + "/"))
        assert not set(augmented) & set(tested)


def test_an_interrupted_run_resumes_to_the_same_figures(dataset, cache_dir, tmp_path, monkeypatch):
    clean = evaluate(dataset, "lbptop_svm", out=tmp_path / "clean", cache=cache_dir)

    real_run_folds, calls = runner.run_folds, []

    def interrupted(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.extend(fold.name for fold in args[3])
        return real_run_folds(*args, **kwargs)

    monkeypatch.setattr(runner, "run_folds", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluate(dataset, "lbptop_svm", out=tmp_path / "resumed", cache=cache_dir)
    assert len(list((tmp_path / "resumed" / "folds").glob("*.csv"))) == 2
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    monkeypatch.setattr(runner, "run_folds", real_run_folds)

    resumed = evaluate(dataset, "lbptop_svm", out=tmp_path / "resumed", cache=cache_dir)
    n_folds = len(set(dataset.groups))
    assert set(resumed.computed_folds).isdisjoint(calls) and len(resumed.computed_folds) == n_folds - 2
    assert json.loads((tmp_path / "resumed" / "metrics.json").read_text()) == json.loads(
        (tmp_path / "clean" / "metrics.json").read_text()
    )
    pd.testing.assert_frame_equal(resumed.predictions, clean.predictions)


def test_a_run_directory_holds_every_output(dataset, cache_dir, tmp_path):
    result = evaluate(
        dataset, "lbptop_svm", out=tmp_path / "run", cache=cache_dir, protocol="kfold", protocol_params={"n_splits": 3}
    )
    for name in ("config.json", "metrics.json", "predictions.csv", "report.md", "confusion.png"):
        assert (tmp_path / "run" / name).is_file()
    assert len(result.predictions) == len(dataset)
    assert sorted(result.predictions["clip"]) == sorted(dataset.metadata["clip"])
    report = (tmp_path / "run" / "report.md").read_text()
    assert result.metrics["leakage"] and "Identity leakage" in report  # random k-fold shares subjects
    assert (tmp_path / "run" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_another_configuration_in_the_same_directory_is_refused(dataset, cache_dir, tmp_path):
    evaluate(dataset, "spy_for_tests", out=tmp_path / "run", cache=cache_dir, seed=0)
    with pytest.raises(MerkitError, match="another configuration.*seed"):
        evaluate(dataset, "spy_for_tests", out=tmp_path / "run", cache=cache_dir, seed=1)


@pytest.mark.slow
def test_parallel_folds_give_the_same_predictions(dataset, cache_dir, tmp_path):
    one = evaluate(dataset, "lbptop_svm", out=tmp_path / "one", cache=cache_dir, jobs=1)
    two = evaluate(dataset, "lbptop_svm", out=tmp_path / "two", cache=cache_dir, jobs=2)
    pd.testing.assert_frame_equal(one.predictions, two.predictions)


def test_overwrite_replaces_a_run_of_another_configuration(dataset, cache_dir, tmp_path):
    evaluate(dataset, "spy_for_tests", out=tmp_path / "run", cache=cache_dir, seed=0)
    result = evaluate(dataset, "spy_for_tests", out=tmp_path / "run", cache=cache_dir, seed=1, overwrite=True)
    assert len(result.computed_folds) == len(set(dataset.groups))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["seed"] == 1


def test_the_report_says_where_apexes_came_from(dataset, cache_dir, tmp_path):
    from merkit.preprocess.apex import fill_apex

    filled = fill_apex(dataset, "middle")
    evaluate(filled, "spy_for_tests", out=tmp_path / "run", cache=cache_dir)
    n_missing = int(dataset.metadata["apex"].isna().sum())
    report = (tmp_path / "run" / "report.md").read_text()
    assert (
        f"{len(dataset) - n_missing} clips annotated" in report and f"{n_missing} clips estimated by middle" in report
    )


def test_each_clip_gets_the_probabilities_its_fold_model_gives(tmp_path, cache_dir):
    """``p_<class>`` in the fold files and predictions.csv are the fold's fitted model's own
    ``predict_proba`` (what its bundle would give), one column per class, rows summing to 1."""
    from merkit.evaluation.protocols import make_protocol
    from merkit.methods import create_method
    from merkit.preprocess.cache import Cache
    from merkit.synthetic.flow_images import FlowSetConfig, write_flow_manifest

    config = FlowSetConfig(datasets={"casme2": (3, {"negative": 5, "positive": 4, "surprise": 4})}, seed=4)
    data = load("manifest", root=write_flow_manifest(tmp_path / "flows", config))
    result = evaluate(data, "apex_flow_svm", out=tmp_path / "run", cache=cache_dir, seed=7)
    columns = ["p_negative", "p_positive", "p_surprise"]
    written = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert list(written.columns[-3:]) == columns
    np.testing.assert_allclose(written[columns].sum(axis=1), 1.0)
    fold = make_protocol("loso").folds(data)[1]
    expected = (
        create_method("apex_flow_svm")
        .fit(data.subset(fold.train), seed=runner.fold_seed(7, 1), cache=Cache(cache_dir))
        .predict_proba(data.subset(fold.test), cache=Cache(cache_dir))
    )
    in_fold = pd.read_csv(runner._fold_file(tmp_path / "run", fold))
    np.testing.assert_allclose(in_fold[columns].to_numpy(), expected, rtol=0, atol=1e-12)
    in_run = result.predictions.loc[result.predictions["fold"] == fold.name, columns].astype(float).to_numpy()
    np.testing.assert_array_equal(in_run, in_fold[columns].to_numpy())  # floats written so that they read back exactly
