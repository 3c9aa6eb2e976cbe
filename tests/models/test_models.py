import pytest
import torch

from merkit.models import create_model, list_models
from merkit.models.mer_rcnn import RecurrentConv

TABLE1 = ["conv1", "pool1", "rcl2", "pool2", "rcl3", "pool3", "rcl4", "pool4", "rcl5", "pool5"]


def layer_shapes(model, x):
    shapes = []
    hooks = [
        getattr(model, name).register_forward_hook(lambda m, i, o, n=name: shapes.append((n, tuple(o.shape[1:]))))
        for name in TABLE1
    ]
    model(x)
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.mark.parametrize(
    "pixels,expected",
    [
        # 26 x 26 = 676 pixels: 5x5 conv -> 672 x 26; pools 4x1, 4x1, 4x4, 4x2 (pixels x frames)
        (676, [(672, 26), (168, 26), (168, 26), (42, 26), (42, 26), (10, 6), (10, 6), (2, 3), (2, 3), (1, 1)]),
        # the paper's literal 1966: 1962, 490, 122, 30 x 6, 7 x 3
        (1966, [(1962, 26), (490, 26), (490, 26), (122, 26), (122, 26), (30, 6), (30, 6), (7, 3), (7, 3), (1, 1)]),
    ],
)
def test_mer_rcnn_layer_shapes_follow_table_1(pixels, expected):
    model = create_model("mer_rcnn", num_classes=4, maps=8)
    shapes = layer_shapes(model, torch.zeros(1, 3, pixels, 30))
    print("\n".join(f"{name:6s} {shape}" for name, shape in shapes))
    assert [s[1:] for _, s in shapes] == expected and all(s[0] == 8 for _, s in shapes)
    assert model(torch.zeros(2, 3, pixels, 30)).shape == (2, 4)
    assert model.forward_features(torch.zeros(2, 3, pixels, 30)).shape == (2, 8)


def test_recurrent_weights_are_shared_across_iterations():
    sizes = {
        depth: sum(p.numel() for p in create_model("mer_rcnn", num_classes=3, maps=8, depth=depth).parameters())
        for depth in (1, 3, 6)
    }
    assert len(set(sizes.values())) == 1, "more iterations, no more weights"
    layer = RecurrentConv(8, depth=3)
    calls = []
    layer.recurrent.register_forward_hook(lambda *a: calls.append(1))
    u = torch.randn(2, 8, 6, 5)
    out = layer(u)
    assert len(calls) == 3
    # z(n) = w_f u + w_r v(n-1) + b, v(0) = 0, v(n) = f(z(n)), composed by hand
    f, drive = layer.activation, layer.feedforward(u)
    v = f(drive)
    for _ in range(3):
        v = f(drive + layer.recurrent(v))
    torch.testing.assert_close(out, v)
    out.sum().backward()
    assert layer.recurrent.weight.grad is not None and layer.recurrent.bias is None


def test_every_registered_model_builds_and_runs():
    assert "mer_rcnn" in list_models()
    for name in list_models():
        model = create_model(name, num_classes=5)
        assert model(torch.zeros(1, *model.input_shape)).shape == (1, 5)
