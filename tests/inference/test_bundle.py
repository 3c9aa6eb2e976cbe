import json
import pickle

import numpy as np
import pytest
from typer.testing import CliRunner

import merkit
from merkit.cli import app
from merkit.datasets import load
from merkit.errors import MerkitError
from merkit.inference import BundleError, load_model, train
from merkit.methods import list_methods
from merkit.preprocess.apex import fill_apex
from merkit.preprocess.cache import Cache

runner = CliRunner()
MERKIT_METHODS = [
    m.name for m in list_methods() if m.__module__.startswith("merkit.") and m.single_label
]  # bundles are single-label


@pytest.fixture(scope="module")
def small(small_casme2):
    return fill_apex(load("casme2", root=small_casme2.root, labels="seed4"), "motion")


@pytest.fixture(scope="module")
def svm_bundle(small, cache_dir, tmp_path_factory):
    return train(small, "apex_flow_svm", out=tmp_path_factory.mktemp("svm") / "model", cache=cache_dir)


@pytest.mark.parametrize("name", MERKIT_METHODS)
def test_a_bundle_predicts_exactly_as_the_fitted_method(name, quick, small, cache_dir, tmp_path):
    path = train(small, name, out=tmp_path / "model", params=quick[name], seed=3, cache=cache_dir)
    model = load_model(path)
    fitted = model.method.__class__(**model.method.params()).fit(small, seed=3, cache=Cache(cache_dir))
    test = small.subset([0, 5, 9])
    expected = fitted.predict_proba(test, cache=Cache(cache_dir))
    assert np.array_equal(model.method.predict_proba(test, cache=Cache(cache_dir)), expected)
    one_by_one = np.concatenate([fitted.predict_proba(test.subset([i]), cache=Cache(cache_dir)) for i in range(3)])
    assert np.array_equal(model.predict_proba([test[0], test[1], test[2]], cache=cache_dir), one_by_one)
    assert np.allclose(one_by_one, expected, rtol=0, atol=1e-6), "batches round differently, by float32 ulps"
    assert np.allclose(expected.sum(axis=1), 1.0) and expected.shape == (3, len(small.classes))
    assert model.classes == small.classes
    again = load_model(model.save(tmp_path / "copy"))
    assert np.array_equal(again.method.predict_proba(test, cache=Cache(cache_dir)), expected)


def test_the_bundle_records_what_it_needs(svm_bundle, small):
    description = json.loads((svm_bundle / "bundle.json").read_text())
    assert description["merkit"] == merkit.__version__ and description["task"] == "classification"
    assert description["method"] == {
        "name": "apex_flow_svm",
        "params": {"flow": "tvl1", "size": [28, 28], "C": 1.0, "kernel": "linear"},
    }
    assert description["classes"] == list(small.classes) and description["labels"] == "seed4"
    assert description["preprocessing"]["representation"][0]["step"] == "apex_flow"
    training = description["training"]
    assert training["n_clips"] == len(small) and training["clips"] == small.digest()
    assert sum(training["per_class"].values()) == len(small) and len(training["per_subject"]) == 5
    assert set(description["files"]) == {"classifier.skops"}
    card = (svm_bundle / "README.md").read_text()
    assert "## Intended use" in card and "## Limits" in card and f"{len(small)} clips" in card


def test_svm_decides_as_the_plain_svm_and_calibrates_its_probabilities(small, cache_dir):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from merkit.methods import create_method

    method = create_method("apex_flow_svm").fit(small, seed=0, cache=Cache(cache_dir))
    x = np.stack([method.features(clip, Cache(cache_dir)) for clip in small])
    plain = make_pipeline(StandardScaler(), SVC(kernel="linear", random_state=0)).fit(x, small.metadata["label"])
    assert list(method.predict(small, cache=Cache(cache_dir))) == list(plain.predict(x)), "the decision is the SVM's"
    proba = method.predict_proba(small, cache=Cache(cache_dir))
    assert np.allclose(proba.sum(axis=1), 1) and (proba > 0).all()
    assert np.mean(proba.argmax(axis=1) == small.y) > np.mean(small.y == np.bincount(small.y).argmax()), (
        "calibrated probabilities rank the training clips' classes better than the class prior"
    )


