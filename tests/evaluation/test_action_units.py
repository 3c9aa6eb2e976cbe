import numpy as np
import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.datasets import load
from merkit.evaluation import evaluate
from merkit.evaluation.metrics import au_scores
from merkit.preprocess.apex import fill_apex


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A synthetic CASME II of 10 subjects: enough clips per AU for LOSO to mean something."""
    from merkit.synthetic import SynthConfig, write_casme2

    return write_casme2(tmp_path_factory.mktemp("aus"), SynthConfig(n_subjects=10, seed=4), jobs=2)


@pytest.fixture(scope="module")
def aus(written):
    return fill_apex(load("casme2", root=written.root, labels="aus"), "motion")


def test_the_aus_scheme_is_multi_hot_over_the_twelve(aus, written):
    assert aus.multilabel and aus.classes == (
        "AU1",
        "AU2",
        "AU4",
        "AU5",
        "AU6",
        "AU7",
        "AU9",
        "AU10",
        "AU12",
        "AU14",
        "AU15",
        "AU17",
    )
    moved = {(t.subject, t.clip): set(t.expression.aus) for t in written.clips}
    for (subject, clip), row in zip(aus.metadata[["subject", "clip"]].itertuples(index=False), aus.targets):
        assert {int(c[2:]) for c, on in zip(aus.classes, row) if on} == moved[(subject, clip)] & {
            1,
            2,
            4,
            5,
            6,
            7,
            9,
            10,
            12,
            14,
            15,
            17,
        }


def test_per_au_f1_by_hand():
    # AU1: truth in clips 0, 1; predicted in 0, 1 -> F1 1. AU2: truth in 0; predicted in 1, 2 -> TP 0 -> F1 0.
    # AU4: never true, predicted in 2 -> 2TP + FP + FN = 1 -> F1 0. AU5: neither -> undefined, not in the mean.
    s = au_scores(["AU1+AU2", "AU1", "none"], ["AU1", "AU1+AU2", "AU2+AU4"], ["AU1", "AU2", "AU4", "AU5"])
    assert s["per_au_f1"] == {"AU1": 1.0, "AU2": 0.0, "AU4": 0.0, "AU5": None} and s["mean_f1"] == pytest.approx(1 / 3)


def test_svms_beat_the_prevalence_baseline_on_the_units_the_generator_moves(aus, cache_dir, tmp_path):
    svm = evaluate(aus, "apex_flow_svm", out=tmp_path / "svm", cache=cache_dir)
    baseline = evaluate(aus, "au_prevalence", out=tmp_path / "baseline", cache=cache_dir)
    assert (
        svm.metrics["multilabel"] and svm.metrics["overall"]["mean_f1"] > baseline.metrics["overall"]["mean_f1"] + 0.2
    )
    common = [c for c in aus.classes if aus.metadata["label"].str.contains(c + r"(?:\+|$)").sum() >= 3]
    better = [
        svm.metrics["overall"]["per_au_f1"][c] > (baseline.metrics["overall"]["per_au_f1"][c] or 0) for c in common
    ]
    assert len(common) >= 3 and np.mean(better) >= 0.75, common
    network = evaluate(aus, "ststnet", params={"epochs": 150, "lr": 1e-3}, out=tmp_path / "net", cache=cache_dir)
    assert network.metrics["overall"]["mean_f1"] > baseline.metrics["overall"]["mean_f1"] + 0.2, "sigmoid head, BCE"
    compared = CliRunner().invoke(
        app,
        [
            "compare",
            str(tmp_path / "svm"),
            str(tmp_path / "baseline"),
            "--out",
            str(tmp_path / "cmp"),
            "--n-boot",
            "300",
            "--n-perm",
            "300",
        ],
    )
    assert compared.exit_code == 0, compared.output
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| run | dataset | subjects | clips | mean AU F1 |" in table and "| mean AU F1 A - B | p |" in table
    report = (tmp_path / "svm" / "report.md").read_text()
    assert (
        "## F1 per action unit and dataset" in report
        and (tmp_path / "svm" / "au_f1.png").read_bytes()[:4] == b"\x89PNG"
    )


def test_single_label_methods_and_bundles_refuse_action_units(small_casme2, tmp_path):
    runner = CliRunner()
    base = ["--dataset", "casme2", "--root", str(small_casme2.root), "--labels", "aus"]
    network = runner.invoke(app, ["evaluate", *base, "--method", "stanet", "--out", str(tmp_path / "n")])
    assert network.exit_code == 2 and "classifies each clip into one class" in network.output.replace("\n", "")
    bundle = runner.invoke(app, ["train", *base, "--method", "lbptop_svm", "--out", str(tmp_path / "b")])
    assert bundle.exit_code == 2 and "single-label models" in bundle.output.replace("\n", "")


@pytest.fixture(scope="module")
def three_datasets(tmp_path_factory):
    """Synthetic CASME, CASME II and SAMM in sub-folders named as the datasets."""
    from merkit.synthetic import LAYOUTS, SynthConfig, write_dataset

    root = tmp_path_factory.mktemp("cross")
    for seed, layout in enumerate(("casme", "casme2", "samm")):
        _, fps, emotions, _ = LAYOUTS[layout]
        write_dataset(
            layout,
            root / layout.upper(),
            SynthConfig(n_subjects=3, clips_per_subject=(3, 4), seed=20 + seed, fps=fps, emotions=emotions),
        )
    return root


def test_the_cross_composite_keeps_each_dataset_and_its_subjects_apart(three_datasets):
    data = load("cross", root=three_datasets, labels="aus")
    parts = {name: load(name, root=three_datasets / name.upper(), labels="aus") for name in ("casme", "casme2", "samm")}
    assert len(data) == sum(len(p) for p in parts.values()) and data.classes == parts["casme2"].classes
    assert set(data.groups) == {g for p in parts.values() for g in p.groups}, "subjects namespaced by dataset"
    same = load("cross", roots={"casme2": three_datasets / "CASME2", "samm": three_datasets / "SAMM"}, labels="aus")
    assert set(same.metadata["dataset"]) == {"casme2", "samm"}


def test_action_units_leave_one_dataset_out_end_to_end(three_datasets, cache_dir, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "cross",
            "--root",
            str(three_datasets),
            "--method",
            "apex_flow_svm",
            "--apex",
            "motion",
            "--protocol",
            "lodo",
            "--out",
            str(tmp_path / "lodo"),
            "--cache",
            str(cache_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    report = (tmp_path / "lodo" / "report.md").read_text()
    assert "| AU | clips with it | all | casme | casme2 | samm |" in report
    folds = sorted(p.name for p in (tmp_path / "lodo" / "folds").iterdir())
    assert folds == ["000_casme.csv", "001_casme2.csv", "002_samm.csv"]


def test_the_au_set_is_an_option_and_units_never_moved_stay_undefined(written, cache_dir, tmp_path):
    """aus:1,2,25: the generator never moves AU25, so no clip codes it and neither the SVM nor the
    baseline names it: its F1 is undefined (-) for both, left out of the means."""
    data = fill_apex(load("casme2", root=written.root, labels="aus:1,2,25"), "motion")
    assert data.classes == ("AU1", "AU2", "AU25") and data.targets[:, 2].sum() == 0
    svm = evaluate(data, "apex_flow_svm", out=tmp_path / "svm", cache=cache_dir)
    baseline = evaluate(data, "au_prevalence", out=tmp_path / "baseline", cache=cache_dir)
    for run in (svm, baseline):
        assert run.metrics["overall"]["per_au_f1"]["AU25"] is None
    assert svm.metrics["overall"]["per_au_f1"]["AU1"] > baseline.metrics["overall"]["per_au_f1"]["AU1"]
