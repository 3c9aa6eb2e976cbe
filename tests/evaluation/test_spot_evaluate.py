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
    from openpyxl import load_workbook

    workbook = a.root / "CAS(ME)^2code_final(Updated).xlsx"
    book = load_workbook(workbook)
    book.active.append(
        [1, "disgust1_9", 60, 55, 50, "", "others", "micro-expression", "others"]
    )  # an erratum: offset before onset
    book.save(workbook)
    out = tmp_path / "out"
    args = [
        "spot-evaluate",
        "--dataset",
        "casme2_long",
        "--root",
        str(a.root),
        "--dataset",
        "casme3_long",
        "--root",
        str(b.root),
        "--out",
        str(out),
    ]
    refused = runner.invoke(app, [*args, "--option", "strict=true"])
    assert refused.exit_code == 2 and "out of order" in refused.output and "CAS(ME)^2code_final" in refused.output, (
        refused.output
    )
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "scores.json").read_text())
    [skipped] = scores["skipped"]  # the row left out is listed in the scores and the report
    assert (
        "onset 60, apex 55, offset 50 are out of order" in skipped
        and skipped.split("\n")[-1].strip() in (out / "report.md").read_text()
    )
    assert set(scores["per_dataset"]) == {"casme2_long", "casme3_long"}
    for kind in ("micro", "macro"):  # the pooled counts are the sums of the videos' and of the datasets'
        for what in ("tp", "spotted", "annotated"):
            total = scores["overall"][kind][what]
            assert (
                total
                == sum(v[kind][what] for v in scores["videos"])
                == sum(d[kind][what] for d in scores["per_dataset"].values())
            )
    assert sum(i["matched"] for v in scores["videos"] for i in v["spotted"]) == scores["overall"]["overall"]["tp"]
    assert scores["overall"]["micro"]["annotated"] == 8 and scores["overall"]["macro"]["annotated"] == 4
    for kind in ("micro", "macro"):  # the spotter finds expressions of both kinds (measured on these videos, whose
        s = scores["overall"][kind]  # expressions carry each release's own emotion words: 3 of 8 micro, 2 of 4 macro)
        assert s["tp"] >= {"micro": 3, "macro": 2}[kind], s
        assert s["f1"] == pytest.approx(2 * s["tp"] / (s["spotted"] + s["annotated"]))
        assert s["precision"] == pytest.approx(s["tp"] / s["spotted"]) and s["recall"] == pytest.approx(
            s["tp"] / s["annotated"]
        )
    assert len(list((out / "timelines").glob("*.png"))) == 4
    report = (out / "report.md").read_text()
    assert "| all | overall |" in report and "0.1-0.2" in report
    again = runner.invoke(
        app,
        [
            "spot-evaluate",
            "--dataset",
            "casme2_long",
            "--root",
            str(a.root),
            "--out",
            str(out / "x"),
            "--root",
            str(b.root),
        ],
    )
    assert again.exit_code == 2 and "one --root per --dataset" in again.output


def test_the_long_video_emotion_words_have_classes():
    from merkit.datasets.labels import CASME2_LONG_WORDS, CASME3_WORDS, get_scheme
    from merkit.synthetic.long_videos import LONG_EMOTIONS

    assert set(LONG_EMOTIONS["casme2_long"]) == set(CASME2_LONG_WORDS) and set(LONG_EMOTIONS["casme3_long"]) == set(
        CASME3_WORDS
    )
    seed4, megc3, casme2_5 = get_scheme("seed4"), get_scheme("megc3"), get_scheme("casme2_5")
    expected = {
        "negative": "negative",
        "positive": "positive",
        "surprise": "surprise",
        "others": None,
        "anger": "negative",
        "disgust": "negative",
        "fear": "negative",
        "sad": "negative",
        "happy": "positive",
    }
    for dataset, words in (("casme2_long", CASME2_LONG_WORDS), ("casme3_long", CASME3_WORDS)):
        for word in words:
            assert megc3.map(dataset, word) == expected[word], (dataset, word)
            assert seed4.map(dataset, word) == expected[word] or (
                word == "others" and seed4.map(dataset, word) == "other"
            )
    assert [casme2_5.map("casme2_long", w) for w in CASME2_LONG_WORDS] == [None, "happiness", "surprise", "others"]


