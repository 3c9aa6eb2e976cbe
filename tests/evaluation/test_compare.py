import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.evaluation.compare import bootstrap, permutation_test, subject_confusions
from merkit.evaluation.metrics import confusion_figures, scores

CLASSES = ["a", "b", "c"]


def simulate(rng, truth=None, subjects=20, clips=10, correct=0.7):
    """Predictions of a predictor right with probability ``correct``, else one of the other two
    classes at random, on balanced classes. Its population accuracy, UAR and UF1 are all 0.7:
    per class TP = 0.7/3 and FP = FN = 0.3/3, so F1 = 1.4 / (1.4 + 0.6) = 0.7."""
    n = subjects * clips
    truth = rng.integers(3, size=n) if truth is None else truth
    wrong = (truth + rng.integers(1, 3, size=n)) % 3
    predicted = np.where(rng.random(n) < correct, truth, wrong)
    return pd.DataFrame(
        {
            "dataset": "sim",
            "subject": np.repeat([f"s{i:02d}" for i in range(subjects)], clips),
            "clip": [f"c{i}" for i in range(n)],
            "label": np.asarray(CLASSES)[truth],
            "prediction": np.asarray(CLASSES)[predicted],
        }
    ), truth


def test_vectorised_figures_equal_the_metrics_module():
    rng = np.random.default_rng(0)
    frame, _ = simulate(rng)
    subjects, matrices = subject_confusions(frame, CLASSES)
    reference = scores(frame["label"], frame["prediction"], CLASSES)
    pooled = confusion_figures(matrices.sum(0))
    assert len(subjects) == 20 and matrices.sum() == 200
    for metric in ("accuracy", "uf1", "uar"):
        assert float(pooled[metric]) == pytest.approx(reference[metric], abs=1e-12)


def test_the_bootstrap_interval_covers_the_known_value():
    rng = np.random.default_rng(1)
    covered = {m: 0 for m in ("accuracy", "uf1", "uar")}
    trials = 200
    for trial in range(trials):
        _, matrices = subject_confusions(simulate(rng)[0], CLASSES)
        for metric, (_, low, high) in bootstrap(matrices, n_boot=1000, seed=trial).items():
            covered[metric] += low <= 0.7 <= high
    for metric, hits in covered.items():
        assert 0.88 <= hits / trials <= 0.99, (metric, hits / trials)  # nominal 0.95


def test_the_permutation_test_keeps_its_false_positive_rate():
    rng = np.random.default_rng(2)
    trials, rejected = 300, 0
    for trial in range(trials):
        first, truth = simulate(rng)
        second, _ = simulate(rng, truth=truth)  # the same predictor again, on the same clips
        _, a = subject_confusions(first, CLASSES)
        _, b = subject_confusions(second, CLASSES)
        rejected += permutation_test(a, b, n_perm=500, seed=trial)[1] < 0.05
    assert 0.02 <= rejected / trials <= 0.09, rejected / trials  # nominal 0.05


def test_a_real_difference_is_found():
    rng = np.random.default_rng(3)
    strong, truth = simulate(rng, correct=0.8)
    weak, _ = simulate(rng, truth=truth, correct=0.5)
    difference, p = permutation_test(
        subject_confusions(strong, CLASSES)[1], subject_confusions(weak, CLASSES)[1], n_perm=2000
    )
    assert difference > 0.2 and p < 0.01


def test_compare_writes_a_table_and_a_plot_and_refuses_other_clips(small_casme2, cache_dir, tmp_path):
    runner = CliRunner()
    base = [
        "evaluate",
        "--dataset",
        "casme2",
        "--root",
        str(small_casme2.root),
        "--labels",
        "seed4",
        "--cache",
        str(cache_dir),
        "--apex",
        "motion",
    ]
    for method in ("apex_flow_svm", "lbptop_svm"):
        assert runner.invoke(app, [*base, "--method", method, "--out", str(tmp_path / method)]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "compare",
            str(tmp_path / "apex_flow_svm"),
            str(tmp_path / "lbptop_svm"),
            "--out",
            str(tmp_path / "cmp"),
            "--n-boot",
            "200",
            "--n-perm",
            "200",
        ],
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| apex_flow_svm | all | 5 |" in text and "| apex_flow_svm | lbptop_svm | all |" in text
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:4] == b"\x89PNG"
    averaged = runner.invoke(
        app,
        [
            "compare",
            "--ensemble",
            str(tmp_path / "apex_flow_svm"),
            str(tmp_path / "lbptop_svm"),
            "--n-boot",
            "100",
            "--n-perm",
            "100",
        ],
    )
    assert averaged.exit_code == 0 and "ensemble(apex_flow_svm+lbptop_svm) - " not in averaged.output
    assert "apex_flow_svm - ensemble(apex_flow_svm+lbptop_svm) (all)" in averaged.output
    other = runner.invoke(app, [*base, "--method", "lbptop_svm", "--labels", "megc3", "--out", str(tmp_path / "megc3")])
    assert other.exit_code == 0, other.output
    refused = runner.invoke(app, ["compare", str(tmp_path / "apex_flow_svm"), str(tmp_path / "megc3")])
    assert refused.exit_code == 2 and "compare runs of one label scheme" in refused.output.replace("\n", "")
    fewer = tmp_path / "fewer"
    import shutil

    shutil.copytree(tmp_path / "lbptop_svm", fewer)
    table = pd.read_csv(fewer / "predictions.csv", dtype=str)
    table.iloc[1:].to_csv(fewer / "predictions.csv", index=False)
    refused = runner.invoke(app, ["compare", str(tmp_path / "apex_flow_svm"), str(fewer)])
    assert (
        refused.exit_code == 2
        and "predicted different clips (0 only in the first, 1 only in the second, e.g. casme2/sub01/EP03_01f)"
        in refused.output.replace("\n", "")
    )


