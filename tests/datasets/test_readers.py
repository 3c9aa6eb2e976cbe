"""Every dataset's reader recovers exactly what the generator wrote in that dataset's layout."""

import shutil

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from merkit.datasets import load
from merkit.errors import DatasetError, DatasetWarning
from merkit.io import frame_number
from merkit.synthetic import LAYOUTS

NO_APEX = {"smic_hs", "smic_vis", "smic_nir"}  # SMIC has no annotation: the apex is unknown


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_reader_recovers_every_clip_exactly(layouts, layout):
    written = layouts[layout]
    data = load(layout, root=written.root, labels="original")
    assert len(data) == len(written.clips) and not data.problems and not data.orphans
    meta = data.metadata.set_index(["subject", "clip"])
    for truth in written.clips:
        row = meta.loc[(truth.subject, truth.clip)]
        assert row["emotion"] == truth.emotion.lower() == row["label"]
        assert (row["onset"], row["offset"], row["n_frames"]) == (truth.onset, truth.offset, truth.n_frames)
        expected_apex = None if layout in NO_APEX else truth.apex
        assert (pd.isna(row["apex"]) and expected_apex is None) or row["apex"] == expected_apex
        assert row["fps"] == truth.fps, "the layout's frame rate (DFME: the clip's own)"
    for clip in data:
        numbers = [frame_number(p) for p in clip.frame_paths]
        assert numbers == list(range(numbers[0], numbers[0] + clip.n_frames)), "numeric, consecutive order"
    assert data[0].read().shape[0] == data[0].n_frames


def test_casme_reads_both_sections_and_both_apex_columns(layouts):
    written = layouts["casme"]
    data = load("casme", root=written.root, labels="original")
    assert set(data.metadata["section"]) == {"A", "B"}
    sizes = {s: data[int(np.flatnonzero(data.metadata["section"] == s)[0])].read().shape[1:3] for s in "AB"}
    assert sizes["A"] != sizes["B"], "sections have different resolutions"
    sheet = pd.read_excel(written.root / "CASME_A" / "CASME_A_SectionA.xls", dtype=object, engine="xlrd")
    sheet = pd.concat([sheet, pd.read_excel(written.root / "CASME_B" / "CASME_B_SectionB.xls", dtype=object)])
    assert (sheet["ApexF1"].isna() & sheet["ApexF2"].notna()).any(), "the quirk is exercised"
    assert (sheet["ApexF1"].isna() & sheet["ApexF2"].isna()).any()


def test_smic_subjects_in_numeric_order_and_labels_from_folders(layouts):
    data = load("smic_hs", root=layouts["smic_hs"].root)
    subjects = list(dict.fromkeys(data.metadata["subject"]))
    assert subjects == sorted(subjects, key=lambda s: int(s[1:])) and any(len(s) == 3 for s in subjects)
    assert data.classes == ("positive", "negative", "surprise"), "seed4 without the class SMIC lacks"
    assert data[0].frame_paths[0].suffix == ".bmp"
    assert data.metadata["apex"].isna().all()


def test_casme3_clips_are_cut_from_recordings_with_repeating_names(layouts):
    data = load("casme3", root=layouts["casme3"].root, labels="original")
    filenames = data.metadata["clip"].str.rsplit("_", n=1).str[0]
    assert data.metadata.assign(f=filenames).duplicated(["subject", "f"]).any(), "a Filename repeats within a subject"
    assert (data.metadata["onset"] == 0).all()
    assert not data.metadata.duplicated(["subject", "clip"]).any()


def test_samm_header_below_the_preamble_and_three_digit_subjects(layouts):
    root = layouts["samm"].root
    raw = pd.read_excel(root / "SAMM_Micro_FACS_Codes_v2.xlsx", header=None, dtype=object)
    assert raw.iloc[0, 0] != "Subject"
    data = load("samm", root=root, labels="original")
    assert all(len(s) == 3 and s.isdigit() for s in data.metadata["subject"])
    assert -1 in set(raw.iloc[:, 4]), "missing apexes are written as -1"
    assert data[0].read().ndim == 4


