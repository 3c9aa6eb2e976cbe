import pytest
import torch
from torch import nn

from merkit.errors import ConfigError
from merkit.models import create_model
from merkit.models.rcn import VARIANTS, class_activation


@pytest.mark.parametrize(
    "variant,stem,body",
    [
        ("a", (32, 12, 12), (32, 6, 6)),
        ("s", (32, 12, 12), (32, 6, 6)),
        ("w", (32, 10, 10), (32, 5, 5)),
        ("p", (32, 10, 10), (32, 5, 5)),
        ("c", (32, 10, 10), (32, 5, 5)),
    ],
)
def test_layer_shapes_and_the_modules_add_no_weights(variant, stem, body):
    """28x28: a 5x5 convolution and 2x2 pooling (24, 12) or strided stems (10); the recurrent or
    dense layer halves; pooled to 5x5 for the classifier. The attention and the shortcuts add no
    weights: every variant's count is its stems', one layer's (1x1 and 3x3) and the classifier's."""
    model = create_model("rcn", num_classes=3, variant=variant)
    shapes = []
    model.body.register_forward_pre_hook(lambda m, args: shapes.append(tuple(args[0].shape[1:])))
    model.body.register_forward_hook(lambda m, args, out: shapes.append(tuple(out.shape[1:])))
    assert model(torch.rand(2, 3, 28, 28)).shape == (2, 3) and shapes == [stem, body]
    stems = {"a": 3 * 25 * 32 + 32 + 64, "s": 3 * 25 * 32 + 32 + 64}.get(variant, 3 * 9 * 32 + 32 + 64)
    layer = (32 * 32 + 32 + 64) + (32 * 9 * 32 + 32 + 64)
    assert sum(p.numel() for p in model.parameters()) == stems + layer + 800 * 3 + 3


def test_the_attention_map_by_hand():
    """2x2 maps of 2 channels, 2 classes: each class's map is the channel mean of weights x maps,
    scaled to [0, 1]; the classes' maps are averaged."""
    maps = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 2.0]]]])  # (1, 2, 2, 2)
    weights = torch.stack(
        [torch.ones(8), torch.cat([torch.zeros(4), torch.ones(4)])]
    )  # class 0 reads both, class 1 channel 1
    # class 0: mean of the channels [[0.5, 1], [1.5, 3]] -> [[0, 0.2], [0.4, 1]]; class 1: [[0, 0], [0, 1]]
    expected = torch.tensor([[[[0.0, 0.1], [0.2, 1.0]]]])
    torch.testing.assert_close(class_activation(maps, weights), expected)
    constant = class_activation(torch.ones(1, 2, 2, 2), weights)
    assert torch.equal(constant, torch.zeros(1, 1, 2, 2)), "a flat map gives no attention, not 0 / 0"
    # over the channels of the input: the weights' channel mean times each input channel
    torch.testing.assert_close(
        class_activation(maps[:, :1], weights, over_channels=True), torch.tensor([[[[0.0, 1 / 3], [2 / 3, 1.0]]]])
    )


def test_the_attention_reads_the_classifier():
    """RCN-A's features change when only the classifier's weights change (parameter-free attention)."""
    torch.manual_seed(0)
    model, x = create_model("rcn", num_classes=3).eval(), torch.rand(2, 3, 28, 28)
    before = model.forward_features(x)
    with torch.no_grad():
        model.head.weight.normal_()
    assert not torch.allclose(before, model.forward_features(x))
    plain = create_model("rcn", num_classes=3, variant="s").eval()
    before = plain.forward_features(x)
    with torch.no_grad():
        plain.head.weight.normal_()
    torch.testing.assert_close(plain.forward_features(x), before, rtol=0, atol=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_training_step_lowers_the_loss(variant):
    torch.manual_seed(0)
    model = create_model("rcn", num_classes=3, variant=variant, dropout=0.0).train()
    x, y = torch.rand(16, 3, 28, 28), torch.arange(16) % 3
    optimiser = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    before = nn.functional.cross_entropy(model(x), y)
    before.backward()
    optimiser.step()
    with torch.no_grad():
        after = nn.functional.cross_entropy(model(x), y)
    assert after < before - 1e-4, (before.item(), after.item())


def test_an_unknown_variant_lists_the_known_ones():
    with pytest.raises(ConfigError, match="'a', 's', 'w', 'p', 'c'"):
        create_model("rcn", num_classes=3, variant="f")
