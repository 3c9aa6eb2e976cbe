import cv2
import numpy as np
import pytest

from merkit.errors import ConfigError
from merkit.preprocess.flow import apex_flow, flow_sequence, optical_flow, optical_strain, register_flow

H = W = 128


def textured(seed=0):
    image = cv2.GaussianBlur(np.random.default_rng(seed).random((H, W)).astype(np.float32), (0, 0), 1.5)
    return (image - image.min()) / (image.max() - image.min())


def warp(image, u, v):
    """Frame b shows at x + d what ``image`` shows at x (backward map, for small smooth d)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    return cv2.remap(image, x - u, y - v, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)


def endpoint_error(flow, u, v, margin=8):
    return float(np.hypot(flow[..., 0] - u, flow[..., 1] - v)[margin:-margin, margin:-margin].mean())


def test_tvl1_recovers_a_smooth_subpixel_field():
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    u = 0.5 * np.sin(2 * np.pi * x / W) * np.cos(2 * np.pi * y / H)
    v = 0.4 * np.cos(2 * np.pi * x / W + 0.5)
    image = textured()
    assert endpoint_error(optical_flow(image, warp(image, u, v)), u, v) < 0.1


@pytest.mark.parametrize("method", ["tvl1", "dis"])
def test_a_subpixel_translation_is_recovered(method):
    image = textured(1)
    u, v = np.full((H, W), 0.3, np.float32), np.full((H, W), -0.6, np.float32)
    moved = warp(image, u, v)
    assert (
        endpoint_error(
            optical_flow((image * 255).astype(np.uint8), (moved * 255).astype(np.uint8), method=method), u, v
        )
        < 0.1
    )


def test_optical_strain_of_known_fields():
    y, x = np.mgrid[0:9, 0:9].astype(float)
    stretch = optical_strain(np.stack([0.3 * x, 0.4 * y], axis=2))
    np.testing.assert_allclose(stretch, 0.5, atol=1e-6)  # sqrt(0.3^2 + 0.4^2)
    shear = optical_strain(np.stack([0.2 * y, 0 * x], axis=2))
    np.testing.assert_allclose(shear, 0.2 / np.sqrt(2), atol=1e-6)  # eps_xy = 0.1: sqrt(2 * 0.01)
    np.testing.assert_allclose(optical_strain(np.stack([0 * x + 2, 0 * y - 1], axis=2)), 0.0)  # translation


def test_apex_flow_maps_and_normalisations():
    image = textured(2)
    moved = warp(image, np.full((H, W), 0.5, np.float32), np.zeros((H, W), np.float32))
    raw = apex_flow(image, moved, size=(32, 32))
    assert raw.shape == (32, 32, 3) and abs(float(np.median(raw[..., 0])) - 0.5) < 0.05
    scaled = apex_flow(image, moved, size=(32, 32), normalise="scale")
    assert abs(float(np.median(scaled[..., 0])) - 0.5 * 32 / W) < 0.02
    unit = apex_flow(image, moved, size=(32, 32), normalise="minmax")
    assert unit.min() == 0.0 and np.allclose(unit.max(axis=(0, 1)), 1.0)


def test_a_plugged_in_estimator_is_used_by_name():
    register_flow("constant_for_tests")(lambda a, b: np.dstack([np.full(a.shape, 1.5), np.full(a.shape, -2.0)]))
    flows = flow_sequence(np.zeros((4, 8, 8)), method="constant_for_tests")
    assert flows.shape == (3, 8, 8, 2) and np.all(flows[..., 0] == 1.5)
    assert flow_sequence(np.zeros((4, 8, 8)), reference="onset", method="constant_for_tests").shape == (4, 8, 8, 2)
    with pytest.raises(ConfigError, match="Unknown flow method 'flownet2'.*tvl1"):
        optical_flow(np.zeros((8, 8)), np.zeros((8, 8)), method="flownet2")
