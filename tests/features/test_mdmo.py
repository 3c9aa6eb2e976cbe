import numpy as np
import pytest

from merkit.features.mdmo import MIRROR, ROIS, mdmo, roi_labels


@pytest.fixture(scope="module")
def face_landmarks():
    """Landmarks of a synthetic face, found by dlib (as the mdmo step finds them)."""
    import cv2

    from merkit.preprocess.align import detect_landmarks
    from merkit.synthetic import FaceGeometry, render_face

    face = render_face(FaceGeometry.random((144, 120), np.random.default_rng(0)))
    image = cv2.resize(np.clip(face * 255, 0, 255).astype(np.uint8), (240, 288))
    landmarks = detect_landmarks(image, upsample=1)
    assert landmarks is not None
    return landmarks, image.shape[:2]


def test_36_regions_each_covering_pixels_and_mirrored_on_a_symmetric_face(face_landmarks):
    landmarks, shape = face_landmarks
    labels = roi_labels(landmarks, shape)
    assert len(ROIS) == 36 and sorted(np.unique(labels)) == list(range(-1, 36))
    assert np.array_equal(MIRROR[MIRROR], np.arange(68)), "mirroring twice is the identity"
    # the face made exactly symmetric about its vertical centre line: point i and its mirror point
    width = shape[1]
    flipped = np.stack([width - 1 - landmarks[MIRROR, 0], landmarks[MIRROR, 1]], axis=1)
    symmetric = roi_labels((landmarks + flipped) / 2, shape)
    columns = np.arange(width)
    # regions meeting on the centre line (the nose wings, the lips) share its pixels, which go to the
    # first listed, the left one: compare the two sides away from it
    symmetric[:, np.abs(columns - (width - 1) / 2) <= 1.5] = -1
    names = [name for name, _ in ROIS]
    for i, name in enumerate(names):
        if not name.endswith("image left"):
            continue
        j = names.index(name.replace("image left", "image right"))
        area_i, area_j = (symmetric == i).sum(), (symmetric == j).sum()
        assert abs(area_i - area_j) <= 0.1 * max(area_i, area_j) + 3, (name, area_i, area_j)
        centre_i = (columns * (symmetric == i).sum(axis=0)).sum() / area_i
        centre_j = (columns * (symmetric == j).sum(axis=0)).sum() / area_j
        assert abs(centre_i + centre_j - (width - 1)) < 2.0, (name, centre_i, centre_j)  # mirror images


def test_known_motion_per_region_is_recovered(face_landmarks):
    """Each ROI moves by a known vector in the middle of a direction sector; 30% of its pixels move
    faster in another sector and must be ignored (they are not the main direction). Two frames,
    the second at 1.5 times the first: rho averages to 1.25 times, so the normalised rho is
    rho_k / max rho and theta is the sector's middle."""
    landmarks, shape = face_landmarks
    labels = roi_labels(landmarks, shape)
    rng = np.random.default_rng(1)
    rho = 0.1 + 0.02 * np.arange(36)
    theta = (np.arange(36) % 8 + 0.5) * np.pi / 4
    flow = rng.normal(0, 0.01, shape + (2,)).astype(np.float64)  # outside every ROI: ignored
    for k in range(36):
        pixels = np.argwhere(labels == k)
        flow[tuple(pixels.T)] = rho[k] * np.array([np.cos(theta[k]), np.sin(theta[k])])
        minority = pixels[rng.random(len(pixels)) < 0.3]
        flow[tuple(minority.T)] = 5 * np.array([np.cos(theta[k] + np.pi), np.sin(theta[k] + np.pi)])
    feature = mdmo(np.stack([flow, 1.5 * flow]), labels).reshape(36, 2)
    np.testing.assert_allclose(feature[:, 0], rho / rho.max(), rtol=1e-5)
    np.testing.assert_allclose(feature[:, 1], theta, rtol=1e-5)


def test_a_synthetic_surprise_raises_the_brows_in_mdmo():
    """AU1 + AU2 (+ AU5) lift the brows and lids: the regions around the eyes move most, upwards."""
    from merkit.inference import as_clip
    from merkit.methods import create_method
    from merkit.preprocess.cache import MemoryCache
    from merkit.synthetic import Expression, FaceGeometry, Nuisance, synthesize_clip

    rng = np.random.default_rng(5)
    geometry = FaceGeometry.random((144, 120), rng)
    frames, *_ = synthesize_clip(
        geometry,
        Expression.random("surprise", 3.0, rng),
        n_frames=16,
        onset=0,
        apex=8,
        offset=15,
        nuisance=Nuisance(0, 0, 0, 0),
        rng=rng,
    )
    method = create_method("mdmo_svm", flow="dis")
    feature = method.representation().get(as_clip(frames, offset=8), MemoryCache())[0].reshape(36, 2)
    upper = {
        i
        for i, (name, _) in enumerate(ROIS)
        if name.startswith(("brow", "glabella", "upper eyelid", "lower eyelid", "eye corner"))
    }
    lower = [
        i
        for i, (name, _) in enumerate(ROIS)
        if name.startswith(("upper lip", "lower lip", "mouth corner", "chin", "lower cheek"))
    ]
    strongest = np.argsort(feature[:, 0])[-8:]
    assert set(strongest) <= upper, [ROIS[i][0] for i in strongest]
    assert np.all(np.abs(feature[strongest, 1] - 1.5 * np.pi) < np.pi / 8), "they move up: angle 3 pi / 2 with y down"
    assert feature[lower, 0].max() < 0.5 * feature[strongest, 0].min(), "the mouth and chin barely move"


def test_mdmo_svm_is_registered():
    from merkit.methods import list_methods

    assert "mdmo_svm" in [m.name for m in list_methods()]