def write_run(folder, probabilities, *, labels, subjects, clips=None, classes=("a", "b", "c")):
    """A finished run directory holding the given per-clip probabilities (its predictions their argmax)."""
    import json

    from merkit.methods.base import probability_columns

    folder.mkdir(parents=True)
    frame = pd.DataFrame(
        {
            "fold": subjects,
            "dataset": "sim",
            "subject": subjects,
            "clip": clips or [f"c{i}" for i in range(len(labels))],
            "label": labels,
            "prediction": np.asarray(classes)[np.asarray(probabilities).argmax(axis=1)],
        }
    )
    frame[probability_columns(classes)] = probabilities
    config = {
        "dataset": {"name": "sim", "labels": "sim3", "classes": list(classes), "n_clips": len(labels)},
        "method": {"name": folder.name, "params": {}},
    }
    (folder / "config.json").write_text(json.dumps(config))
    frame.to_csv(folder / "predictions.csv", index=False)
    return folder


FOUR = dict(labels=["a", "b", "c", "a"], subjects=["s1", "s1", "s2", "s2"])
SURE = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1]]
UNSURE = [[0.4, 0.3, 0.3], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]]


def test_log_loss_and_reliability_against_hand_computed_values(tmp_path):
    from merkit.evaluation.compare import compare, read_run, reliability

    run = read_run(write_run(tmp_path / "sure", SURE, **FOUR))
    curve = reliability(run)
    # top-class probabilities 0.8, 0.7, 0.8, 0.6 (bins 8, 7, 8, 6); right, right, right, wrong (b for a)
    assert curve["count"].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 2, 0]
    np.testing.assert_allclose(curve["confidence"][[6, 7, 8]], [0.6, 0.7, 0.8])
    np.testing.assert_allclose(curve["accuracy"][[6, 7, 8]], [0.0, 1.0, 1.0])
    assert curve["ece"] == pytest.approx((0.6 + 0.3 + 2 * 0.2) / 4)
    figures, _ = compare([tmp_path / "sure"], n_boot=50, n_perm=50)
    assert figures.loc[0, "log_loss"] == pytest.approx(-np.log([0.8, 0.7, 0.8, 0.3]).mean())
    assert figures.loc[0, "log_loss_low"] <= figures.loc[0, "log_loss"] <= figures.loc[0, "log_loss_high"]


def test_the_ensemble_of_runs_is_the_mean_of_their_probabilities(tmp_path):
    from merkit.evaluation.compare import compare

    write_run(tmp_path / "sure", SURE, **FOUR)
    # the same clips in another order: the ensemble matches clips by name, not by row
    order = [2, 0, 3, 1]
    write_run(
        tmp_path / "unsure",
        np.asarray(UNSURE)[order],
        labels=[FOUR["labels"][i] for i in order],
        subjects=[FOUR["subjects"][i] for i in order],
        clips=[f"c{i}" for i in order],
    )

    figures, tests = compare(
        [tmp_path / "sure", tmp_path / "unsure"], out=tmp_path / "cmp", ensemble=True, n_boot=50, n_perm=50
    )
    mean = (np.asarray(SURE) + np.asarray(UNSURE)) / 2  # argmax a, b, c, b: 3 of 4 right
    overall = figures[figures["run"] == "ensemble(sure+unsure)"].iloc[0]
    assert overall["accuracy"] == pytest.approx(0.75)
    assert overall["log_loss"] == pytest.approx(-np.log(mean[[0, 1, 2, 3], [0, 1, 2, 0]]).mean())
    assert len(tests) == 3 and set(tests["run_b"]) == {"unsure", "ensemble(sure+unsure)"}
    text = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| ensemble(sure+unsure) | all | 2 | 4 |" in text and "log loss" in text and "ECE" in text
    assert (
        f"- `ensemble(sure+unsure)`: the mean of the probabilities of {tmp_path / 'sure'}, {tmp_path / 'unsure'}"
        in text
    )
    assert (tmp_path / "cmp" / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    from merkit.evaluation.compare import read_run

    written = read_run(tmp_path / "cmp" / "ensemble")  # a run directory, to compare with other runs later
    np.testing.assert_allclose(written.probabilities(), mean, rtol=0, atol=1e-15)
    assert written.config["method"] == {
        "name": "ensemble",
        "params": {"runs": [str(tmp_path / "sure"), str(tmp_path / "unsure")]},
    }


def test_the_ensemble_refuses_other_clips_and_runs_without_probabilities(tmp_path):
    from merkit.errors import MerkitError
    from merkit.evaluation.compare import compare

    write_run(tmp_path / "sure", SURE, **FOUR)
    write_run(tmp_path / "fewer", SURE[:3], labels=FOUR["labels"][:3], subjects=FOUR["subjects"][:3])
    with pytest.raises(MerkitError, match=r"fewer.*sure.*different clips.*sim/s2/c3"):
        compare([tmp_path / "sure", tmp_path / "fewer"], ensemble=True)
    old = write_run(tmp_path / "old", SURE, **FOUR)
    pd.read_csv(old / "predictions.csv").drop(columns=["p_a", "p_b", "p_c"]).to_csv(
        old / "predictions.csv", index=False
    )
    with pytest.raises(MerkitError, match=r"old hold no p_<class> columns"):
        compare([tmp_path / "sure", old], ensemble=True)
    figures, _ = compare(
        [tmp_path / "sure", old], n_boot=50, n_perm=50
    )  # compared without --ensemble, its log loss unknown
    assert np.isnan(figures.loc[figures["run"] == "old", "log_loss"]).all()
