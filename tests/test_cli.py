import numpy as np
from typer.testing import CliRunner

from merkit.cli import app

runner = CliRunner()


def test_list_shows_registered_methods_and_schemes():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for name in ("lbptop_svm", "casme2", "seed4", "megc3", "loso", "subject_kfold"):
        assert name in result.output


def test_bad_input_gets_one_message_and_a_nonzero_exit(small_casme2, tmp_path):
    cases = [
        (["--dataset", "casme2", "--root", str(tmp_path / "missing"), "--method", "lbptop_svm"], "does not exist"),
        (["--dataset", "casme2", "--root", str(small_casme2.root), "--method", "lbp"], "Unknown method 'lbp'"),
        (
            ["--dataset", "casme2", "--root", str(small_casme2.root), "--method", "lbptop_svm", "--labels", "x"],
            "Unknown label scheme",
        ),
        (
            ["--dataset", "casme2", "--root", str(small_casme2.root), "--method", "lbptop_svm", "--set", "Q=1"],
            "has no parameter Q",
        ),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["evaluate", *args, "--out", str(tmp_path / "run")])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def test_evaluate_writes_a_report(small_casme2, cache_dir, tmp_path):
    out = tmp_path / "run"
    args = [
        "evaluate",
        "--dataset",
        "casme2",
        "--root",
        str(small_casme2.root),
        "--method",
        "lbptop_svm",
        "--labels",
        "seed4",
        "--out",
        str(out),
        "--cache",
        str(cache_dir),
        "--set",
        "C=2",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "UF1" in result.output and (out / "report.md").is_file()
    assert '"C": 2.0' in (out / "config.json").read_text()


def test_synth_writes_the_casme2_layout(tmp_path):
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "s"), "--subjects", "2", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "CASME2-coding-20140508.xlsx").is_file()
    assert len(list((tmp_path / "s" / "CASME2_RAW_selected").iterdir())) == 2


def test_datasets_check_lists_every_problem_and_fails(casme2_copy):
    from openpyxl import load_workbook

    ok = runner.invoke(app, ["datasets", "check", "--dataset", "casme2", "--root", str(casme2_copy)])
    assert ok.exit_code == 0 and "No problem found" in ok.output and "all" in ok.output
    book = load_workbook(casme2_copy / "CASME2-coding-20140508.xlsx")
    book.active["D2"] = 123456
    book.active["F3"] = "?"
    book.save(casme2_copy / "CASME2-coding-20140508.xlsx")
    frame = next((casme2_copy / "CASME2_RAW_selected").rglob("*.jpg"))
    frame.write_bytes(b"broken")
    (casme2_copy / "CASME2_RAW_selected" / "sub01" / "EP99_99").mkdir()
    bad = runner.invoke(app, ["datasets", "check", "--dataset", "casme2", "--root", str(casme2_copy)])
    assert bad.exit_code == 1
    assert (
        "row 2" in bad.output and "row 3" in bad.output and f"Cannot read frame {frame}" in bad.output.replace("\n", "")
    )
    assert "EP99_99" in bad.output and "3 problems" in bad.output


def test_magnify_writes_original_and_magnified_side_by_side(small_casme2, tmp_path):
    from merkit.io.video import read_video

    folder = small_casme2.root / "CASME2_RAW_selected" / small_casme2.clips[0].subject / small_casme2.clips[0].clip
    result = runner.invoke(app, ["magnify", str(folder), str(tmp_path / "out.mkv"), "--alpha", "10", "--fps", "200"])
    assert result.exit_code == 0, result.output
    video = read_video(tmp_path / "out.mkv")
    assert video.shape == (small_casme2.clips[0].n_frames, 144, 240, 3)
    assert np.array_equal(video[0, :, :120], video[0, :, 120:]), "frame 0 is returned unchanged"
    assert not np.array_equal(video[-5, :, :120], video[-5, :, 120:])
    missing = runner.invoke(app, ["magnify", str(tmp_path / "nothing"), str(tmp_path / "x.mkv")])
    assert missing.exit_code == 2 and "neither a video file nor a folder of frames" in missing.output
