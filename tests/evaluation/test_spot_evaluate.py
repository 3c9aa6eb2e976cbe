import json

from typer.testing import CliRunner

from merkit.cli import app
from merkit.synthetic.long_videos import write_long_dataset

runner = CliRunner()


def test_spot_evaluate_scores_each_dataset_and_plots_each_video(tmp_path):
    few = dict(subjects=1, videos=2, seconds=10, size=(120, 160), micro=2, macro=1, distractors={"blink": 1}, seed=8)
    a = write_long_dataset("casme2_long", tmp_path / "c2", **few)
    b = write_long_dataset("casme3_long", tmp_path / "c3", **few)
    out = tmp_path / "out"
    result = runner.invoke(app, ["spot-evaluate", "--dataset", "casme2_long", "--root", str(a.root), "--dataset", "casme3_long",
                                 "--root", str(b.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores["per_dataset"]) == {"casme2_long", "casme3_long"}
    for kind in ("micro", "macro"):  # the pooled counts are the sums of the videos' and of the datasets'
        for what in ("tp", "spotted", "annotated"):
            total = scores["overall"][kind][what]
            assert total == sum(v[kind][what] for v in scores["videos"]) == sum(d[kind][what] for d in scores["per_dataset"].values())
    assert scores["overall"]["micro"]["annotated"] == 8 and scores["overall"]["macro"]["annotated"] == 4
    assert len(list((out / "timelines").glob("*.png"))) == 4
    report = (out / "report.md").read_text()
    assert "| all | overall |" in report and "0.1-0.2" in report
    again = runner.invoke(app, ["spot-evaluate", "--dataset", "casme2_long", "--root", str(a.root), "--out", str(out / "x"),
                                "--root", str(b.root)])
    assert again.exit_code == 2 and "one --root per --dataset" in again.output
