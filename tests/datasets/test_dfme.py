"""DFME as its public scripts read it: per-split sheets, 5-digit PNG folders, a frame rate per clip, the given splits."""

import json
import shutil

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from merkit.cli import app
from merkit.datasets import load
from merkit.errors import ConfigError, DatasetWarning
from merkit.evaluation.protocols import make_protocol
from merkit.io import frame_number
from merkit.synthetic import LAYOUTS, SynthConfig, write_dataset


@pytest.fixture(scope="module")
def dfme(tmp_path_factory):
    _, fps, emotions, _ = LAYOUTS["dfme"]
    config = SynthConfig(
        n_subjects=8, clips_per_subject=(2, 3), duration=(0.05, 0.08), fps=fps, emotions=emotions, seed=4
    )
    return write_dataset("dfme", tmp_path_factory.mktemp("dfme") / "DFME", config)


def test_clips_emotions_and_per_clip_frame_rates_exact(dfme):
    data = load("dfme", root=dfme.root)
    assert len(data) == len(dfme.clips) and not data.problems and not data.orphans
    assert data.labels == "dfme_7" and set(data.classes) <= {
        "anger",
        "contempt",
        "disgust",
        "fear",
        "happiness",
        "sadness",
        "surprise",
    }
    meta = data.metadata.set_index(["subject", "clip"])
    for truth in dfme.clips:
        row = meta.loc[(truth.subject, truth.clip)]
        assert (row["onset"], row["apex"], row["offset"], row["n_frames"]) == (
            truth.onset,
            truth.apex,
            truth.offset,
            truth.n_frames,
        )
        assert row["emotion"] == truth.emotion == row["label"] and row["fps"] == truth.fps
        assert row["aus"] == "+".join(map(str, truth.expression.aus))
    assert set(data.metadata["fps"]) == {200.0, 300.0, 500.0}, "each clip keeps its own frame rate"
    assert [c.fps for c in data] == list(data.metadata["fps"])
    assert set(data.metadata["split"]) == {"train", "testA", "testB"}
    clip = data[0]
    assert clip.frame_paths[0].suffix == ".png" and len(clip.frame_paths[0].stem) == 5
    assert clip.read().shape[0] == clip.n_frames
    sheet = load_workbook(dfme.root / "testA_full_with_AU.xlsx").active
    assert 0 in [r[2].value for r in sheet.iter_rows(min_row=2)], "test A's onsets of 0 are exercised"


def test_an_onset_of_0_in_a_folder_numbered_from_1_is_its_first_frame(dfme, tmp_path):
    root = shutil.copytree(dfme.root, tmp_path / "DFME")
    sheet = load_workbook(root / "testA_full_with_AU.xlsx").active
    clip = next(r[1].value for r in sheet.iter_rows(min_row=2) if r[2].value == 0)
    folder = next(root.glob(f"*/{clip}"))
    for frame in sorted(folder.iterdir(), key=frame_number, reverse=True):
        frame.rename(folder / f"{frame_number(frame) + 1:05d}.png")
    before = load("dfme", root=dfme.root).metadata.set_index("clip").loc[clip]
    after = load("dfme", root=root).metadata.set_index("clip").loc[clip]
    assert (after["onset"], after["apex"], after["offset"]) == (0, before["apex"] - 1, before["offset"] - 1)
    assert after["n_frames"] == before["n_frames"]


def test_a_row_without_a_frame_rate_is_skipped_and_named(dfme, tmp_path):
    root = shutil.copytree(dfme.root, tmp_path / "DFME")
    book = load_workbook(root / "testB_full_with_AU.xlsx")
    book.active["H2"] = "fast"
    book.save(root / "testB_full_with_AU.xlsx")
    with pytest.warns(
        DatasetWarning, match=r"testB_full_with_AU.xlsx row 2 \(sub\d+/sub\d+_01\): Fps 'fast' is not a frame rate"
    ):
        data = load("dfme", root=root)
    assert len(data) == len(dfme.clips) - 1


def test_the_given_splits_train_on_train_and_test_each_test_split(dfme, small_casme2, tmp_path):
    data = load("dfme", root=dfme.root)
    folds = make_protocol("given").folds(data)
    split = data.metadata["split"].to_numpy()
    assert [f.name for f in folds] == ["testA", "testB"]
    for fold in folds:
        assert set(split[fold.train]) == {"train"} and len(fold.train) == (split == "train").sum()
        assert set(split[fold.test]) == {fold.name} and len(fold.test) == (split == fold.name).sum()
    with pytest.raises(ConfigError, match="needs each clip's split"):
        make_protocol("given").folds(load("casme2", root=small_casme2.root))
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "dfme",
            "--root",
            str(dfme.root),
            "--method",
            "length_for_tests",
            "--protocol",
            "given",
            "--out",
            str(tmp_path / "run"),
            "--cache",
            str(tmp_path / "cache"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "run" / "folds").iterdir()) == ["000_testA.csv", "001_testB.csv"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["per_fold"]) == 2 and metrics["overall"]["n"] == (split != "train").sum()
