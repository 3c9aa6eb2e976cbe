"""Same figures everywhere: every registered method gives identical predictions, and identical
fold networks, with ``--jobs 1``, with ``--jobs 2``, after a resume and on Ray."""

import shutil

import numpy as np
import pytest

from merkit.datasets import load
from merkit.evaluation import evaluate
from merkit.methods import create_method, list_methods, method_class
from merkit.preprocess.apex import fill_apex

METHODS = [m.name for m in list_methods() if m.__module__.startswith("merkit.")]


def test_every_registered_method_has_quick_settings(quick):
    assert sorted(quick) == sorted(METHODS), "add the new method to QUICK in tests/conftest.py"


def _outputs(run):
    """What a run wrote that must not depend on how it ran: predictions, fold files, fold networks."""
    paths = [
        run / "predictions.csv",
        *sorted((run / "folds").iterdir()),
        *sorted((run / "models").rglob("*.safetensors")),
    ]
    return {str(p.relative_to(run)): p.read_bytes() for p in paths}


def _three_subjects(name, small_casme2):
    labels = "seed4" if method_class(name).single_label else "aus"
    data = fill_apex(load("casme2", root=small_casme2.root, labels=labels), "middle")
    return data.subset(np.flatnonzero(np.isin(data.groups, np.unique(data.groups)[:3])))


@pytest.mark.slow  # about 15 s a method, most of it starting the --jobs 2 processes
@pytest.mark.parametrize("name", METHODS)
def test_jobs_and_a_resume_give_identical_predictions_and_networks(name, quick, small_casme2, cache_dir, tmp_path):
    data = _three_subjects(name, small_casme2)
    settings = dict(params=quick[name], protocol="loso", seed=7, cache=cache_dir)
    one = _outputs(evaluate(data, name, out=tmp_path / "one", jobs=1, **settings).out)
    two = _outputs(evaluate(data, name, out=tmp_path / "two", jobs=2, **settings).out)
    resumed = shutil.copytree(tmp_path / "one", tmp_path / "resumed")
    for fold in sorted((resumed / "folds").iterdir())[1:]:  # as if stopped after the first fold
        fold.unlink()
        shutil.rmtree(resumed / "models" / fold.stem, ignore_errors=True)
    (resumed / "predictions.csv").unlink()
    result = evaluate(data, name, out=resumed, jobs=1, **settings)
    assert len(result.computed_folds) == 2
    assert len([k for k in one if k.startswith("folds/")]) == 3
    assert create_method(name, **quick[name]).keep_fold_models == any(k.startswith("models/") for k in one)
    assert two == one, "--jobs 2 differs from --jobs 1"
    assert _outputs(resumed) == one, "the resumed run differs from the uninterrupted one"


@pytest.mark.parametrize("name", METHODS)  # all ten in 114 s, cluster included, on 2 busy cores (load 5-7)
def test_ray_with_driver_storage_gives_identical_predictions_and_networks(
    name, cluster, quick, small_casme2, cache_dir, tmp_path
):
    """``--executor ray --address HOST:PORT --ray-storage driver``: the folds run on the cluster's
    workers, which return the fold networks to the driver; it writes them in its own --out."""
    from merkit.cli.common import executor_for

    data = _three_subjects(name, small_casme2)
    settings = {"params": quick[name], "protocol": "loso", "seed": 7, "cache": cache_dir}
    on_ray = executor_for("ray", 1, cluster, quick[name], "driver")  # what those options build
    assert on_ray.name == "ray" and on_ray.ships_representations
    one = _outputs(evaluate(data, name, out=tmp_path / "one", jobs=1, **settings).out)
    result = evaluate(data, name, out=tmp_path / "ray", executor=on_ray, **settings)
    assert result.out == tmp_path / "ray" and len(result.computed_folds) == 3
    ray = _outputs(result.out)
    folds = {k.split("/")[1].removesuffix(".csv") for k in ray if k.startswith("folds/")}
    networks = {
        k.split("/")[1] for k in ray if k.startswith("models/")
    }  # models/<fold>/..., read from the driver's --out
    keeps = create_method(name, **quick[name]).keep_fold_models  # a property for the ensemble
    assert networks == (folds if keeps else set()), "each fold's network is written in the driver's --out"
    assert ray == one, "Ray (--ray-storage driver) differs from --jobs 1"
