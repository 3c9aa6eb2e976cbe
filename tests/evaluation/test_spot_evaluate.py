import json

import numpy as np
import pytest
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
    assert sum(i["matched"] for v in scores["videos"] for i in v["spotted"]) == scores["overall"]["overall"]["tp"]
    assert scores["overall"]["micro"]["annotated"] == 8 and scores["overall"]["macro"]["annotated"] == 4
    for kind in ("micro", "macro"):  # the spotter finds expressions of both kinds (measured: 6 of 8 micro, 2 of 4 macro)
        s = scores["overall"][kind]
        assert s["tp"] >= {"micro": 5, "macro": 2}[kind], s
        assert s["f1"] == pytest.approx(2 * s["tp"] / (s["spotted"] + s["annotated"]))
        assert s["precision"] == pytest.approx(s["tp"] / s["spotted"]) and s["recall"] == pytest.approx(s["tp"] / s["annotated"])
    assert len(list((out / "timelines").glob("*.png"))) == 4
    report = (out / "report.md").read_text()
    assert "| all | overall |" in report and "0.1-0.2" in report
    again = runner.invoke(app, ["spot-evaluate", "--dataset", "casme2_long", "--root", str(a.root), "--out", str(out / "x"),
                                "--root", str(b.root)])
    assert again.exit_code == 2 and "one --root per --dataset" in again.output


def test_strs_recognises_every_true_positive_it_can_label(small_casme2, cache_dir, tmp_path):
    from merkit.datasets import load
    from merkit.inference import train
    from merkit.preprocess.apex import fill_apex

    data = fill_apex(load("casme2", root=small_casme2.root, labels="seed4"), "motion")
    bundle = train(data, "apex_flow_svm", out=tmp_path / "model", cache=cache_dir)
    written = write_long_dataset("casme2_long", tmp_path / "c2", subjects=1, videos=2, seconds=10, size=(120, 160), micro=2,
                                 macro=1, distractors={"blink": 1}, seed=8)
    result = runner.invoke(app, ["spot-evaluate", "--dataset", "casme2_long", "--root", str(written.root), "--model", str(bundle),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    strs = scores["strs"]
    # every true positive is either recognised or counted as having no class under the bundle's scheme (seed4)
    assert strs["recognised"] + strs["unscored"] == scores["overall"]["overall"]["tp"] and strs["recognised"] > 0
    assert strs["spotting_f1"] == scores["overall"]["overall"]["f1"]
    assert strs["strs"] == strs["spotting_f1"] * strs["recognition_uf1"] and len(strs["true"]) == strs["recognised"]
    classes = sorted(set(strs["true"]))  # UF1 by hand: each class that occurs, F1 = 2 TP / (2 TP + FP + FN), averaged
    pairs = list(zip(strs["true"], strs["predicted"]))
    f1 = [2 * pairs.count((c, c)) / (sum(t == c for t, _ in pairs) + sum(p == c for _, p in pairs)) for c in classes]
    assert strs["recognition_uf1"] == pytest.approx(np.mean(f1))
    assert strs["recognised"] >= 3 and strs["recognition_uf1"] >= 0.7, pairs  # measured: 4 recognised, all right (UF1 1.0)
    assert "STRS" in (tmp_path / "out" / "report.md").read_text()
