import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

from merkit.datasets import load
from merkit.errors import DatasetError
from merkit.io.frames import read_frame
from merkit.methods import create_method
from merkit.preprocess.align import detect_landmarks
from merkit.preprocess.apex import fill_apex
from merkit.preprocess.cache import Cache
from merkit.preprocess.flow import minmax
from merkit.preprocess.pipeline import Representation, Step
from merkit.preprocess.regions import face_regions, five_points, standard_points
from merkit.synthetic.flow_images import FlowSetConfig, write_flow_manifest

SMALL = {"dim": 8, "heads": 1, "block_repeats": (1, 1, 1)}


def test_areas_from_the_faces_landmarks_or_the_standard_positions(small_casme2, cache_dir, tmp_path):
    """A clip with frames: its areas are placed by its onset face (not the standard positions); a
    flow image: by the standard positions of an aligned face, or by its ``face_image``'s face."""
    cache, method = Cache(cache_dir), create_method("htnet", **SMALL)
    clip = fill_apex(load("casme2", root=small_casme2.root, labels="seed4"), "middle")[0]
    maps = Representation(Step("apex_flow", method="tvl1", size=(28, 28), normalise="minmax")).get(clip, cache)[0]
    areas = method.clip_input(clip, cache)
    assert areas.shape == (3, 28, 28) and areas.dtype == np.float32
    standard = face_regions(maps, standard_points((28, 28))).transpose(2, 0, 1)
    assert not np.array_equal(areas, standard)

    manifest = write_flow_manifest(tmp_path, FlowSetConfig(datasets={"casme2": (1, {"negative": 1, "surprise": 1})}))
    flows = load("manifest", root=manifest)
    expected = face_regions(minmax(flows[0].read_flow()), standard_points((28, 28)))
    np.testing.assert_array_equal(method.clip_input(flows[0], cache), expected.transpose(2, 0, 1))

    shutil.copy(clip.frame_paths[clip.onset], tmp_path / "face.jpg")  # a face for the flow images
    table = pd.read_csv(manifest)
    table["face_image"] = ["face.jpg", ""]
    table.to_csv(manifest, index=False)
    with_face = load("manifest", root=manifest)
    assert with_face[0].face_image == str(tmp_path / "face.jpg") and with_face[1].face_image == ""
    face = read_frame(tmp_path / "face.jpg", grey=True)
    margin = face.shape[0] // 4
    landmarks = detect_landmarks(cv2.copyMakeBorder(face, margin, margin, margin, margin, cv2.BORDER_REPLICATE))
    points = (five_points(landmarks) - margin) * np.array([28 / face.shape[1], 28 / face.shape[0]])
    placed = face_regions(minmax(with_face[0].read_flow()), points).transpose(2, 0, 1)
    np.testing.assert_array_equal(method.clip_input(with_face[0], cache), placed)
    assert not np.array_equal(placed, expected.transpose(2, 0, 1))
    table["face_image"] = ["missing.jpg", ""]
    table.to_csv(manifest, index=False)
    with pytest.raises(DatasetError, match="face_image 'missing.jpg' is not a file inside"):
        load("manifest", root=manifest, strict=True)


def test_htnet_trains_its_fixed_epochs_with_adam_and_lowers_its_loss(cache_dir, tmp_path):
    flows = load(
        "manifest",
        root=write_flow_manifest(
            tmp_path,
            FlowSetConfig(datasets={"casme2": (3, {"negative": 5, "surprise": 5})}, amplitude=(0.6, 1.0), seed=3),
        ),
    )
    method = create_method("htnet", epochs=20, lr=1e-3, **SMALL)
    assert method.recipe().optimizer == "adam" and (create_method("htnet").lr, create_method("htnet").epochs) == (
        5e-5,
        800,
    )
    method.fit(flows, seed=0, cache=Cache(cache_dir))
    assert len(method.history_) == 20 and np.mean(method.history_[-3:]) < 0.7 * method.history_[0]
    assert method.folds_together() == 1 and method.predict_proba(
        flows.subset([0, 1]), cache=Cache(cache_dir)
    ).shape == (2, 2)