class Payload:
    """Loading this runs code: unpickling calls ``open`` (``__reduce__``); skops rebuilding it
    calls ``__setstate__``. Either writes the marker file: if it appears, loading ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))

    def __setstate__(self, state):
        open(state["marker"], "w").close()


def _reseal(bundle, name):
    description = json.loads((bundle / "bundle.json").read_text())
    import hashlib

    description["files"] = {name: hashlib.sha256((bundle / name).read_bytes()).hexdigest()}
    (bundle / "bundle.json").write_text(json.dumps(description))


def test_loading_never_runs_code_from_the_files(small, cache_dir, tmp_path):
    import skops.io as sio
    import torch

    marker = tmp_path / "ran"
    crafted = sio.dumps({"classes": ["a"], "classifier": Payload(marker)})
    sio.loads(crafted, trusted=sio.get_untrusted_types(data=crafted))  # a loader that trusts the file runs its code:
    assert marker.exists()
    marker.unlink()  # ... so the marker below can fire
    network = train(small, "ststnet", out=tmp_path / "net", params={"epochs": 1}, cache=cache_dir)
    torch.save(
        {"classes": ["a"], "state": Payload(marker)}, network / "network.safetensors"
    )  # a pickle, under the safe name
    _reseal(network, "network.safetensors")
    with pytest.raises(MerkitError, match="not a readable safetensors file"):
        load_model(network)
    svm = train(small, "apex_flow_svm", out=tmp_path / "svm", cache=cache_dir)
    (svm / "classifier.skops").write_bytes(crafted)
    _reseal(svm, "classifier.skops")
    with pytest.raises(MerkitError, match="names types merkit does not load: .*test_bundle.Payload"):
        load_model(svm)
    (svm / "classifier.skops").write_bytes(pickle.dumps(Payload(marker)))
    _reseal(svm, "classifier.skops")
    with pytest.raises(MerkitError, match="skops file"):
        load_model(svm)
    assert not marker.exists()


def test_a_bundle_trained_on_a_gpu_runs_on_this_cpu(small, cache_dir, tmp_path):
    from merkit.errors import ConfigError

    path = train(small, "ststnet", out=tmp_path / "net", params={"epochs": 1}, seed=2, cache=cache_dir)
    expected = load_model(path, device="cpu").predict_proba(small[0], cache=cache_dir)
    description = json.loads((path / "bundle.json").read_text())
    description["method"]["params"]["device"] = "cuda"  # as merkit train --set device=cuda writes it
    (path / "bundle.json").write_text(json.dumps(description))
    model = load_model(path)  # the best this machine has
    import torch

    assert model.method.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert np.allclose(model.predict_proba(small[0], cache=cache_dir), expected, atol=1e-5)
    on_cpu = load_model(path, device="cpu")
    assert on_cpu.method.device == "cpu" and np.array_equal(on_cpu.predict_proba(small[0], cache=cache_dir), expected)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device=cuda asks for a GPU"):
            load_model(path, device="cuda")
        folder = str(small[0].frame_paths[0].parent)
        result = runner.invoke(app, ["predict", "--model", str(path), folder, "--device", "cuda"])
        assert result.exit_code == 2 and "asks for a GPU" in result.output
    result = runner.invoke(
        app, ["predict", "--model", str(path), str(small[0].frame_paths[0].parent), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output


def _damaged(bundle, tmp_path, how):
    import shutil

    copy = shutil.copytree(bundle, tmp_path / how)
    description = json.loads((copy / "bundle.json").read_text())
    if how == "newer":
        description["merkit"] = "99.0.0"
    elif how == "task":
        description["task"] = "spotting"
    elif how == "missing":
        (copy / "classifier.skops").unlink()
    elif how == "altered":
        data = bytearray((copy / "classifier.skops").read_bytes())
        data[len(data) // 2] ^= 1
        (copy / "classifier.skops").write_bytes(bytes(data))
    elif how == "garbled":
        (copy / "bundle.json").write_text("{not json")
        return copy
    (copy / "bundle.json").write_text(json.dumps(description))
    return copy


@pytest.mark.parametrize(
    "how,message",
    [
        ("newer", "newer than this merkit"),
        ("task", "spotting model, not a classification model"),
        ("missing", "classifier.skops is missing"),
        ("altered", "was altered"),
        ("garbled", "bundle.json is damaged"),
    ],
)
def test_a_bad_bundle_gets_one_message_and_exit_2(svm_bundle, small, tmp_path, how, message):
    bundle = _damaged(svm_bundle, tmp_path, how)
    with pytest.raises(BundleError, match=message):
        load_model(bundle, task="classification")
    folder = str(small[0].frame_paths[0].parent)
    result = runner.invoke(app, ["predict", "--model", str(bundle), folder])
    assert result.exit_code == 2 and message in result.output.replace("\n", "") and "Traceback" not in result.output


def test_a_bundle_with_other_classes_is_refused(svm_bundle):
    with pytest.raises(BundleError, match="not the classes asked for"):
        load_model(svm_bundle, classes=["happiness", "disgust"])
    assert load_model(svm_bundle, classes=load_model(svm_bundle).classes).classes


def test_train_refuses_to_replace_a_bundle_or_other_files(svm_bundle, small, tmp_path, cache_dir):
    with pytest.raises(BundleError, match="--overwrite"):
        train(small, "apex_flow_svm", out=svm_bundle, cache=cache_dir)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep")
    with pytest.raises(BundleError, match="not a model bundle"):
        train(small, "apex_flow_svm", out=tmp_path / "notes", cache=cache_dir, overwrite=True)
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep"
