import json

import numpy as np
import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.datasets import load
from merkit.evaluation import evaluate
from merkit.synthetic.flow_images import FlowSetConfig, write_flow_manifest

SMALL = FlowSetConfig(
    datasets={
        "smic": (3, {"negative": 8, "positive": 6, "surprise": 6}),
        "casme2": (3, {"negative": 8, "positive": 6, "surprise": 6}),
    },
    amplitude=(0.6, 1.0),
    seed=3,
)


@pytest.fixture(scope="module")
def flow_set(tmp_path_factory):
    return load("manifest", root=write_flow_manifest(tmp_path_factory.mktemp("flows"), SMALL))


@pytest.mark.slow
def test_folds_are_identical_whatever_the_number_of_jobs(flow_set, cache_dir, tmp_path):
    runs = [
        evaluate(flow_set, "ststnet", params={"epochs": 15}, out=tmp_path / f"jobs{jobs}", jobs=jobs, cache=cache_dir)
        for jobs in (1, 2)
    ]
    assert len(runs[0].predictions) == len(flow_set) == 40
    assert runs[0].predictions.equals(runs[1].predictions)


def test_folds_in_lockstep_are_the_folds_one_at_a_time(flow_set, cache_dir, tmp_path, monkeypatch):
    """The GPU's way (several folds as one batched model), run here on the CPU: the same per-fold
    networks and predictions as the CPU's way, up to float rounding; the run lands as any other."""
    from merkit.evaluation.runner import saved_model
    from merkit.io.state import read_arrays
    from merkit.training import lockstep

    stacked, real = [], lockstep.train_lockstep
    monkeypatch.setattr(
        lockstep, "train_lockstep", lambda stack, *a, **k: stacked.append(stack.folds) or real(stack, *a, **k)
    )

    runs = {
        at_once: evaluate(
            flow_set,
            "ststnet",
            params={"epochs": 4, "batch_size": 16, "lr": 1e-3, "folds_at_once": at_once},
            out=tmp_path / f"at_once{at_once}",
            cache=cache_dir,
        )
        for at_once in (1, 4)
    }  # six LOSO folds: one at a time, then four together and the last two together
    assert stacked == [4, 2]
    columns = ["p_negative", "p_positive", "p_surprise"]
    assert runs[1].predictions.drop(columns=columns).equals(runs[4].predictions.drop(columns=columns))
    np.testing.assert_allclose(
        runs[1].predictions[columns].astype(float), runs[4].predictions[columns].astype(float), rtol=0, atol=1e-5
    )
    assert len(runs[4].computed_folds) == 6
    for fold in runs[1].predictions["fold"].unique():
        alone, together = (read_arrays(saved_model(runs[k].out, fold) / "network.safetensors")[0] for k in (1, 4))
        for key, value in alone.items():
            np.testing.assert_allclose(together[key], value, rtol=0, atol=1e-5, err_msg=f"{fold}: {key}")


def test_folds_that_do_not_fit_in_memory_are_trained_in_smaller_groups(flow_set, cache_dir, monkeypatch):
    import torch

    from merkit.methods import create_method
    from merkit.preprocess.cache import Cache
    from merkit.training import lockstep

    groups, real = [], lockstep.train_lockstep

    def small_memory(stack, *args, **kwargs):
        groups.append(stack.folds)
        if stack.folds > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(stack, *args, **kwargs)

    monkeypatch.setattr(lockstep, "train_lockstep", small_memory)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    method, cache = create_method("ststnet", epochs=2, batch_size=8), Cache(cache_dir)
    trains = [flow_set.subset(np.arange(start, start + 12)) for start in range(0, 25, 6)]
    fitted = method.fit_folds(trains, seeds=list(range(5)), cache=cache)
    assert groups == [5, 3, 2, 2]  # then the fifth fold alone, with the fused kernel
    for train, seed, together in zip(trains, range(5), fitted):
        alone = create_method("ststnet", epochs=2, batch_size=8).fit(train, seed=seed, cache=cache)
        for key, value in alone.model_.state_dict().items():
            torch.testing.assert_close(
                together.model_.state_dict()[key], value, rtol=0, atol=1e-4
            )  # Adam magnifies rounding