def test_strs_scores_every_true_positive_of_the_long_videos_own_words(small_casme2, cache_dir, tmp_path):
    """A megc3 bundle (negative, positive, surprise) on CAS(ME)2 and CAS(ME)3 long videos written with
    their own words (those with a megc3 class): every true positive is recognised, none set aside."""
    from merkit.datasets import load
    from merkit.inference import train
    from merkit.preprocess.apex import fill_apex
    from merkit.synthetic.long_videos import LONG_EMOTIONS

    data = fill_apex(load("casme2", root=small_casme2.root, labels="megc3"), "motion")
    assert data.classes == ("negative", "positive", "surprise")
    bundle = train(data, "apex_flow_svm", out=tmp_path / "model", cache=cache_dir)
    args = ["spot-evaluate", "--model", str(bundle), "--out", str(tmp_path / "out")]
    for layout in ("casme2_long", "casme3_long"):
        words = tuple(w for w in LONG_EMOTIONS[layout] if w != "others")
        written = write_long_dataset(
            layout,
            tmp_path / layout,
            subjects=1,
            videos=2,
            seconds=10,
            size=(120, 160),
            micro=2,
            macro=1,
            distractors={"blink": 1},
            seed=8,
            emotions=words,
        )
        assert {e.emotion for p in written.plans.values() for e in p.expressions} <= set(words)
        args += ["--dataset", layout, "--root", str(written.root)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert (
        scores["per_dataset"]["casme2_long"]["overall"]["tp"] > 0
        and scores["per_dataset"]["casme3_long"]["overall"]["tp"] > 0
    )
    strs = scores["strs"]
    assert strs["unscored"] == 0 and strs["recognised"] == scores["overall"]["overall"]["tp"]
    assert strs["spotting_f1"] == scores["overall"]["overall"]["f1"]
    assert strs["strs"] == strs["spotting_f1"] * strs["recognition_uf1"] and len(strs["true"]) == strs["recognised"]
    classes = sorted(set(strs["true"]))  # UF1 by hand: each class that occurs, F1 = 2 TP / (2 TP + FP + FN), averaged
    pairs = list(zip(strs["true"], strs["predicted"]))
    f1 = [2 * pairs.count((c, c)) / (sum(t == c for t, _ in pairs) + sum(p == c for _, p in pairs)) for c in classes]
    assert strs["recognition_uf1"] == pytest.approx(np.mean(f1))
    assert strs["recognised"] >= 3 and strs["recognition_uf1"] >= 0.7, (
        pairs
    )  # measured: 4 recognised, all right (UF1 1.0)
    assert "STRS" in (tmp_path / "out" / "report.md").read_text()


def test_softnet_trains_leave_one_subject_out_and_a_rerun_reuses_the_folds(tmp_path, monkeypatch):
    from merkit.spotting.softnet import SOFTNet

    data = write_long_dataset(
        "casme2_long",
        tmp_path / "c2",
        subjects=3,
        videos=1,
        seconds=10,
        size=(120, 160),
        micro=2,
        macro=1,
        distractors={"blink": 1},
        seed=8,
    )
    fits = []
    fit = SOFTNet.fit

    def recorded(self, videos):
        fits.append(sorted(v.subject for v in videos))
        return fit(self, videos)

    monkeypatch.setattr(SOFTNet, "fit", recorded)
    computed = []
    part_signals = SOFTNet.part_signals

    def counted(self, faces, fps, part):
        computed.append(self.signal_parts(fps)[part])
        return part_signals(self, faces, fps, part)

    monkeypatch.setattr(SOFTNet, "part_signals", counted)
    out = tmp_path / "out"
    args = [
        "spot-evaluate",
        "--dataset",
        "casme2_long",
        "--root",
        str(data.root),
        "--out",
        str(out),
        "--spotter",
        "softnet",
        "--set",
        "epochs=2",
        "--set",
        "lr=0.02",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    subjects = ["casme2_long/s15", "casme2_long/s16", "casme2_long/s17"]
    # one fit per held-out subject, each on the two other subjects' videos only
    assert (
        sorted(fits)
        == [[a, b] for a, b in ([subjects[1], subjects[2]], [subjects[0], subjects[2]], [subjects[0], subjects[1]])][
            ::-1
        ]
    )
    folds = {p.stem: json.loads(p.read_text()) for p in (out / "folds").glob("*.json")}
    assert len(folds) == 3
    for fold in folds.values():
        [tested] = fold["stamp"]["test"]
        assert tested not in fold["stamp"]["train"] and list(fold["videos"]) == [tested]
        assert tested.split("/")[1] not in {key.split("/")[1] for key in fold["stamp"]["train"]}
    # flow images cached per kind and gap, float16: each block computed once however many folds read it
    files = sorted(out.glob("cache/*/signals-softnet-*.npy"))
    assert len(computed) == len(files) and {f.name for f in files} == {f"signals-softnet-{tag}.npy" for tag in computed}
    assert all(np.load(f).dtype == np.float16 and np.load(f).shape[1] == 3 * 42 * 42 for f in files)
    first = json.loads((out / "scores.json").read_text())
    assert first["overall"]["micro"]["annotated"] == 6 and first["overall"]["macro"]["annotated"] == 3
    fits.clear()
    [s16] = [name for name, fold in folds.items() if fold["stamp"]["test"][0].startswith("casme2_long/s16/")]
    (out / "folds" / f"{s16}.json").unlink()  # as if interrupted before that fold was written
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert fits == [[subjects[0], subjects[2]]]  # only the missing fold trains again
    assert json.loads((out / "scores.json").read_text())["overall"] == first["overall"]
    fits.clear()
    other = runner.invoke(app, [*args[:-1], "lr=0.01"])  # other settings: no fold is reused
    assert other.exit_code == 0 and len(fits) == 3
