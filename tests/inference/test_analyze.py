import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.datasets import load
from merkit.inference import load_model, train
from merkit.inference.analyze import analyze
from merkit.io.video import count_video_frames, write_video
from merkit.preprocess.apex import fill_apex
from merkit.synthetic.long_videos import plan_long_video, render_long_video

runner = CliRunner()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A 12 s, 320 x 240, 30 fps synthetic recording (lossless) and its plan."""
    plan = plan_long_video(12, 30.0, size=(240, 320), micro=2, macro=1, distractors={"blink": 1}, seed=21)
    path = tmp_path_factory.mktemp("video") / "session.mkv"
    write_video(path, np.stack(list(render_long_video(plan))), 30.0)
    return path, plan


@pytest.fixture(scope="module")
def analysed(recording, tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis") / "out"
    return out, analyze(recording[0], out)


def test_analyze_writes_every_output(recording, analysed):
    path, plan = recording
    out, summary = analysed
    frames = pd.read_csv(out / "frames.csv", keep_default_na=False)
    assert list(frames.columns) == ["frame", "time_s", "face_found", "score", "flags"]
    assert len(frames) == plan.n_frames == summary["frames"] and frames["face_found"].all()
    np.testing.assert_allclose(
        frames["time_s"], np.arange(plan.n_frames) / 30.0, atol=1e-3
    )  # its timestamps: Matroska keeps ms
    intervals = pd.read_csv(out / "intervals.csv")
    assert list(intervals.columns) == [
        "onset_frame",
        "apex_frame",
        "offset_frame",
        "onset_s",
        "apex_s",
        "offset_s",
        "kind",
        "score",
    ]
    assert json.loads((out / "intervals.json").read_text()) == summary["intervals"] and len(intervals) >= 1
    assert (intervals["onset_frame"] <= intervals["apex_frame"]).all() and (
        intervals["apex_frame"] <= intervals["offset_frame"]
    ).all()
    truth = [(e.onset, e.offset) for e in plan.expressions]
    hits = [any(a <= (r.onset_frame + r.offset_frame) / 2 <= b for a, b in truth) for r in intervals.itertuples()]
    assert sum(hits) >= 2, (intervals, truth)  # measured: 3 of the 3 expressions, and the blink
    assert count_video_frames(out / "annotated.mp4") == plan.n_frames
    assert "<svg" in (out / "report.html").read_text() and "http" not in (out / "report.html").read_text().replace(
        "http://www.w3.org", ""
    )


def test_an_interrupted_analysis_resumes_to_the_same_result(recording, analysed, tmp_path):
    out = tmp_path / "again"
    assert analyze(recording[0], out, limit=150, annotate=False) == {"frames": 150, "complete": False}
    assert not (out / "frames.csv").exists()
    analyze(recording[0], out, annotate=False)
    for name in ("frames.csv", "intervals.csv"):
        assert (out / name).read_text() == (analysed[0] / name).read_text()


def test_analyze_with_a_bundle_recognises_each_interval(recording, small_casme2, cache_dir, tmp_path):
    data = fill_apex(load("casme2", root=small_casme2.root, labels="seed4"), "motion")
    bundle = train(data, "apex_flow_svm", out=tmp_path / "model", cache=cache_dir)
    result = runner.invoke(app, ["analyze", str(recording[0]), "--model", str(bundle), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    classes = load_model(bundle).classes
    intervals = pd.read_csv(tmp_path / "out" / "intervals.csv", keep_default_na=False)
    assert {"prediction", *(f"p_{c}" for c in classes)} <= set(intervals.columns)
    assert set(intervals["prediction"]) <= set(classes) and len(intervals) >= 1
    np.testing.assert_allclose(intervals[[f"p_{c}" for c in classes]].sum(axis=1), 1.0, atol=1e-3)
    report = (tmp_path / "out" / "report.html").read_text()
    assert all(p in report for p in intervals["prediction"])
    # each interval's row is the bundle's own answer for that interval's faces, apex and rate (not any classifier's)
    from merkit.datasets.intervals import Interval
    from merkit.preprocess.track_cache import TrackCache, interval_faces, open_source

    model = load_model(bundle)
    spans = [Interval(r.onset_frame, r.offset_frame, r.kind, r.score, r.apex_frame) for r in intervals.itertuples()]
    answers = {
        i: model.classify(faces, onset=0, apex=apex, offset=len(faces) - 1, fps=rate)
        for i, faces, apex, rate in interval_faces(
            open_source(recording[0]), TrackCache(tmp_path / "out" / "cache"), spans
        )
    }
    assert sorted(answers) == list(range(len(intervals)))
    for i, row in intervals.iterrows():
        [label], [p] = answers[i]
        assert row["prediction"] == label
        np.testing.assert_allclose(row[[f"p_{c}" for c in classes]].to_numpy(float), p, atol=5e-5)
    # and it is right where it can be: a spotted interval over a planned expression gets that expression's class
    from merkit.datasets.labels import get_scheme

    scheme, plan = get_scheme("seed4"), recording[1]
    truth = {
        r.Index: scheme.map("casme2", e.emotion)
        for r in intervals.itertuples()
        for e in plan.expressions
        if e.onset <= r.apex_frame <= e.offset
    }
    assert truth and all(intervals["prediction"][i] == label for i, label in truth.items()), (truth, intervals)
    # live recognises each interval it decides at once, with the same bundle steps: the same classes
    from merkit.inference.live import live

    rows = live(recording[0], tmp_path / "live", model=model, log=lambda _: None)["intervals"]
    same = {(r["onset_frame"], r["offset_frame"]): r for r in rows}
    pairs = [
        (same[(a.onset_frame, a.offset_frame)], a)
        for a in intervals.itertuples()
        if (a.onset_frame, a.offset_frame) in same
    ]
    assert pairs and all(row["prediction"] == a.prediction for row, a in pairs), (rows, intervals)
    for row, a in pairs:  # live's faces are 128-pixel crops enlarged, analyze's are cut at 256: measured within 0.005
        np.testing.assert_allclose([row[f"p_{c}"] for c in classes], [getattr(a, f"p_{c}") for c in classes], atol=0.02)


def test_a_video_without_a_face_or_truncated_is_refused_with_exit_2(recording, tmp_path):
    blank = tmp_path / "wall.mkv"
    write_video(blank, np.full((20, 120, 160, 3), 90, np.uint8), 30.0)
    result = runner.invoke(app, ["analyze", str(blank), "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and "No face was found in any of the 20 frames" in result.output
    cut = tmp_path / "cut.mkv"
    data = recording[0].read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    result = runner.invoke(app, ["analyze", str(cut), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "cut.mkv" in result.output, result.output
    result = runner.invoke(app, ["analyze", str(recording[0]), "--set", "z=many", "--out", str(tmp_path / "d")])
    assert result.exit_code == 2 and "z='many'" in result.output and not (tmp_path / "d").exists()
    garbage = tmp_path / "notes.mp4"
    garbage.write_text("not a video")
    result = runner.invoke(app, ["analyze", str(garbage), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "Cannot read video" in result.output


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it")
def test_the_report_shows_the_timeline_in_a_real_browser(analysed, tmp_path, headless_chromium):
    from merkit.inference.report import MARGIN, SCORE_COLOUR, WIDTH

    out, summary = analysed
    shot = tmp_path / "shot.png"
    browser = headless_chromium(
        tmp_path / "profile",
        "--window-size=1100,900",
        "--hide-scrollbars",
        f"--screenshot={shot}",
        (out / "report.html").as_uri(),
    )
    assert browser.returncode == 0, browser.stderr
    import cv2

    image = cv2.cvtColor(cv2.imread(str(shot)), cv2.COLOR_BGR2RGB).astype(int)
    colour = np.array([int(SCORE_COLOUR[i : i + 2], 16) for i in (1, 3, 5)])
    line = np.abs(image - colour).sum(axis=2) < 40
    columns = np.flatnonzero(line.any(axis=0))
    assert columns.size > 0.8 * (WIDTH - 2 * MARGIN), "the score line spans the timeline"
    orange = np.abs(image - np.array([255, 209, 153])).sum(axis=2) < 60  # a micro band, 35% orange on white
    assert sum(r["kind"] == "micro" for r in summary["intervals"]) >= 1, "the recording's micro-expressions are spotted"
    assert orange.sum() > 200, "each micro interval is drawn as an orange band"


def test_a_frame_folder_needs_its_frame_rate(tmp_path):
    import cv2

    plan = plan_long_video(4, 30.0, size=(240, 320), micro=1, macro=0, distractors={}, seed=3)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(render_long_video(plan)):
        cv2.imwrite(str(folder / f"img{t + 1}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    result = runner.invoke(app, ["analyze", str(folder), "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and "pass --fps" in result.output
    result = runner.invoke(app, ["analyze", str(folder), "--fps", "30", "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    frames = pd.read_csv(tmp_path / "b" / "frames.csv")
    assert (
        len(frames) == plan.n_frames
        and frames["face_found"].all()
        and frames["time_s"].iloc[-1] == pytest.approx(119 / 30, abs=1e-4)
    )


def test_a_recording_of_a_second_or_a_frame_is_analysed_with_a_note(tmp_path):
    plan = plan_long_video(2, 30.0, size=(240, 320), micro=0, macro=0, distractors={}, seed=3)
    frames = np.stack(list(render_long_video(plan)))[:30]
    for name, clip in [("second", frames), ("frame", frames[:1])]:
        write_video(tmp_path / f"{name}.mkv", clip, 30.0)
        result = runner.invoke(app, ["analyze", str(tmp_path / f"{name}.mkv"), "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        note = f"The recording has {len(clip)} frame(s)"
        assert note in result.output.replace("\n", " ") and "needs at least 31" in result.output.replace("\n", " ")
        assert note in (tmp_path / name / "report.html").read_text()
        assert pd.read_csv(tmp_path / name / "intervals.csv").empty
        assert len(pd.read_csv(tmp_path / name / "frames.csv")) == len(clip)
