"""Executors on a real Ray cluster: a head and a second worker node, both on loopback
(the ``cluster`` fixture of tests/conftest.py, started once for this module and stopped at its end)."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.datasets import load
from merkit.evaluation import evaluate
from merkit.evaluation.runner import evaluate_seeds
from merkit.methods import FeatureMethod, register_method
from merkit.preprocess.pipeline import Representation, Step, register_step

pytest.importorskip("ray")
register_step("clip_shape_for_tests")(
    lambda data, clip: np.array([clip.n_frames, clip.offset - clip.onset, clip.onset], float)
)


@register_method
@dataclasses.dataclass
class DieOnce(FeatureMethod):
    """Nearest neighbour on clip lengths; the first fit that finds no ``marker`` file kills its own
    process (as a worker killed by the system would die), after creating the marker."""

    name = "die_once_for_tests"
    summary = "test double"
    marker: str = ""

    def representation(self):
        return Representation(Step("clip_shape_for_tests"))

    def fit(self, train, *, seed, cache):
        if self.marker and not Path(self.marker).exists():
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(train, seed=seed, cache=cache)

    def make_classifier(self, seed):
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(1)


@pytest.fixture(scope="module")
def data(small_casme2):
    return load("casme2", root=small_casme2.root, labels="seed4")


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["fold", "subject", "clip"]).reset_index(drop=True)


def test_a_loso_on_ray_equals_the_same_loso_in_one_process(cluster, data, small_casme2, cache_dir, tmp_path):
    import ray

    args = [
        "evaluate",
        "--dataset",
        "casme2",
        "--root",
        str(small_casme2.root),
        "--labels",
        "seed4",
        "--method",
        "lbptop_svm",
        "--cache",
        str(cache_dir),
    ]
    on_ray = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "ray"), "--executor", "ray", "--address", cluster])
    assert on_ray.exit_code == 0, on_ray.output
    assert len({n["NodeID"] for n in ray.nodes() if n["Alive"]}) == 2, "two nodes joined the cluster"
    local = evaluate(data, "lbptop_svm", out=tmp_path / "local", jobs=1, cache=cache_dir)
    pd.testing.assert_frame_equal(
        _sorted(pd.read_csv(tmp_path / "ray" / "predictions.csv", dtype=str)), _sorted(local.predictions)
    )


def test_a_worker_killed_mid_fold_is_retried_and_the_figures_are_the_same(cluster, data, cache_dir, tmp_path):
    from merkit.executors import RayExecutor

    marker = tmp_path / "died"
    killed = evaluate(
        data,
        "die_once_for_tests",
        params={"marker": str(marker)},
        out=tmp_path / "killed",
        cache=cache_dir,
        executor=RayExecutor(cluster),
    )
    assert marker.is_file(), "a worker process did die"
    alone = evaluate(data, "die_once_for_tests", out=tmp_path / "alone", cache=cache_dir, jobs=1)
    pd.testing.assert_frame_equal(_sorted(killed.predictions), _sorted(alone.predictions))
    assert killed.metrics["overall"] == alone.metrics["overall"]


def test_a_run_started_here_is_finished_on_ray(cluster, data, cache_dir, tmp_path):
    from merkit.executors import RayExecutor

    first = evaluate(data, "lbptop_svm", out=tmp_path / "run", cache=cache_dir, jobs=1)
    folds = sorted((tmp_path / "run" / "folds").glob("*.csv"))
    for stale in folds[1::2]:  # as if the local run had been stopped half way
        stale.unlink()
    finished = evaluate(data, "lbptop_svm", out=tmp_path / "run", cache=cache_dir, executor=RayExecutor(cluster))
    assert sorted(finished.computed_folds) == sorted(
        first.predictions.loc[
            first.predictions["fold"].isin([p.stem.split("_", 1)[1].replace("__", "/") for p in folds[1::2]]), "fold"
        ].unique()
    )
    assert finished.metrics["overall"] == first.metrics["overall"]


def test_seeds_give_mean_and_std_and_each_seed_equals_its_run_alone(cluster, data, cache_dir, tmp_path):
    from merkit.executors import RayExecutor
    from merkit.preprocess.apex import fill_apex

    params, data = {"epochs": 3}, fill_apex(data, "middle")
    runs = evaluate_seeds(
        data,
        "ststnet",
        seeds=[0, 1, 2],
        out=tmp_path / "sweep",
        params=params,
        cache=cache_dir,
        executor=RayExecutor(cluster),
        protocol="subject_kfold",
        protocol_params={"n_splits": 2},
    )
    alone = evaluate(
        data,
        "ststnet",
        params=params,
        seed=1,
        out=tmp_path / "alone",
        cache=cache_dir,
        jobs=1,
        protocol="subject_kfold",
        protocol_params={"n_splits": 2},
    )
    pd.testing.assert_frame_equal(_sorted(runs[1].predictions), _sorted(alone.predictions))
    summary = (tmp_path / "sweep" / "summary.md").read_text()
    uf1 = [r.metrics["overall"]["uf1"] for r in runs]
    assert f"{np.mean(uf1):.3f} ± {np.std(uf1, ddof=1):.3f}" in summary and "| overall |" in summary
    assert all((tmp_path / "sweep" / f"seed{k}" / "report.md").is_file() for k in range(3))


def test_without_ray_the_executor_says_how_to_install_it(monkeypatch):
    from merkit.errors import ConfigError
    from merkit.executors import RayExecutor

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'merkit\[ray\]'"):
        RayExecutor("auto")


def test_representations_can_travel_through_the_object_store(cluster, data, cache_dir, tmp_path):
    """--ray-storage driver: the driver prepares every clip and ships the arrays; a task that
    found a representation missing would fail (ShippedCache), so the workers read no frame."""
    from merkit.errors import MerkitError
    from merkit.executors import RayExecutor
    from merkit.preprocess.cache import ShippedCache

    shipped = evaluate(
        data, "lbptop_svm", out=tmp_path / "shipped", cache=cache_dir, executor=RayExecutor(cluster, storage="driver")
    )
    local = evaluate(data, "lbptop_svm", out=tmp_path / "local", cache=cache_dir, jobs=1)
    pd.testing.assert_frame_equal(_sorted(shipped.predictions), _sorted(local.predictions))
    with pytest.raises(MerkitError, match="was shipped"):
        ShippedCache().load("representations", data[0], {})


def test_train_fits_on_the_cluster_and_the_bundle_predicts_as_one_fitted_here(
    cluster, data, small_casme2, cache_dir, tmp_path
):
    from merkit.inference import load_model, train

    result = CliRunner().invoke(
        app,
        [
            "train",
            "--dataset",
            "casme2",
            "--root",
            str(small_casme2.root),
            "--labels",
            "seed4",
            "--method",
            "lbptop_svm",
            "--out",
            str(tmp_path / "ray"),
            "--cache",
            str(cache_dir),
            "--executor",
            "ray",
            "--address",
            cluster,
        ],
    )
    assert result.exit_code == 0, result.output
    here = train(data, "lbptop_svm", out=tmp_path / "here", cache=cache_dir)
    clips = [data[i] for i in range(4)]
    np.testing.assert_array_equal(
        load_model(tmp_path / "ray").predict_proba(clips, cache=cache_dir),
        load_model(here).predict_proba(clips, cache=cache_dir),
    )


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _running(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_run_takes_its_workers_down_and_keeps_its_folds(small_casme2, cache_dir, tmp_path):
    """SIGTERM to ``merkit evaluate --jobs 2`` (a scheduler cancelling it): exit 130 at once, no
    worker left training, and the folds written before stay for a resume."""
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-c",
        "from merkit.cli import app; app()",
        "evaluate",
        "--dataset",
        "casme2",
        "--root",
        str(small_casme2.root),
        "--labels",
        "seed4",
        "--apex",
        "middle",
        "--method",
        "ststnet",
        "--set",
        "epochs=6000",
        "--jobs",
        "2",
        "--out",
        str(out),
        "--cache",
        str(cache_dir),
    ]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 400
        while not list((out / "folds").glob("*.csv")) and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.5)
        written = sorted((out / "folds").glob("*.csv"))
        workers = _children(run.pid)
        assert run.poll() is None, f"the run ended early ({run.returncode}): {run.stdout.read()[-2000:]}"
        assert written and len(workers) >= 2, "a fold is written and the others are training"
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=20) == 130, "it stops at once, not after the folds in progress"
        deadline = time.monotonic() + 10
        while any(map(_running, workers)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [w for w in workers if _running(w)], "no worker outlives the run"
    finally:
        if run.poll() is None:
            run.kill()
    assert "Interrupted" in run.stdout.read()
    kept = sorted((out / "folds").glob("*.csv"))
    assert set(written) <= set(kept) and len(kept) < 5, "what was written stays; the rest is left to a resume"


def test_softnet_folds_on_ray_equal_the_same_folds_in_one_process(cluster, tmp_path):
    """spot-evaluate --spotter softnet: each fold fitted and spotted on a Ray worker gives the intervals and
    scores of the same fold run here (seeded training, one thread)."""
    import json

    from merkit.datasets.long_videos import load_long_videos
    from merkit.evaluation.spot_evaluate import evaluate_spotting
    from merkit.executors import LocalExecutor, RayExecutor
    from merkit.spotting import create_spotter
    from merkit.synthetic.long_videos import write_long_dataset

    written = write_long_dataset(
        "casme2_long",
        tmp_path / "c2",
        subjects=2,
        videos=1,
        seconds=5,
        size=(120, 160),
        micro=1,
        macro=0,
        distractors={},
        seed=8,
    )
    videos, spotter = load_long_videos("casme2_long", written.root), create_spotter("softnet", epochs=2, lr=0.02)
    here = evaluate_spotting(videos, spotter, tmp_path / "out", executor=LocalExecutor(1))
    folds = {p.name: json.loads(p.read_text()) for p in (tmp_path / "out" / "folds").glob("*.json")}
    for p in (tmp_path / "out" / "folds").glob("*.json"):
        p.unlink()  # the tracking and flow images stay cached: the workers train and spot
    on_ray = evaluate_spotting(videos, spotter, tmp_path / "out", executor=RayExecutor(cluster))
    assert (
        len(folds) == 2
        and {p.name: json.loads(p.read_text()) for p in (tmp_path / "out" / "folds").glob("*.json")} == folds
    )
    assert on_ray == here and here["overall"]["overall"]["annotated"] == 2
