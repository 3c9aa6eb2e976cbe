import numpy as np
import pytest

from merkit.datasets import load
from merkit.errors import ConfigError
from merkit.evaluation import evaluate
from merkit.evaluation.compare import ensemble_run, read_run
from merkit.evaluation.protocols import make_protocol
from merkit.methods import create_method
from merkit.methods.ensemble import bag_seed
from merkit.preprocess.cache import Cache
from merkit.synthetic.flow_images import FlowSetConfig, write_flow_manifest

SMALL = FlowSetConfig(
    datasets={"casme2": (4, {"negative": 8, "positive": 6, "surprise": 6})}, amplitude=(0.6, 1.0), seed=5
)
QUICK_SSSNET = "sssnet.epochs=15"


@pytest.fixture(scope="module")
def flow_set(tmp_path_factory):
    return load("manifest", root=write_flow_manifest(tmp_path_factory.mktemp("flows"), SMALL))


def test_the_ensemble_is_the_weighted_mean_of_its_members_fitted_on_the_same_fold(flow_set, cache_dir):
    cache = Cache(cache_dir)
    fold = make_protocol("loso").folds(flow_set)[0]
    train, test = flow_set.subset(fold.train), flow_set.subset(fold.test)
    ensemble = create_method(
        "ensemble", members="apex_flow_svm,sssnet", weights="1,3", bag=2, member_settings=QUICK_SSSNET
    )
    ensemble.fit(train, seed=11, cache=cache)
    svm, net = (
        [
            create_method(name, **settings)
            .fit(train, seed=bag_seed(11, k), cache=cache)
            .predict_proba(test, cache=cache)
            for k in range(2)
        ]
        for name, settings in (("apex_flow_svm", {}), ("sssnet", {"epochs": 15}))
    )
    expected = 0.25 * (svm[0] + svm[1]) / 2 + 0.75 * (net[0] + net[1]) / 2
    np.testing.assert_allclose(ensemble.predict_proba(test, cache=cache), expected, rtol=0, atol=1e-12)
    assert not np.allclose(net[0], net[1]), "the bag's seeds differ"
    assert list(ensemble.predict(test, cache=cache)) == list(
        np.asarray(flow_set.classes, dtype=object)[expected.argmax(axis=1)]
    )


def test_an_ensemble_run_is_the_average_of_its_members_runs(flow_set, cache_dir, tmp_path):
    """The first fit of each member gets the fold's seed: the ensemble's run gives the very
    probabilities ``merkit compare --ensemble`` computes from the members' runs."""
    together = evaluate(
        flow_set,
        "ensemble",
        params={"member_settings": QUICK_SSSNET},
        out=tmp_path / "ensemble",
        cache=cache_dir,
        seed=3,
    )
    for name, params in (("apex_flow_svm", {}), ("sssnet", {"epochs": 15})):
        evaluate(flow_set, name, params=params, out=tmp_path / name, cache=cache_dir, seed=3)
    averaged = ensemble_run([read_run(tmp_path / "apex_flow_svm"), read_run(tmp_path / "sssnet")])
    ran = read_run(together.out)
    by_clip = [run.probabilities()[np.argsort(run.keys().to_numpy())] for run in (ran, averaged)]
    np.testing.assert_allclose(by_clip[0], by_clip[1], rtol=0, atol=1e-12)
    assert (tmp_path / "ensemble" / "models").is_dir()  # a member is a network: each fold's state is kept


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"members": "apex_flow_svm,nonet"}, "Unknown method 'nonet'"),
        ({"members": "au_prevalence"}, "cannot be a member"),
        ({"weights": "1,2,3"}, "give 2 non-negative numbers"),
        ({"weights": "one,two"}, "give 2 numbers separated by commas"),
        ({"bag": 0}, "bag=0"),
        ({"member_settings": "ststnet.epochs=3"}, "for a member of apex_flow_svm,sssnet"),
    ],
)
def test_bad_settings_are_refused_with_the_fix(settings, message):
    with pytest.raises(ConfigError, match=message):
        create_method("ensemble", **settings)
