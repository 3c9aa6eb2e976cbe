import shutil

import pandas as pd
import pytest
from openpyxl import load_workbook

from merkit.datasets import load
from merkit.errors import ConfigError, DatasetError
from merkit.io import frame_number

SHEET = "CASME2-coding-20140508.xlsx"


def test_reader_recovers_every_clip_exactly(small_casme2):
    data = load("casme2", root=small_casme2.root, labels="original")
    meta = data.metadata.set_index(["subject", "clip"])
    assert len(data) == len(small_casme2.clips)
    for truth in small_casme2.clips:
        row = meta.loc[(truth.subject, truth.clip)]
        assert row["emotion"] == truth.emotion and row["label"] == truth.emotion
        assert (row["onset"], row["offset"], row["n_frames"]) == (truth.onset, truth.offset, truth.n_frames)
        assert (pd.isna(row["apex"]) and truth.apex is None) or row["apex"] == truth.apex
        assert row["fps"] == 200.0 and row["dataset"] == "casme2"
    assert data.metadata["apex"].isna().any(), "the sheet should have some '/' apexes"


def test_frames_come_in_numeric_order_across_digit_boundaries(small_casme2):
    data = load("casme2", root=small_casme2.root, labels="seed4")
    crossing = 0
    for clip in data:
        numbers = [frame_number(p) for p in clip.frame_paths]
        assert numbers == list(range(numbers[0], numbers[0] + clip.n_frames))
        crossing += len(str(numbers[0])) != len(str(numbers[-1]))
    assert crossing > 0, "some clip should cross from 2 to 3 digits (img99 -> img100)"
    frames = data[0].read()
    assert frames.shape == (data[0].n_frames, 144, 120, 3) and frames.dtype.name == "uint8"


def test_label_schemes_map_and_count_what_they_drop(small_casme2):
    words = pd.Series([c.emotion for c in small_casme2.clips])
    seed4 = load("casme2", root=small_casme2.root, labels="seed4")
    assert seed4.classes == ("positive", "negative", "surprise", "other") and len(seed4.dropped) == 0
    expected = {
        "happiness": "positive",
        "disgust": "negative",
        "sadness": "negative",
        "fear": "negative",
        "surprise": "surprise",
        "repression": "other",
        "others": "other",
    }
    assert all(expected[e] == label for e, label in zip(seed4.metadata["emotion"], seed4.metadata["label"]))
    megc = load("casme2", root=small_casme2.root, labels="megc3")
    assert len(megc.dropped) == words.isin(["fear", "sadness", "others"]).sum() > 0
    assert set(megc.metadata["label"]) <= {"negative", "positive", "surprise"}
    five = load("casme2", root=small_casme2.root, labels="casme2_5")
    assert len(five.dropped) == words.isin(["fear", "sadness"]).sum()


def test_missing_root_and_spreadsheet(casme2_copy, tmp_path):
    with pytest.raises(DatasetError, match="does not exist.*--root"):
        load("casme2", root=tmp_path / "nowhere")
    (casme2_copy / SHEET).unlink()
    with pytest.raises(DatasetError, match=r"No CASME II coding spreadsheet \(CASME2-coding-\*\.xlsx\) in .*CASME2"):
        load("casme2", root=casme2_copy)


def test_a_renamed_column_is_named_with_the_file(casme2_copy):
    book = load_workbook(casme2_copy / SHEET)
    book.active["D1"] = "Onset"
    book.save(casme2_copy / SHEET)
    with pytest.raises(DatasetError, match=r"CASME2-coding-20140508\.xlsx lacks the column\(s\) 'OnsetFrame'.*'Onset'"):
        load("casme2", root=casme2_copy)


def test_a_clip_folder_without_frames_names_the_folder_and_the_row(casme2_copy):
    book = load_workbook(casme2_copy / SHEET)
    subject, clip = book.active["A3"].value, book.active["B3"].value
    folder = casme2_copy / "CASME2_RAW_selected" / f"sub{subject:02d}" / clip
    for frame in folder.iterdir():
        frame.unlink()
    with pytest.raises(DatasetError, match=rf"row 3 \(sub{subject:02d}/{clip}\): clip folder .*{clip} holds no frames"):
        load("casme2", root=casme2_copy, strict=True)


def test_every_problem_is_reported_at_once(casme2_copy):
    book = load_workbook(casme2_copy / SHEET)
    sheet = book.active
    sheet["D2"] = 99999  # onset after the offset
    sheet["F4"] = "x"  # not a number
    book.save(casme2_copy / SHEET)
    folder = casme2_copy / "CASME2_RAW_selected" / f"sub{sheet['A5'].value:02d}" / sheet["B5"].value
    shutil.rmtree(folder)
    with pytest.raises(DatasetError) as error:
        load("casme2", root=casme2_copy, strict=True)
    assert len(error.value.problems) == 3
    message = str(error.value)
    assert "row 2" in message and "comes before OnsetFrame 99999." in message
    assert "row 4" in message and "OffsetFrame 'x' is not a frame number" in message
    assert "row 5" in message and "no frame folder" in message


def test_unknown_or_unsuitable_label_schemes(small_casme2):
    with pytest.raises(ConfigError, match="Unknown label scheme 'seed5'.*seed4"):
        load("casme2", root=small_casme2.root, labels="seed5")
    with pytest.raises(ConfigError, match="'samm_5' defines no classes for dataset 'casme2'"):
        load("casme2", root=small_casme2.root, labels="samm_5")
    with pytest.raises(ConfigError, match="Unknown dataset 'casme4'"):
        load("casme4", root=small_casme2.root)


def test_cropped_frames_with_reg_prefix(casme2_copy):
    raw = casme2_copy / "CASME2_RAW_selected"
    for frame in list(raw.rglob("*.jpg")):
        target = casme2_copy / "Cropped" / frame.parent.relative_to(raw) / f"reg_{frame.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.rename(target)
    shutil.rmtree(raw)
    data = load("casme2", root=casme2_copy, labels="seed4")
    assert all(p.name.startswith("reg_img") for p in data[0].frame_paths)
    with pytest.raises(DatasetError, match="No frame folder CASME2_RAW_selected"):
        load("casme2", root=casme2_copy, variant="raw")
