import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from merkit.cli import app
from merkit.methods import create_method
from merkit.training.augment import augment_flows, corner_crop, flip_flows, rescale_flows

TINY = ["--set", "size=32", "--set", "widths=4,8,8,8", "--set", "n_frames=6", "--set", "epochs=1", "--set", "hidden=4"]


def uniform_flow(u, v, size=20, frames=3):
    return torch.stack([torch.full((frames, size, size), float(u)), torch.full((frames, size, size), float(v))], dim=1)


def test_rescaling_and_cropping_scale_the_vectors():
    flow = uniform_flow(1.0, -2.0)
    grown = rescale_flows(flow, 1.1)
    torch.testing.assert_close(grown, uniform_flow(1.1, -2.2))
    shrunk = rescale_flows(flow, 0.9)
    assert shrunk.shape == flow.shape
    torch.testing.assert_close(shrunk[:, :, 10, 10], torch.tensor([[0.9, -1.8]] * 3))
    assert shrunk[:, :, 0, 0].abs().max() == 0, "a shrink uncovers still (zero-flow) border"
    cropped = corner_crop(flow, 3)  # 18x18 of 20x20, back to 20x20: vectors x 20/18
    torch.testing.assert_close(cropped, uniform_flow(20 / 18, -2 * 20 / 18))


def test_flip_mirrors_the_motion():
    flow = torch.zeros(1, 2, 4, 6)
    flow[0, 0, :, :3] = 1.0  # the left half moves right
    flow[0, 1, :, :3] = 0.5  # and down
    flipped = flip_flows(flow)
    assert torch.all(flipped[0, 0, :, 3:] == -1.0) and torch.all(flipped[0, 0, :, :3] == 0)
    assert torch.all(flipped[0, 1, :, 3:] == 0.5)
    torch.testing.assert_close(flip_flows(flipped), flow)


