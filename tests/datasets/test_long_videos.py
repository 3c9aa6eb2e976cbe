import shutil

import pytest
from openpyxl import load_workbook

from merkit.datasets.long_videos import LONG_DATASETS, load_long_videos
from merkit.errors import DatasetError, DatasetWarning
from merkit.synthetic.long_videos import LONG_LAYOUTS, read_truth, write_long_dataset

FEW = {"blink": 1}


@pytest.fixture(scope="module", params=sorted(LONG_LAYOUTS))
def written(request, tmp_path_factory):
    layout = request.param
    fps = 60.0 if layout == "samm_lv" else None  # 200 fps would only make the test slower
    return write_long_dataset(
        layout,
        tmp_path_factory.mktemp(layout),
        subjects=2,
        videos=2,
        seconds=9,
        size=(96, 128),
        fps=fps,
        micro=2,
        macro=1,
        distractors=FEW,
        seed=3,
    )


def test_every_layout_reads_back_exactly(written):
    videos = load_long_videos(written.layout, written.root)
    truth = read_truth(written.root)
    assert sorted(v.key for v in videos) == sorted(truth) == sorted(written.plans)
    for video in videos:
        plan = truth[video.key]
        assert video.n_frames == plan.n_frames and video.dataset == written.layout
        got = [(i.onset, i.apex, i.offset, i.kind, i.aus) for i in video.intervals]
        assert got == [(e.onset, e.apex, e.offset, e.kind, "+".join(map(str, e.aus))) for e in plan.expressions]
        if written.layout != "samm_lv":  # SAMM-LV's workbook carries no emotion
            assert [i.emotion for i in video.intervals] == [e.emotion for e in plan.expressions]
        first = next(video.frames())
        assert first.shape == (96, 128, 3)
    assert set(LONG_DATASETS) == set(LONG_LAYOUTS)


def test_a_frame_outside_the_video_is_named_with_its_row(written, tmp_path):
    root = shutil.copytree(written.root, tmp_path / "copy")
    book_path = next(p for p in root.glob("*.xlsx") if "MaE" not in p.name)
    book = load_workbook(book_path)
    sheet = book.worksheets[0]
    row = next(r for r in sheet.iter_rows() if isinstance(r[3].value, int) or isinstance(r[2].value, int))
    column = 5 if written.layout == "samm_lv" else 4  # the offset cell
    row[column].value = 99999
    book.save(book_path)
    with pytest.raises(DatasetError, match=r"row \d+: frame 99999 is not among the video's frames"):
        load_long_videos(written.layout, root, strict=True)
    with pytest.warns(
        DatasetWarning, match=r"skipped 1 annotation row.*\n  - .*row \d+: frame 99999 is not among the video's frames"
    ):
        videos = load_long_videos(written.layout, root)
    kept = sum(len(v.intervals) for v in videos)
    assert kept == sum(len(p.expressions) for p in written.plans.values()) - 1, "only the spoilt row is left out"


def test_a_wrong_root_says_what_to_pass(tmp_path):
    with pytest.raises(DatasetError, match="rawpic"):
        load_long_videos("casme2_long", tmp_path)
    with pytest.raises(DatasetError, match="not a folder"):
        load_long_videos("samm_lv", tmp_path / "missing")
