import cv2
import numpy as np
import pytest
from skimage import data

from merkit.errors import DatasetError
from merkit.preprocess.align import align_clip, detect_landmarks, eye_centres, similarity_from_eyes


def similarity(angle_deg, scale, tx, ty, centre=(256, 256)):
    m = cv2.getRotationMatrix2D(centre, angle_deg, scale)
    m[:, 2] += (tx, ty)
    return m


def apply(m, points):
    return points @ m[:, :2].T + m[:, 2]


@pytest.fixture(scope="module")
def astronaut():
    image = data.astronaut()  # ships with scikit-image
    return image, eye_centres(detect_landmarks(image))


@pytest.mark.parametrize("angle,scale,tx,ty", [(0, 1, 0, 0), (8, 1.0, 12, -7), (-10, 1.1, -15, 10), (5, 0.9, 20, 15)])
def test_alignment_recovers_known_similarity_transforms_at_the_eyes(astronaut, angle, scale, tx, ty):
    image, eyes = astronaut
    moved_by = similarity(angle, scale, tx, ty)
    moved = cv2.warpAffine(image, moved_by, (512, 512), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
    found = eye_centres(detect_landmarks(moved))
    np.testing.assert_allclose(found, apply(moved_by, eyes), atol=1.0)  # the eyes moved as the transform says
    aligned = align_clip(moved[None], size=(256, 256))
    np.testing.assert_allclose(
        apply(aligned.transforms[0], found), [[256 * 0.29, 256 * 0.38], [256 * 0.71, 256 * 0.38]], atol=1e-6
    )
    # aligning the moved photograph undoes the move: composed with it, it is the original's
    # alignment; compared in the photograph's pixels, through the inverse of that alignment
    reference = np.vstack([similarity_from_eyes(eyes, (256, 256)), [0, 0, 1]])
    composed = np.vstack([aligned.transforms[0], [0, 0, 1]]) @ np.vstack([moved_by, [0, 0, 1]])
    back = np.linalg.inv(reference) @ composed
    np.testing.assert_allclose(apply(back[:2], eyes), eyes, atol=1.0)


def test_every_frame_takes_the_reference_transform_unless_tracking(astronaut):
    image, _ = astronaut
    shifted = cv2.warpAffine(image, similarity(0, 1, 6, 0), (512, 512))
    clip = np.stack([image, shifted])
    fixed = align_clip(clip, size=(128, 128))
    np.testing.assert_array_equal(fixed.transforms[0], fixed.transforms[1])  # the head's motion is kept
    tracked = align_clip(clip, size=(128, 128), track=True)

    def change(alignment):
        return np.abs(alignment.frames[1].astype(float) - alignment.frames[0].astype(float))[16:-16, 16:-16].mean()

    assert change(tracked) < change(fixed) / 3  # tracking removes the 6-pixel head move


def test_a_frame_without_a_face_is_reported_or_bridged(astronaut):
    image, _ = astronaut
    blank = np.full_like(image, 127)
    clip = np.stack([image, blank, image])
    with pytest.raises(DatasetError, match=r"No face found in frame 1 of casme2/sub01/EP02_01f"):
        align_clip(clip, track=True, name="casme2/sub01/EP02_01f")
    bridged = align_clip(clip, track=True, on_missing="reuse")
    assert bridged.missing == [1]
    np.testing.assert_array_equal(bridged.transforms[1], bridged.transforms[0])
