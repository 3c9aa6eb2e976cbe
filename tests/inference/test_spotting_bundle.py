import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.datasets.intervals import Interval
from merkit.inference import load_model
from merkit.inference.bundle import SPOTTER_FILE, BundleError, load_spotter, save_spotter
from merkit.io.video import write_video
from merkit.spotting import TrainingVideo, create_spotter
from merkit.synthetic.long_videos import plan_long_video, render_long_video

FPS = 30.0


def faces(n: int, moves: list[tuple[int, int]], seed: int = 0) -> np.ndarray:
    """(n, 128, 128) uint8 textured faces whose mouth band slides down a pixel a frame during each (start, stop)."""
    base = cv2.GaussianBlur(np.random.default_rng(seed).integers(0, 255, (128, 128)).astype(np.uint8), (0, 0), 2)
    out, shift = np.repeat(base[None], n, axis=0), np.zeros(n, int)
    for start, stop in moves:
        shift[start:stop] = np.arange(1, stop - start + 1) % 4
    for t in range(n):
        out[t, 90:120] = np.roll(base, shift[t], axis=0)[90:120]
    return out


@pytest.fixture(scope="module")
def fitted():
    truth = [Interval(30, 37, "micro"), Interval(60, 85, "macro")]
    recording = faces(120, [(30, 38), (60, 86)], seed=1)
    video = TrainingVideo("train", "s1", FPS, truth, lambda s: s.signals(list(recording), FPS))
    return create_spotter("softnet", epochs=2, lr=0.02).fit([video])


def test_a_spotting_bundle_round_trips_and_spots_as_the_fitted_spotter(fitted, tmp_path):
    bundle = save_spotter(fitted, tmp_path / "spotter", training={"dataset": "synthetic", "videos": 1, "subjects": 1})
    assert sorted(p.name for p in bundle.iterdir()) == ["README.md", "bundle.json", SPOTTER_FILE]
    assert json.loads((bundle / "bundle.json").read_text())["task"] == "spotting"
    assert "## Limits" in (bundle / "README.md").read_text()
    loaded = load_spotter(bundle)
    assert loaded.k_ == fitted.k_ and loaded.p == fitted.p and loaded.loss_ == fitted.loss_
    recording = faces(150, [(20, 28), (70, 100), (120, 128)], seed=2)
    mine, theirs = fitted.spot(recording, FPS), loaded.spot(recording, FPS)
    for kind in ("micro", "macro"):
        np.testing.assert_array_equal(mine.scores[kind], theirs.scores[kind])
    assert mine.intervals == theirs.intervals and mine.intervals  # the same intervals, and some
    with pytest.raises(BundleError, match="already holds a model bundle"):
        save_spotter(fitted, bundle)


def test_a_spotting_bundle_is_checked(fitted, tmp_path):
    bundle = save_spotter(fitted, tmp_path / "spotter")
    with pytest.raises(BundleError, match="is a spotting model, not a classification model"):
        load_model(bundle, task="classification")
    data = bytearray((bundle / SPOTTER_FILE).read_bytes())
    data[-1] ^= 1
    (bundle / SPOTTER_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match="altered since the bundle was written"):
        load_spotter(bundle)
    with pytest.raises(BundleError, match="not a model bundle"):
        load_spotter(tmp_path)
    with pytest.raises(Exception, match="fit it first"):
        save_spotter(create_spotter("softnet"), tmp_path / "unfitted")


def test_analyze_uses_a_spotting_bundle(fitted, tmp_path):
    plan = plan_long_video(6, FPS, size=(180, 240), micro=1, macro=0, distractors={}, seed=3)
    video = tmp_path / "session.mkv"
    write_video(video, np.stack(list(render_long_video(plan))), FPS)
    bundle = save_spotter(fitted, tmp_path / "spotter")
    result = CliRunner().invoke(
        app, ["analyze", str(video), "--out", str(tmp_path / "out"), "--spotter-model", str(bundle)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "report.html").is_file()
    refused = CliRunner().invoke(
        app, ["analyze", str(video), "--out", str(tmp_path / "o2"), "--spotter-model", str(bundle), "--set", "p=0.3"]
    )
    assert refused.exit_code == 2 and "keeps those it was trained with" in refused.output


def test_train_task_spotting_writes_a_bundle_of_the_long_videos(tmp_path):
    from merkit.synthetic.long_videos import write_long_dataset

    data = write_long_dataset(
        "casme2_long",
        tmp_path / "c2",
        subjects=2,
        videos=1,
        seconds=8,
        size=(120, 160),
        micro=1,
        macro=1,
        distractors={},
        seed=4,
    )
    out = tmp_path / "spotter"
    args = ["train", "--task", "spotting", "--dataset", "casme2_long", "--root", str(data.root), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--set", "epochs=1"])
    assert result.exit_code == 0, result.output
    description = json.loads((out / "bundle.json").read_text())
    assert description["training"] == {"dataset": "casme2_long", "videos": 2, "subjects": 2, "micro": 2, "macro": 2}
    assert load_spotter(out).fitted
    hand = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "x"), "--spotter", "roi_flow"])
    assert hand.exit_code == 2 and "needs no training" in hand.output