@pytest.mark.slow
@pytest.mark.parametrize("method,epochs", [("ststnet", 300), ("offapexnet", 40)])
def test_networks_learn_the_synthetic_flows(flow_set, cache_dir, tmp_path, method, epochs):
    result = evaluate(
        flow_set,
        method,
        params={"epochs": epochs, "lr": 1e-3},
        out=tmp_path / method,
        protocol="subject_kfold",
        protocol_params={"n_splits": 3},
        cache=cache_dir,
    )
    print(method, result.metrics["overall"])
    assert result.metrics["overall"]["uf1"] > 0.6  # chance is about 0.33
    assert set(result.metrics["per_dataset"]) == {"smic", "casme2"}


def test_fixed_epochs_and_input_shapes(flow_set, cache_dir):
    from merkit.methods import create_method
    from merkit.preprocess.cache import Cache

    cache_dir = Cache(cache_dir)
    method = create_method("ststnet", epochs=2)
    train = flow_set.subset(np.arange(10))
    method.fit(train, seed=0, cache=cache_dir)
    assert len(method.history_) == 2, "a fixed number of epochs, no stopping rule"
    assert method.inputs(train, cache=cache_dir).shape == (10, 3, 28, 28)
    assert create_method("offapexnet").inputs(train, cache=cache_dir).shape == (10, 2, 28, 28)


@pytest.mark.slow
def test_megc2019_from_raw_clips_reports_each_dataset_and_the_time(megc, cache_dir, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "megc2019",
            "--root",
            str(megc[0]),
            "--method",
            "ststnet",
            "--apex",
            "middle",
            "--set",
            "epochs=3",
            "--out",
            str(out),
            "--cache",
            str(cache_dir),
            "--jobs",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["per_dataset"]) == {"smic_hs", "casme2", "samm"}
    report = (out / "report.md").read_text()
    assert "epochs=3" in report and "lr=5e-05" in report and "Time:" in report and "| samm |" in report


def test_sssnet_trains_its_fixed_epochs_with_sgd_and_lowers_its_loss(flow_set, cache_dir):
    from merkit.errors import ConfigError
    from merkit.methods import create_method
    from merkit.preprocess.cache import Cache

    method = create_method("sssnet", epochs=30)
    assert method.recipe().optimizer == "sgd" and (method.lr, method.momentum, method.batch_size) == (0.01, 0.9, 128)
    method.fit(flow_set, seed=0, cache=Cache(cache_dir))
    assert len(method.history_) == 30 and np.mean(method.history_[-5:]) < 0.7 * method.history_[0]
    assert method.inputs(flow_set, cache=Cache(cache_dir)).shape == (40, 3, 28, 28)
    assert method.folds_together() == 1
    with pytest.raises(ConfigError, match="one at a time"):
        create_method("sssnet", folds_at_once=4)


def test_inner_early_stopping_never_sees_a_test_fold_clip(flow_set, cache_dir, tmp_path, monkeypatch):
    """Every clip each fit receives (the inner training part, the validation part, the refit),
    recorded fold by fold: all from the fold's training part, the validation subjects apart from
    the inner training subjects, and the refit on the whole training part."""
    from merkit.evaluation.protocols import make_protocol
    from merkit.methods.apex_flow_nets import ApexFlowNetwork

    fits, real = [None], {name: getattr(ApexFlowNetwork, name) for name in ("fit", "inputs")}

    def fit(self, train, **kwargs):
        fits.append([])
        method = real["fit"](self, train, **kwargs)
        fits.append(None)  # what follows is no longer the fit
        assert 1 <= method.epochs_ <= 6 and len(method.history_) == method.epochs_
        return method

    def inputs(self, data, cache):
        if fits[-1] is not None:
            fits[-1].append(list(data.keys))
        return real["inputs"](self, data, cache)

    monkeypatch.setattr(ApexFlowNetwork, "fit", fit)
    monkeypatch.setattr(ApexFlowNetwork, "inputs", inputs)
    result = evaluate(
        flow_set, "sssnet", params={"epochs": 6, "early_stopping": "inner"}, out=tmp_path / "run", cache=cache_dir
    )
    folds = make_protocol("loso").folds(flow_set)
    received = [calls for calls in fits if calls is not None]  # prediction reads inputs too, outside any fit
    assert len(received) == len(folds) == 6
    subject = dict(zip(flow_set.keys, flow_set.groups))
    for fold, (inner, validation, refit) in zip(folds, received):
        train, test = set(flow_set.subset(fold.train).keys), set(flow_set.subset(fold.test).keys)
        assert not (set(inner) | set(validation) | set(refit)) & test
        assert set(inner) | set(validation) == train and not set(inner) & set(validation)
        assert not {subject[k] for k in inner} & {subject[k] for k in validation}, "validation holds out whole subjects"
        assert set(refit) == train
    assert len(result.predictions) == len(flow_set)
