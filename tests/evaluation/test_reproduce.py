import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.evaluation.reproduce import plan

runner = CliRunner()
CPU = ["--set", "size=32", "--set", "widths=4,8,8,8", "--set", "n_frames=6", "--set", "epochs=1", "--set", "hidden=4"]


def test_stanet_dry_run_lists_casme2_with_five_classes_and_loso(small_casme2, tmp_path):
    result = runner.invoke(
        app, ["reproduce", "stanet", "--casme2", str(small_casme2.root), "--out", str(tmp_path), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    text = result.output.replace("\n    ", " ")
    casme2 = text[text.index("Table 1 / casme2") :].split("\n- ")[0]
    assert "classes (casme2_5): happiness, surprise, disgust, repression, others; protocol loso" in casme2
    assert "paper: accuracy 0.6911" in casme2 and f"from {small_casme2.root}" in casme2
    assert "Table 1 / smic: smic_hs skipped: pass --smic PATH" in text and "0.7135" in text  # Table 2's baseline
    assert not list(tmp_path.iterdir()), "a dry run writes nothing"


def test_mer_rcnn_dry_run_lists_random_5_fold_with_its_leakage_warning(small_casme2, tmp_path):
    result = runner.invoke(
        app, ["reproduce", "mer_rcnn", "--casme2", str(small_casme2.root), "--out", str(tmp_path), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    casme2 = result.output[result.output.index("Table 2 / casme2") :].split("\n- ")[0]
    assert "protocol kfold (5 folds)" in casme2 and "paper: accuracy 0.6580" in casme2
    assert "identity leakage" in casme2.replace("\n", " ")
    assert "no magnification" in result.output and "no jittering" in result.output


PAPERS_FIGURES = {  # each table cell as printed in its paper (typed from the papers, not from merkit)
    ("stanet", "casme"): "accuracy 0.7661",
    ("stanet", "casme2"): "accuracy 0.6911",
    ("stanet", "smic"): "accuracy 0.6890",
    ("stanet", "casme/baseline"): "accuracy 0.7135",
    ("stanet", "casme/sab"): "accuracy 0.7310",
    ("stanet", "casme/sab_l1"): "accuracy 0.7485",
    ("mer_rcnn", "smic"): "accuracy 0.5710",
    ("mer_rcnn", "casme"): "accuracy 0.6320",
    ("mer_rcnn", "casme2"): "accuracy 0.6580",
    ("ststnet", "megc2019"): "uf1 0.7353, uar 0.7605, smic_hs/uf1 0.6801, smic_hs/uar 0.7013, casme2/uf1 0.8382, "
    "casme2/uar 0.8686, samm/uf1 0.6588, samm/uar 0.6810",
}


def test_every_paper_cell_names_its_figure():
    """The plan (--dry-run) names each cell with the paper's figures, every one of them."""
    shown = {}
    for paper in ("mer_rcnn", "stanet", "ststnet"):
        for section in plan(paper, {}).split("\n- ")[1:]:
            name = section.split(":", 1)[0].split(" / ", 1)[1]
            shown[(paper, name)] = section.split("paper: ", 1)[1].split("\n")[0]
    with_figures = {cell: text for cell, text in shown.items() if "not given" not in text}
    assert with_figures == PAPERS_FIGURES
    assert {cell for cell in shown if cell not in PAPERS_FIGURES} == {
        ("mer_rcnn", "casme2/no magnification"),
        ("mer_rcnn", "casme2/no jittering"),
        ("mer_rcnn", "casme2/neither"),
    }


def _seed_figures(run, part, metric):
    import json

    metrics = json.loads((run / "metrics.json").read_text())
    return metrics["overall"][metric] if part == "overall" else metrics["per_dataset"][part][metric]


@pytest.mark.slow
def test_stanet_reproduced_end_to_end_on_synthetic_casme2(small_casme2, cache_dir, tmp_path):
    out = tmp_path / "stanet"
    args = [
        "reproduce",
        "stanet",
        "--casme2",
        str(small_casme2.root),
        "--out",
        str(out),
        "--seeds",
        "0,1",
        "--cache",
        str(cache_dir),
        *CPU,
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| Table 1 | casme2 |"))
    import numpy as np

    seeds = [_seed_figures(out / "casme2" / f"seed{seed}", "overall", "accuracy") for seed in (0, 1)]
    mean, std = np.mean(seeds), np.std(seeds, ddof=1)  # merkit's figure: mean ± std over the two seeds' runs
    assert row == (
        f"| Table 1 | casme2 | casme2 | casme2_5 (5) | loso | accuracy | 0.691 | {mean:.3f} ± {std:.3f} "
        f"| {mean - 0.6911:+.3f} |"
    )
    assert "Skipped, for want of the data: `--casme`, `--smic`" in report and "not the paper's experiment" in report
    for seed in (0, 1):
        assert (out / "casme2" / f"seed{seed}" / "report.md").is_file()
    again = runner.invoke(app, args)  # resumes: every fold read back
    assert again.exit_code == 0 and (out / "report.md").read_text() == report


def test_evaluate_takes_the_papers_classes_unless_labels_are_given(small_casme2, cache_dir, tmp_path):
    args = [
        "evaluate",
        "--dataset",
        "casme2",
        "--root",
        str(small_casme2.root),
        "--method",
        "stanet",
        *CPU,
        "--cache",
        str(cache_dir),
        "--protocol",
        "subject_kfold",
        "--folds",
        "2",
    ]
    paper = runner.invoke(app, [*args, "--out", str(tmp_path / "paper")])
    assert paper.exit_code == 0, paper.output
    report = (tmp_path / "paper" / "report.md").read_text()
    assert "label scheme `casme2_5` (" in report and "from stanet's paper" in report
    given = runner.invoke(app, [*args, "--labels", "seed4", "--out", str(tmp_path / "given")])
    assert given.exit_code == 0 and "label scheme `seed4`" in (tmp_path / "given" / "report.md").read_text()


def test_ststnet_reports_the_composite_and_each_dataset(megc, cache_dir, tmp_path):
    root, _ = megc
    out = tmp_path / "ststnet"
    result = runner.invoke(
        app,
        [
            "reproduce",
            "ststnet",
            "--megc",
            str(root),
            "--out",
            str(out),
            "--seeds",
            "0",
            "--set",
            "epochs=2",
            "--cache",
            str(cache_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    rows = {
        line.split(" | ")[5]: line for line in report.splitlines() if line.startswith("| Table (MEGC 2019 composite) |")
    }
    paper = {
        "uf1": 0.7353,
        "uar": 0.7605,
        "smic_hs/uf1": 0.6801,
        "smic_hs/uar": 0.7013,
        "casme2/uf1": 0.8382,
        "casme2/uar": 0.8686,
        "samm/uf1": 0.6588,
        "samm/uar": 0.6810,
    }
    assert sorted(rows) == sorted(paper)
    for metric, figure in paper.items():  # the paper's figure, then merkit's (one seed: std 0) from the run itself
        part, _, name = metric.rpartition("/")
        mine = _seed_figures(out / "megc2019" / "seed0", part or "overall", name)
        assert rows[metric].endswith(f"| {metric} | {figure:.3f} | {mine:.3f} ± 0.000 | {mine - figure:+.3f} |"), rows[
            metric
        ]
