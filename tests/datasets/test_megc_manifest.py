import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.datasets import load
from merkit.errors import ConfigError, DatasetError
from merkit.evaluation import evaluate
from merkit.io.video import write_video
from merkit.synthetic.layouts import MEGC_WORDS


def test_composite_reads_the_listed_clips_with_their_classes(megc):
    root, written = megc
    data = load("megc2019", root=root)
    expected = {}
    for layout, dataset in written.items():
        for truth in dataset.clips:
            if (word := MEGC_WORDS[layout].get(truth.emotion.lower())) is not None:
                expected[(layout, truth.subject, truth.clip)] = word
    got = {
        (d, s, c): label
        for d, s, c, label in data.metadata[["dataset", "subject", "clip", "label"]].itertuples(index=False)
    }
    assert got == expected
    assert data.classes == ("negative", "positive", "surprise")
    assert {g.split("/")[0] for g in data.groups} == {"smic_hs", "casme2", "samm"}
    csv = pd.read_csv(root / "combined_3class_gt.csv", header=None)
    assert csv[1].astype(str).str.startswith("s0").any(), "SMIC subjects written as s01"


def test_composite_problems_name_the_csv_row(megc, tmp_path):
    root = shutil.copytree(megc[0], tmp_path / "megc")
    lines = (root / "combined_3class_gt.csv").read_text().splitlines()
    lines[2] = "casme2,01,EP99_99,0"
    lines[4] = lines[4].rsplit(",", 1)[0] + ",7"
    (root / "combined_3class_gt.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as error:
        load("megc2019", root=root, strict=True)
    assert "combined_3class_gt.csv row 3: no usable clip casme2/sub01/EP99_99" in str(error.value)
    assert "combined_3class_gt.csv row 5: class '7' is none of 0, 1, 2" in str(error.value)


@pytest.mark.slow
def test_megc_loso_reports_per_dataset_figures_beside_the_composite(megc, cache_dir, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "megc2019",
            "--root",
            str(megc[0]),
            "--method",
            "lbptop_svm",
            "--out",
            str(out),
            "--cache",
            str(cache_dir),
            "--jobs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("composite", "smic_hs", "casme2", "samm"):
        assert name in result.output
    report = (out / "report.md").read_text()
    assert "## Per dataset" in report and "| samm |" in report
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["per_dataset"]) == {"smic_hs", "casme2", "samm"}
    assert len(metrics["per_fold"]) == len({g for g in load("megc2019", root=megc[0]).groups})


def write_manifest(folder, rows, columns):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=columns).to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def test_manifest_of_frames_videos_and_flow_images(small_casme2, tmp_path):
    data = load("casme2", root=small_casme2.root, labels="original")
    clip = data[0]
    folder = tmp_path / "pre"
    shutil.copytree(clip.source, folder / "aligned" / "a")
    frames = clip.read()
    write_video(folder / "b.mkv", frames, 200)
    u, v, s = (np.full((20, 24), k, np.uint8) for k in (10, 120, 250))
    cv2.imwrite(str(folder / "c.png"), np.dstack([u, v, s]))  # OpenCV writes B, G, R = u, v, strain
    path = write_manifest(
        folder,
        [
            ["p1", "happy", "aligned/a", "", "", 3, 200],
            ["p2", "sad", "", "b.mkv", "", None, None],
            ["p3", "happy", "", "", "c.png", None, None],
        ],
        ["subject", "label", "frames_dir", "video", "flow_image", "apex", "fps"],
    )
    manifest = load("manifest", root=path, flow_channels="svu")
    assert list(manifest.metadata["kind"]) == ["frames", "video", "flow_image"]
    assert manifest.classes == ("happy", "sad")
    assert manifest[0].n_frames == clip.n_frames and manifest[0].apex == 3 and manifest[0].fps == 200
    assert np.array_equal(manifest[1].read(), frames) and manifest[1].n_frames == len(frames)
    flow = manifest[2].read_flow()
    np.testing.assert_allclose(flow[0, 0], np.array([10, 120, 250]) / 255, atol=1e-6)
    with pytest.raises(DatasetError, match="optical-flow image"):
        manifest[2].read()


def test_manifest_paths_may_not_leave_its_folder_and_columns_are_named(tmp_path):
    (tmp_path / "outside.png").write_bytes(b"")
    path = write_manifest(tmp_path / "m", [["p1", "x", "../outside.png"]], ["subject", "label", "flow_image"])
    with pytest.raises(
        DatasetError, match=r"manifest.csv row 2: flow_image '../outside.png' leaves the manifest's folder"
    ):
        load("manifest", root=path)
    path = write_manifest(tmp_path / "n", [["p1", "x"]], ["subject", "emotion"])
    with pytest.raises(DatasetError, match="lacks the column.s. label, one of frames_dir, video, flow_image"):
        load("manifest", root=path)
    with pytest.raises(ConfigError, match="permutation of 'uvs'"):
        load("manifest", root=path, flow_channels="rgb")


@pytest.mark.slow
def test_a_manifest_of_flow_images_evaluates_with_the_same_harness(small_casme2, cache_dir, tmp_path):
    from merkit.preprocess.apex import fill_apex
    from merkit.preprocess.flow import apex_flow

    data = fill_apex(load("casme2", root=small_casme2.root, labels="seed4"), "middle")
    rows = []
    for clip in data:
        frames = clip.read(grey=True)
        maps = apex_flow(frames[clip.onset], frames[clip.apex], size=(28, 28), normalise="minmax")
        name = f"flow/{clip.subject}_{clip.clip}.png"
        (tmp_path / "flow").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(np.rint(maps * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
        rows.append([clip.subject, clip.label, name])
    path = write_manifest(tmp_path, rows, ["subject", "label", "flow_image"])
    manifest = load("manifest", root=path)
    result = evaluate(manifest, "apex_flow_svm", out=tmp_path / "run", cache=cache_dir)
    assert len(result.predictions) == len(data) and (tmp_path / "run" / "report.md").is_file()
    assert set(result.predictions["fold"]) == set(manifest.groups)