@pytest.mark.parametrize("mode", ["crop_scale", "crop_flip"])
def test_augmentation_is_one_of_its_views_drawn_per_clip(mode):
    """Each output is exactly one crop (or the full view) followed by one scale or flip of the
    input, never anything else; over 96 draws every combination comes up, the full view at
    scale 1.0 (the clip itself) among them."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 2, 20, 20).expand(96, -1, -1, -1, -1)  # one clip, 96 times
    second = (
        [lambda c, s=s: rescale_flows(c, s) for s in (0.9, 1.0, 1.1)]
        if mode == "crop_scale"
        else [lambda c: c, flip_flows]
    )
    candidates = [(view, j, after(corner_crop(x[0], view))) for view in range(6) for j, after in enumerate(second)]
    seen = set()
    for clip in augment_flows(x, np.random.default_rng(0), mode):
        matches = [(view, j) for view, j, candidate in candidates if torch.equal(clip, candidate)]
        assert matches, "an augmented clip must be one of the crops, scales or flips"
        seen.update(matches)
    assert seen == {(view, j) for view, j, _ in candidates}
    assert torch.equal(corner_crop(x[0], 5), x[0]), "view 5 is the full view"


def test_l1_penalty_only_in_its_variants():
    """Hand-worked: zero logits over 2 classes give a cross-entropy of ln 2; masks of 0.5 over
    5 flows x 1 channel x 2 x 2 give an L1 norm of 10 per clip, so lambda 0.01 adds 0.1."""
    from types import SimpleNamespace

    logits, labels = torch.zeros(3, 2), torch.tensor([0, 1, 1])
    model = SimpleNamespace(last_attention=SimpleNamespace(masks=torch.full((3, 5, 1, 2, 2), 0.5)))
    for variant, expected in [("sab", np.log(2)), ("sab_l1", np.log(2) + 0.1), ("sab_tab_l1", np.log(2) + 0.1)]:
        loss = create_method("stanet", variant=variant, l1=0.01).loss(model, logits, labels)
        assert loss.item() == pytest.approx(expected, rel=1e-6), variant
    assert create_method("stanet", variant="baseline").create_network(2).sab is None


@pytest.mark.slow
def test_loso_of_each_table_2_variant_and_explain(small_casme2, cache_dir, tmp_path):
    runner = CliRunner()
    for variant in ("baseline", "sab", "sab_l1", "sab_tab_l1"):
        out = tmp_path / variant
        result = runner.invoke(
            app,
            [
                "evaluate",
                "--dataset",
                "casme2",
                "--root",
                str(small_casme2.root),
                "--labels",
                "seed4",
                "--method",
                "stanet",
                *TINY,
                "--set",
                f"variant={variant}",
                "--out",
                str(out),
                "--cache",
                str(cache_dir),
            ],
        )
        assert result.exit_code == 0, result.output
        assert (
            len(list((out / "models").glob("*/network.safetensors")))
            == len({c.subject for c in small_casme2.clips})
            == 5
        )
    clip = small_casme2.clips[0]
    result = runner.invoke(
        app, ["explain", "--run", str(out), "--clip", f"casme2/{clip.subject}/{clip.clip}", "--cache", str(cache_dir)]
    )
    assert result.exit_code == 0, result.output
    for kind in ("spatial", "temporal"):
        png = out / "explain" / f"casme2__{clip.subject}__{clip.clip}_{kind}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = runner.invoke(app, ["explain", "--run", str(out), "--clip", "EP99_99"])
    assert result.exit_code == 2 and "no clip(s) named 'EP99_99'" in result.output


def test_flow_from_the_onset_is_an_option(small_casme2, cache_dir):
    from merkit.datasets import load
    from merkit.errors import ConfigError
    from merkit.preprocess.cache import Cache

    clip = next(iter(load("casme2", root=small_casme2.root, labels="seed4")))
    adjacent = create_method("stanet", size=32, n_frames=6).clip_input(clip, Cache(cache_dir))
    onset = create_method("stanet", size=32, n_frames=6, reference="onset").clip_input(clip, Cache(cache_dir))
    assert adjacent.shape == (5, 2, 32, 32) and onset.shape == (6, 2, 32, 32)
    assert np.all(onset[0] == 0), "the first frame's flow from itself"
    np.testing.assert_array_equal(onset[1], adjacent[0])  # frame 0 to frame 1 either way
    assert np.abs(onset[2:] - adjacent[1:]).max() > 0
    with pytest.raises(ConfigError, match="reference 'apex'"):
        create_method("stanet", reference="apex")


def test_explanations_place_each_flow_on_the_frames_time_axis():
    from merkit.evaluation.explain import Explanation

    frames, weights = np.zeros((4, 8, 8), np.uint8), np.full(3, 1 / 3)
    adjacent = Explanation("c", "f", "a", "a", frames, None, weights, None)
    np.testing.assert_array_equal(adjacent.flow_times, [0.5, 1.5, 2.5])  # flow t: between frames t and t + 1
    onset = Explanation("c", "f", "a", "a", frames[:3], None, weights, None, reference="onset")
    np.testing.assert_array_equal(onset.flow_times, [0, 1, 2])  # flow t: frame 0 to frame t


def test_the_face_is_aligned_and_centred_before_the_flow():
    """A face pasted off-centre into a large frame comes out centred, eyes level at the aligned height."""
    from merkit.inference import as_clip
    from merkit.preprocess.align import detect_landmarks, eye_centres
    from merkit.preprocess.cache import MemoryCache
    from merkit.preprocess.pipeline import Representation
    from merkit.synthetic import Expression, FaceGeometry, Nuisance, synthesize_clip

    rng = np.random.default_rng(4)
    geometry = FaceGeometry.random((144, 120), rng)
    faces, *_ = synthesize_clip(
        geometry,
        Expression.random("surprise", 1.0, rng),
        n_frames=8,
        onset=0,
        apex=4,
        offset=7,
        nuisance=Nuisance(0, 0, 0, 0),
        rng=rng,
    )
    frames = np.full((8, 360, 480, 3), 90, np.uint8)
    frames[:, 200:344, 330:450] = faces  # bottom right of the frame
    clip = as_clip(frames)
    method = create_method("stanet", size=64, n_frames=6)
    steps = method.representation().steps
    aligned = Representation(*steps[: [s.name for s in steps].index("resize") + 1]).get(clip, MemoryCache())[0]
    assert aligned.shape == (8, 64, 64)
    eyes = eye_centres(detect_landmarks(cv2.resize(aligned[0], (224, 224)), upsample=2)) * 64 / 224
    assert abs(eyes[:, 0].mean() - 32) < 2 and abs(eyes[:, 1].mean() - 0.38 * 64) < 2, eyes
    assert abs(eyes[1, 0] - eyes[0, 0] - 0.42 * 64) < 3, "the eyes are spread as the alignment sets them"
    raw = create_method("stanet", size=64, n_frames=6, align=False).representation().steps
    squeezed = Representation(*raw[:2]).get(clip, MemoryCache())[0]
    face_box = np.argwhere(np.abs(squeezed[0].astype(int) - 90) > 10)
    assert face_box[:, 1].mean() > 45, "without alignment the face stays in the right of the frame"
