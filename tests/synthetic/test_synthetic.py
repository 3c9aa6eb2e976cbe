import numpy as np

from merkit.synthetic import (
    Expression,
    FaceGeometry,
    Nuisance,
    SynthConfig,
    render_face,
    synthesize_clip,
    timing_profile,
)
from merkit.synthetic.layouts import subject_clips

QUIET = Nuisance(0, 0, 0, 0)


def make_clip(emotion, amplitude=1.0, nuisance=QUIET, seed=0):
    rng = np.random.default_rng(seed)
    geometry = FaceGeometry.random((144, 120), rng)
    expression = Expression.random(emotion, amplitude, rng)
    frames, field, profile, drift = synthesize_clip(
        geometry, expression, n_frames=60, onset=2, apex=25, offset=55, nuisance=nuisance, rng=rng
    )
    return geometry, frames, field, profile, drift


def test_same_seed_same_clips_and_subjects_independent_of_their_number():
    a = [(t.clip, f.tobytes()) for t, f, _ in subject_clips(SynthConfig(n_subjects=2, seed=3), 2)]
    b = [(t.clip, f.tobytes()) for t, f, _ in subject_clips(SynthConfig(n_subjects=9, seed=3), 2)]
    c = [(t.clip, f.tobytes()) for t, f, _ in subject_clips(SynthConfig(n_subjects=2, seed=4), 2)]
    assert a == b and a != c


def test_timing_profile_rises_from_onset_to_apex_and_falls_to_offset():
    p = timing_profile(40, 5, 15, 35)
    assert p[:6].max() == 0 and p[15] == 1 and p[35:].max() == 0
    assert np.all(np.diff(p[5:16]) > 0) and np.all(np.diff(p[15:36]) < 0)


def test_motion_is_subpixel_to_a_pixel_and_only_where_the_field_says():
    geometry, frames, field, profile, _ = make_clip("happiness", amplitude=0.8)
    peak = np.linalg.norm(field, axis=2).max()
    assert 0.5 < peak < 1.5
    change = np.abs(frames[25].astype(int) - frames[2].astype(int)).max(axis=2)
    moving = np.linalg.norm(field, axis=2) > 0.3 * peak
    still = np.linalg.norm(field, axis=2) < 1e-3
    assert change[moving].mean() > 1.0 and change[still].max() <= 1


def test_a_frame_without_displacement_is_the_face_itself():
    geometry, frames, *_ = make_clip("surprise")
    assert np.array_equal(frames[0], np.clip(np.rint(render_face(geometry) * 255), 0, 255).astype(np.uint8))


def test_frames_are_the_face_warped_by_the_returned_displacement():
    from scipy.ndimage import map_coordinates

    geometry, frames, field, profile, drift = make_clip("surprise", nuisance=Nuisance(0.3, 0, 0, 0))
    face = render_face(geometry).astype(np.float64)
    y, x = np.mgrid[0:144, 0:120].astype(np.float64)
    d = profile[25] * field + drift[25]
    expected = np.stack(
        [map_coordinates(face[..., c], [y - d[..., 1], x - d[..., 0]], order=3, mode="mirror") for c in range(3)],
        axis=2,
    )
    inner = (slice(4, -4), slice(4, -4))  # borders: the two libraries extend the image differently
    assert np.abs(frames[25][inner] - expected[inner] * 255).max() < 2.5


def test_classes_move_different_parts_of_the_face():
    def centroid_y(emotion):
        geometry, _, field, _, _ = make_clip(emotion, seed=5)
        weight = np.linalg.norm(field, axis=2)
        return (np.mgrid[0:144, 0:120][0] * weight).sum() / weight.sum(), geometry

    brows, geometry = centroid_y("surprise")
    lips, _ = centroid_y("happiness")
    assert brows < geometry.eye_y < geometry.nose_y < lips


def test_faces_differ_between_subjects():
    faces = [render_face(FaceGeometry.random((144, 120), np.random.default_rng(s))) for s in range(3)]
    assert min(np.abs(faces[i] - faces[j]).mean() for i in range(3) for j in range(i)) > 0.03


def test_each_nuisance_alone_does_what_it_says():
    """One nuisance at a time against the quiet clip of the same seed (the same expression)."""
    _, quiet, *_ = make_clip("others", seed=2)
    q = quiet.astype(float)

    def alone(**value):
        return make_clip(
            "others", seed=2, nuisance=Nuisance(**{"drift_px": 0, "noise_std": 0, "flicker": 0, "exposure": 0, **value})
        )

    _, frames, _, _, drift = alone(drift_px=0.2)
    assert 0.2 * 0.3 - 1e-6 <= np.abs(drift).max() <= 0.2 + 1e-6 and np.abs(drift[0]).max() == 0
    moved = np.abs(frames.astype(float) - q).mean(axis=(1, 2, 3))
    assert moved[0] == 0 and moved.max() > 0.1, "the head moves; the first frame is the reference"

    _, frames, _, _, drift = alone(noise_std=1.0)
    difference = frames.astype(float) - q
    assert np.abs(drift).max() == 0 and abs(difference.mean()) < 0.02
    assert 0.85 < difference.std() < 1.2, "sensor noise of 1 grey level (rounded to whole levels)"

    _, frames, *_ = alone(flicker=0.002)
    ratio = frames.astype(float).sum(axis=(1, 2, 3)) / q.sum(axis=(1, 2, 3))
    assert 0.0012 < np.abs(ratio - 1).max() < 0.0025 and ratio.std() > 5e-4, "brightness follows 1 + 0.002 sin(...)"

    _, frames, *_ = alone(exposure=0.1)
    ratio = frames.astype(float).sum(axis=(1, 2, 3)) / q.sum(axis=(1, 2, 3))
    assert 0 < abs(ratio.mean() - 1) <= 0.1 and ratio.std() < 1e-4, "one gain for the whole clip"


def test_flow_manifest_has_megc_counts_and_u_v_strain_channels(tmp_path):
    from merkit.datasets import load
    from merkit.synthetic.flow_images import FlowSetConfig, write_flow_manifest

    config = FlowSetConfig(
        datasets={"a": (3, {"surprise": 4, "positive": 2}), "b": (2, {"surprise": 3})}, flow_noise=0.0, drift_px=0.0
    )
    data = load("manifest", root=write_flow_manifest(tmp_path, config))
    counts = data.metadata.groupby(["dataset", "label"]).size().to_dict()
    assert counts == {("a", "positive"): 2, ("a", "surprise"): 4, ("b", "surprise"): 3}
    assert data.metadata.groupby("dataset")["subject"].nunique().to_dict() == {"a": 3, "b": 2}
    for clip in data:
        maps = clip.read_flow()
        assert maps.shape == (28, 28, 3) and maps.min() >= 0 and maps.max() <= 1
        if clip.label == "surprise":  # AU1/AU2 raise the brows straight up: no horizontal flow
            assert maps[..., 0].max() == 0 and maps[..., 1].max() == 1 and maps[..., 2].max() == 1
