import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.evaluation.reproduce import experiments

runner = CliRunner()
CPU = ["--set", "size=32", "--set", "widths=4,8,8,8", "--set", "n_frames=6", "--set", "epochs=1", "--set", "hidden=4"]


def test_stanet_dry_run_lists_casme2_with_five_classes_and_loso(small_casme2, tmp_path):
    result = runner.invoke(app, ["reproduce", "stanet", "--casme2", str(small_casme2.root), "--out", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    text = result.output.replace("\n    ", " ")
    casme2 = text[text.index("Table 1 / casme2"):].split("\n- ")[0]
    assert "classes (casme2_5): happiness, surprise, disgust, repression, others; protocol loso" in casme2
    assert "paper: accuracy 0.6911" in casme2 and f"from {small_casme2.root}" in casme2
    assert "Table 1 / smic: smic_hs skipped: pass --smic PATH" in text and "0.7135" in text  # Table 2's baseline
    assert not list(tmp_path.iterdir()), "a dry run writes nothing"


def test_mer_rcnn_dry_run_lists_random_5_fold_with_its_leakage_warning(small_casme2, tmp_path):
    result = runner.invoke(app, ["reproduce", "mer_rcnn", "--casme2", str(small_casme2.root), "--out", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    casme2 = result.output[result.output.index("Table 2 / casme2"):].split("\n- ")[0]
    assert "protocol kfold (5 folds)" in casme2 and "paper: accuracy 0.6580" in casme2
    assert "identity leakage" in casme2.replace("\n", " ")
    assert "no magnification" in result.output and "no jittering" in result.output


def test_every_paper_cell_names_its_figure():
    cells = {(e.paper, e.name): e.reported for paper in ("mer_rcnn", "stanet", "ststnet") for e in experiments(paper)}
    assert cells[("stanet", "casme")] == {"accuracy": 0.7661} and cells[("stanet", "casme/baseline")] == {"accuracy": 0.7135}
    assert cells[("mer_rcnn", "smic")] == {"accuracy": 0.571}
    assert cells[("ststnet", "megc2019")]["uf1"] == 0.7353 and cells[("ststnet", "megc2019")]["samm/uar"] == 0.6810


@pytest.mark.slow
def test_stanet_reproduced_end_to_end_on_synthetic_casme2(small_casme2, cache_dir, tmp_path):
    out = tmp_path / "stanet"
    args = ["reproduce", "stanet", "--casme2", str(small_casme2.root), "--out", str(out), "--seeds", "0,1",
            "--cache", str(cache_dir), *CPU]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| Table 1 | casme2 |"))
    assert "casme2_5 (5)" in row and "| loso |" in row and "| 0.691 |" in row and "±" in row
    assert "Skipped, for want of the data: `--casme`, `--smic`" in report and "not the paper's experiment" in report
    for seed in (0, 1):
        assert (out / "casme2" / f"seed{seed}" / "report.md").is_file()
    again = runner.invoke(app, args)  # resumes: every fold read back
    assert again.exit_code == 0 and (out / "report.md").read_text() == report


def test_evaluate_takes_the_papers_classes_unless_labels_are_given(small_casme2, cache_dir, tmp_path):
    args = ["evaluate", "--dataset", "casme2", "--root", str(small_casme2.root), "--method", "stanet", *CPU,
            "--cache", str(cache_dir), "--protocol", "subject_kfold", "--folds", "2"]
    paper = runner.invoke(app, [*args, "--out", str(tmp_path / "paper")])
    assert paper.exit_code == 0, paper.output
    report = (tmp_path / "paper" / "report.md").read_text()
    assert "label scheme `casme2_5` (" in report and "from stanet's paper" in report
    given = runner.invoke(app, [*args, "--labels", "seed4", "--out", str(tmp_path / "given")])
    assert given.exit_code == 0 and "label scheme `seed4`" in (tmp_path / "given" / "report.md").read_text()


def test_ststnet_reports_the_composite_and_each_dataset(megc, cache_dir, tmp_path):
    root, _ = megc
    out = tmp_path / "ststnet"
    result = runner.invoke(app, ["reproduce", "ststnet", "--megc", str(root), "--out", str(out), "--seeds", "0",
                                 "--set", "epochs=2", "--cache", str(cache_dir)])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    for metric, figure in [("uf1", "0.735"), ("uar", "0.760"), ("smic_hs/uf1", "0.680"), ("samm/uar", "0.681")]:
        assert f"| {metric} | {figure} |" in report, report
