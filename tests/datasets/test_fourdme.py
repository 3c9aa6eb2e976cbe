"""4DME as the public loaders read its release: multi-label emotions, AU strings with (k) marks, the v1 row swap."""

import shutil

import pandas as pd
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from merkit.cli import app
from merkit.datasets import load
from merkit.errors import ConfigError, DatasetWarning
from merkit.synthetic import LAYOUTS, SynthConfig, write_dataset

SHEET = "4DME_Labelling_Micro_release v1.xlsx"
WORDS = {"Surprise+Positive": 0.3, "Negative+Surprise": 0.2, "Negative": 0.3, "Positive": 0.2}


@pytest.fixture(scope="module")
def fourdme(tmp_path_factory):
    config = SynthConfig(
        n_subjects=3, clips_per_subject=(3, 3), duration=(0.15, 0.25), fps=60.0, emotions=WORDS, seed=6
    )
    return write_dataset("4dme", tmp_path_factory.mktemp("4dme") / "4DME", config)


def test_clips_emotions_aus_and_frame_rate_exact(fourdme):
    data = load("4dme", root=fourdme.root, labels="original")
    assert len(data) == len(fourdme.clips) and not data.problems and not data.orphans
    meta = data.metadata.set_index(["subject", "clip"])
    assert meta["emotion"].str.contains(r"\+").any(), "multi-label emotions are exercised"
    for truth in fourdme.clips:
        row = meta.loc[(truth.subject, truth.clip)]
        assert (row["onset"], row["apex"], row["offset"], row["n_frames"]) == (
            truth.onset,
            truth.apex,
            truth.offset,
            truth.n_frames,
        )
        assert row["emotion"] == truth.emotion.lower() == row["label"]
        assert row["emotions"] == "+".join(
            w for w in ("positive", "negative", "surprise") if w in truth.emotion.lower().split("+")
        )
        assert row["aus"] == "+".join(map(str, truth.expression.aus)), (
            "the static (k) AU and side marks are not movements"
        )
        assert row["aus_static"] and int(row["aus_static"][2:]) not in truth.expression.aus
        assert row["fps"] == 60.0
    assert data[0].read().shape[0] == data[0].n_frames
    assert set(load("4dme", root=fourdme.root, labels="original", fps="50").metadata["fps"]) == {50.0}
    with pytest.raises(ConfigError, match="fps='fast' must be a number"):
        load("4dme", root=fourdme.root, fps="fast")
    seed4 = load("4dme", root=fourdme.root)
    assert set(seed4.dropped["emotion"]) <= {"surprise+positive", "negative+surprise"} and len(seed4.dropped)


def test_the_aus_scheme_reads_4dme(fourdme):
    data = load("4dme", root=fourdme.root, labels="aus")
    moved = {(t.subject, t.clip): set(t.expression.aus) for t in fourdme.clips}
    for (subject, clip), targets in zip(data.metadata[["subject", "clip"]].itertuples(index=False), data.targets):
        assert {int(c[2:]) for c, on in zip(data.classes, targets) if on} == moved[(subject, clip)] & {
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


def test_the_v1_release_swap_of_rows_144_and_145_is_undone(fourdme, tmp_path):
    """Rows 144 and 145 (0-based after the header) of release v1 carry each other's AU data; filler
    rows (repeats of the first row, skipped) bring two real clips to those places."""
    root = shutil.copytree(fourdme.root, tmp_path / "4DME")
    book = load_workbook(root / SHEET)
    sheet = book.active
    rows = [[c.value for c in r] for r in sheet.iter_rows(min_row=2)]
    header = [c.value for c in sheet[1]]
    first_au = header.index("AUs")
    a, b = rows[1], rows[2]
    swapped_a, swapped_b = a[:first_au] + b[first_au:], b[:first_au] + a[first_au:]
    assert a[first_au] != b[first_au]
    body = [rows[0]] + [rows[0]] * 143 + [swapped_a, swapped_b] + rows[3:]
    sheet.delete_rows(2, sheet.max_row)
    for row in body:
        sheet.append(row)
    book.save(root / SHEET)
    with pytest.warns(DatasetWarning, match="skipped 143 annotation row"):
        data = load("4dme", root=root, labels="original")
    meta = data.metadata.set_index("clip")
    for row in (a, b):
        assert meta.loc[row[1], "action_units"] == row[first_au].split("+", 1)[1], "each clip has its own AUs back"
    renamed = root / "4DME_Labelling_Micro_release v2.xlsx"
    (root / SHEET).rename(renamed)
    with pytest.warns(DatasetWarning):
        later = load("4dme", root=root, labels="original").metadata.set_index("clip")
    assert later.loc[a[1], "action_units"] == b[first_au].split("+", 1)[1], "only the v1 release is swapped back"


@pytest.fixture(scope="module")
def with_4dme(tmp_path_factory, fourdme):
    root = tmp_path_factory.mktemp("cross4d")
    shutil.copytree(fourdme.root, root / "4DME")
    _, fps, emotions, _ = LAYOUTS["casme2"]
    write_dataset(
        "casme2",
        root / "CASME2",
        SynthConfig(n_subjects=3, clips_per_subject=(3, 3), seed=21, fps=fps, emotions=emotions, duration=(0.1, 0.15)),
    )
    return root


def test_cross_holds_4dme_and_leaves_each_dataset_out(with_4dme, tmp_path):
    data = load("cross", root=with_4dme, labels="aus")
    assert set(data.metadata["dataset"]) == {"4dme", "casme2"}
    assert pd.Series(data.groups).str.startswith("4dme/").sum() == len(
        load("4dme", root=with_4dme / "4DME", labels="aus")
    )
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "cross",
            "--root",
            str(with_4dme),
            "--method",
            "au_prevalence",
            "--labels",
            "aus",
            "--protocol",
            "lodo",
            "--out",
            str(tmp_path / "lodo"),
            "--cache",
            str(tmp_path / "cache"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "lodo" / "folds").iterdir()) == ["000_4dme.csv", "001_casme2.csv"]
    assert "| AU | clips with it | all | 4dme | casme2 |" in (tmp_path / "lodo" / "report.md").read_text()
