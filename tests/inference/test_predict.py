import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.datasets import load
from merkit.inference import as_clip, load_model
from merkit.io.video import write_video
from merkit.preprocess.apex import fill_apex
from merkit.preprocess.cache import Cache

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(casme2_pair, cache_dir, tmp_path_factory):
    """``merkit train --evaluate loso`` on the first set; the second set's clips, never seen."""
    train_set, new_set = casme2_pair
    out = tmp_path_factory.mktemp("bundle") / "model"
    result = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "casme2",
            "--root",
            str(train_set.root),
            "--labels",
            "seed4",
            "--method",
            "apex_flow_svm",
            "--apex",
            "motion",
            "--out",
            str(out),
            "--evaluate",
            "loso",
            "--cache",
            str(cache_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    return out, fill_apex(load("casme2", root=new_set.root, labels="seed4"), "motion")


def _positions(clip, start=0):
    return ["--onset", str(clip.onset - start), "--apex", str(clip.apex - start), "--offset", str(clip.offset - start)]


def test_predict_on_new_subjects_from_frame_folders_and_mp4(trained, cache_dir, tmp_path):
    bundle, new = trained
    model = load_model(bundle)
    card = (bundle / "README.md").read_text()
    assert "LOSO on the same data" in card and "Confusion matrix" in card
    loso_accuracy = float(card.split("accuracy ")[1].split(",")[0])
    rows, in_memory = [], []
    for i, clip in enumerate(new):
        folder = tmp_path / f"out{i}.csv"
        result = runner.invoke(
            app,
            [
                "predict",
                "--model",
                str(bundle),
                str(clip.frame_paths[0].parent),
                *_positions(clip),
                "--out",
                str(folder),
            ],
        )
        assert result.exit_code == 0, result.output
        rows.append(pd.read_csv(folder))
        in_memory.append(model.method.predict_proba(new.subset([i]), cache=Cache(cache_dir))[0])
    table = pd.concat(rows, ignore_index=True)
    columns = [f"p_{c}" for c in model.classes]
    assert list(table.columns) == ["input", "prediction", *columns]
    proba = table[columns].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert np.array_equal(proba, np.array(in_memory)), "a frame folder goes through the training code exactly"
    accuracy = float(np.mean(table["prediction"].to_numpy() == new.metadata["label"].to_numpy()))
    # chance is 0.25 (four classes); the LOSO figure says what to expect of new subjects
    assert accuracy > 0.5 and abs(accuracy - loso_accuracy) < 0.3, (accuracy, loso_accuracy)

    # The same clips as videos. Lossless FFV1 (.mkv) gives the same probabilities exactly. H.264
    # (.mp4, CRF 10) converts to YUV 4:2:0 and quantises: on these 22 clips the probabilities moved
    # by 0.073 on average (up to 0.74 on a clip whose sub-pixel flow the codec changed) and 82% of
    # the predicted classes stayed (68% at x264's default CRF 23; measured with this test's data).
    lossless, lossy = [], []
    for i, clip in enumerate(new):
        frames = clip.read()[clip.onset : clip.offset + 1]
        write_video(tmp_path / f"clip{i}.mkv", frames, clip.fps)
        write_video(tmp_path / f"clip{i}.mp4", frames, clip.fps, crf=10)
        lossless.append(model.predict_proba(tmp_path / f"clip{i}.mkv", apex=clip.apex - clip.onset)[0])
        lossy.append(model.predict_proba(tmp_path / f"clip{i}.mp4", apex=clip.apex - clip.onset)[0])
    assert np.array_equal(np.array(lossless), np.array(in_memory))
    lossy, in_memory = np.array(lossy), np.array(in_memory)
    assert np.abs(lossy - in_memory).mean() < 0.12
    assert np.mean(lossy.argmax(1) == in_memory.argmax(1)) >= 0.75


def test_positions_in_frames_or_seconds(small_casme2):
    folder = small_casme2.root / "CASME2_RAW_selected" / small_casme2.clips[0].subject / small_casme2.clips[0].clip
    clip = as_clip(folder, onset="2", apex="0.05s", offset=12.0 / 200, fps=200)
    assert (clip.onset, clip.apex, clip.offset) == (2, 10, 12)
    whole = as_clip(folder)
    assert (whole.onset, whole.apex, whole.offset) == (0, None, whole.n_frames - 1)
    frames = whole.read()
    array = as_clip(frames, offset=5)
    assert array.kind == "array" and np.array_equal(array.read(), frames) and array.offset == 5


@pytest.mark.parametrize(
    "args,message",
    [
        (["--onset", "20", "--offset", "10"], "comes after the offset"),
        (["--onset", "0.1s"], "frame rate is unknown; pass --fps"),
        (["--onset", "soon"], "neither a frame"),
        (["--offset", "5000"], "must lie within them"),
        (["--onset", "4", "--offset", "4"], "needs at least 2"),
        (["--fps", "0"], "--fps must be positive"),
        (["--out", "table.txt"], "name the output file with .csv"),
    ],
)
def test_bad_positions_and_options_are_named(trained, args, message, tmp_path, monkeypatch):
    bundle, new = trained
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["predict", "--model", str(bundle), str(new[0].frame_paths[0].parent), *args])
    assert result.exit_code == 2 and message in result.output.replace("\n", "") and "Traceback" not in result.output


def test_inputs_that_cannot_be_predicted(trained, tmp_path):
    bundle, new = trained
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    for path, message in [
        (tmp_path / "empty", "holds no frames"),
        (tmp_path / "broken.mp4", "Cannot read video"),
        (tmp_path / "nothing", "neither a video file nor a folder of frames"),
    ]:
        result = runner.invoke(app, ["predict", "--model", str(bundle), str(path)])
        assert result.exit_code == 2 and message in result.output.replace("\n", ""), result.output
        assert str(path.name) in result.output and "Traceback" not in result.output


def test_no_face_where_the_method_aligns_faces(small_casme2, cache_dir, tmp_path):
    from merkit.inference import train

    data = load("casme2", root=small_casme2.root, labels="seed4")
    bundle = train(
        data.subset(range(8)),
        "mer_rcnn",
        out=tmp_path / "mer",
        params={"maps": 4, "max_epochs": 1, "jitter": False},
        cache=cache_dir,
    )
    blank = np.full((12, 96, 96, 3), 128, dtype=np.uint8)
    write_video(tmp_path / "wall.mkv", blank, 30)
    result = runner.invoke(app, ["predict", "--model", str(bundle), str(tmp_path / "wall.mkv")])
    assert result.exit_code == 2 and "No face found" in result.output and "wall.mkv" in result.output