def sheet_row_of(path, clip, column=2):
    """The 1-based spreadsheet row holding ``clip`` in ``column``, as a spreadsheet program shows it."""
    sheet = load_workbook(path).active
    return next(r for r in range(1, sheet.max_row + 1) if sheet.cell(r, column).value == clip)


@pytest.mark.parametrize(
    "layout,sheet,onset_column",
    [
        ("samm", "SAMM_Micro_FACS_Codes_v2.xlsx", 4),
        ("casme3", "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", 3),
        ("mmew", "MMEW_Micro_Exp.xlsx", 3),
    ],
)
def test_a_bad_row_is_named_by_file_and_spreadsheet_row(layouts, tmp_path, layout, sheet, onset_column):
    root = shutil.copytree(layouts[layout].root, tmp_path / layout)
    book = load_workbook(root / sheet)
    clip = layouts[layout].clips[1]
    filename = clip.clip.rsplit("_", 1)[0] if layout == "casme3" else clip.clip
    row = next(
        r
        for r in range(1, book.active.max_row + 1)
        if book.active.cell(r, 2).value == filename
        and (layout != "casme3" or str(book.active.cell(r, 3).value) == clip.clip.rsplit("_", 1)[1])
    )
    book.active.cell(row, onset_column).value = 10**7
    book.save(root / sheet)
    with pytest.raises(
        DatasetError,
        match=rf"{sheet.replace('(', '.').replace(')', '.')} row {row} .*Offset.* comes before .*Onset.* 10000000\.",
    ):
        load(layout, root=root, strict=True)
    with pytest.warns(DatasetWarning, match=rf"skipped 1 annotation row.*\n  - .*row {row} "):
        partial = load(layout, root=root)
    assert len(partial) + len(partial.dropped) == len(layouts[layout].clips) - 1 and len(partial.problems) == 1
    assert partial.skipped[["row", "subject"]].values.tolist() == [[row, clip.subject]]


def test_smic_unknown_emotion_folder_and_empty_clip(layouts, tmp_path):
    root = shutil.copytree(layouts["smic_hs"].root, tmp_path / "smic")
    first = next((root / "SMIC_all_raw" / "HS").glob("s*/micro/*/*"))
    for frame in first.iterdir():
        frame.unlink()
    (first.parent.parent / "angry").mkdir()
    with pytest.raises(DatasetError) as error:
        load("smic_hs", root=root, strict=True)
    assert f"{first} holds no frames" in str(error.value)
    assert "angry: unknown emotion folder; SMIC's are negative, positive, surprise" in str(error.value)


def test_missing_frame_folders_name_what_to_pass(tmp_path):
    for name, expected in [
        ("casme", "No CASME_A/ or CASME_B/"),
        ("smic_hs", "No SMIC HS/ folder"),
        ("samm", "No SAMM FACS code sheet"),
        ("casme3", "No data/part_A_split/ME_A"),
        ("mmew", "No Micro_Expression/"),
        ("megc2019", "No MEGC 2019 ground-truth file"),
    ]:
        with pytest.raises(DatasetError, match=expected):
            load(name, root=tmp_path)


def test_orphan_folders_are_listed(layouts, tmp_path):
    root = shutil.copytree(layouts["mmew"].root, tmp_path / "mmew")
    (root / "Micro_Expression" / "others" / "S09_99").mkdir(parents=True)
    assert load("mmew", root=root).orphans == [str(root / "Micro_Expression" / "others" / "S09_99")]


def test_a_bad_casme_xls_row_is_named_by_file_and_row(layouts, tmp_path):
    from merkit.synthetic.layouts import write_xls

    root = shutil.copytree(layouts["casme"].root, tmp_path / "casme")
    sheet = root / "CASME_A" / "CASME_A_SectionA.xls"
    table = pd.read_excel(sheet, dtype=object, header=None, engine="xlrd")
    table.iloc[2, 5] = "end"  # OffsetF of spreadsheet row 3
    rows = [[None if pd.isna(v) else v for v in row] for row in table.values.tolist()]
    write_xls(sheet, rows[0], rows[1:])
    with pytest.raises(
        DatasetError, match=r"CASME_A_SectionA\.xls row 3 \(sub\d\d/EP\d+_\d\): OffsetF 'end' is not a frame number"
    ):
        load("casme", root=root, strict=True)
