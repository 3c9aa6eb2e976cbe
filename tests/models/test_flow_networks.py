import pytest
import torch
from torch import nn

from merkit.models import create_model, fused_pool_conv, fused_stem


def watched(monkeypatch, module, name):
    """``module.name``, a fused kernel's entry, which must compile here and which the model must use."""
    if not module.compiled():
        pytest.fail(f"numba could not compile {module.__name__}")
    used, original = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a: used.append(1) or original(*a))
    yield used
    assert used, f"{module.__name__}.{name} was never called"


@pytest.fixture
def kernel(monkeypatch):
    yield from watched(monkeypatch, fused_stem, "fused_features")


@pytest.fixture
def sssnet_kernel(monkeypatch):
    yield from watched(monkeypatch, fused_pool_conv, "fused_block")


class ThreeStreams(nn.Module):
    """STSTNet written as its paper draws it: three separate streams, concatenated."""

    def __init__(self, fused):
        super().__init__()
        self.convs, self.norms, start = nn.ModuleList(), nn.ModuleList(), 0
        for width in fused.streams:
            conv, norm = nn.Conv2d(3, width, 3, padding=2), nn.BatchNorm2d(width)
            with torch.no_grad():
                conv.weight.copy_(fused.conv.weight[start : start + width])
                conv.bias.copy_(fused.conv.bias[start : start + width])
                norm.weight.copy_(fused.norm.weight[start : start + width])
                norm.bias.copy_(fused.norm.bias[start : start + width])
            self.convs.append(conv)
            self.norms.append(norm)
            start += width
        self.head = fused.head

    def forward(self, x):
        streams = [
            nn.functional.max_pool2d(norm(torch.relu(conv(x))), 3, 3, 1) for conv, norm in zip(self.convs, self.norms)
        ]
        return self.head(nn.functional.avg_pool2d(torch.cat(streams, 1), 2).flatten(1))


def assert_same_gradients(fused, exact) -> None:
    """Each parameter's gradient in ``fused`` (float32) within 1e-5 of ``exact``'s (float64), relative to its largest."""
    for (name, a), b in zip(fused.named_parameters(), exact.parameters()):
        error = (a.grad.double() - b.grad).abs().max() / b.grad.abs().max()
        assert error < 1e-5, (name, error)


def test_ststnet_is_the_three_stream_network():
    torch.manual_seed(0)
    fused = create_model("ststnet", num_classes=3, dropout=0.0).double()
    with torch.no_grad():
        fused.norm.weight.uniform_(-1, 1)  # negative scales too: pooling must follow normalisation
    reference = ThreeStreams(fused).double()
    x = torch.rand(6, 3, 28, 28, dtype=torch.float64)
    out, expected = fused(x), reference(x)
    torch.testing.assert_close(out, expected)
    out.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(fused.conv.weight.grad[3:8], reference.convs[1].weight.grad)
    torch.testing.assert_close(fused.norm.weight.grad[8:], reference.norms[2].weight.grad)
    assert fused.forward_features(x).shape == (6, 16 * 5 * 5)
    assert sum(p.numel() for p in fused.parameters()) == 16 * 27 + 16 + 2 * 16 + 400 * 3 + 3


def test_ststnet_dropout_only_in_training():
    model = create_model("ststnet", num_classes=3)
    x = torch.rand(4, 3, 28, 28)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_offapexnet_streams_read_u_and_v_only():
    model = create_model("offapexnet", num_classes=3).eval()
    x = torch.rand(2, 2, 28, 28)
    assert model.u_stream(x[:, :1]).shape == (2, 16 * 7 * 7)
    seen = {}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda m, args, out, name=name: seen.__setitem__(name, args[0].clone())
        )
        for name in ("u_stream", "v_stream")
    ]
    model(x)
    for hook in hooks:
        hook.remove()
    torch.testing.assert_close(seen["u_stream"], x[:, :1], rtol=0, atol=0)  # what each stream was given
    torch.testing.assert_close(seen["v_stream"], x[:, 1:], rtol=0, atol=0)
    with pytest.raises(RuntimeError):
        model(torch.rand(2, 2, 32, 32))  # the fully connected layer is sized for input_size
    assert create_model("offapexnet", num_classes=3, input_size=32)(torch.rand(2, 2, 32, 32)).shape == (2, 3)


def test_fused_stem_is_the_same_function_as_pytorchs_layers(kernel):
    torch.manual_seed(3)
    fused = create_model("ststnet", num_classes=3, dropout=0.0)
    with torch.no_grad():
        fused.norm.weight.uniform_(-1, 1)  # maps with a negative scale pool their minimum
        fused.norm.bias.uniform_(-1, 1)
    exact = create_model("ststnet", num_classes=3, dropout=0.0, fused=False)
    exact.load_state_dict(fused.state_dict())
    exact.double()  # PyTorch's layers in float64: the reference
    x, g = torch.rand(37, 3, 28, 28), torch.randn(37, 3)
    out = fused(x)
    expected = exact(x.double())
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)
    (out * g).sum().backward()
    (expected * g.double()).sum().backward()
    assert_same_gradients(fused, exact)  # PyTorch's own float32 layers: up to 6e-5 here
    torch.testing.assert_close(fused.norm.running_mean.double(), exact.norm.running_mean)
    torch.testing.assert_close(fused.norm.running_var.double(), exact.norm.running_var)
    fused.eval()
    exact.eval()
    torch.testing.assert_close(fused(x).double(), exact(x.double()), rtol=1e-5, atol=1e-5)


def test_fused_dropout_drops_half_and_keeps_the_expectation(kernel):
    torch.manual_seed(0)
    model = create_model("ststnet", num_classes=3)  # dropout 0.5
    x = torch.rand(8, 3, 28, 28)
    model.norm.momentum = 0.0  # leave the running statistics alone
    torch.manual_seed(1)
    first = model.forward_features(x)
    torch.manual_seed(1)
    torch.testing.assert_close(model.forward_features(x), first)  # seeded: the same mask
    draws = torch.stack([model.forward_features(x) for _ in range(1600)]).detach()
    dropped_all_four = (draws == 0).float().mean().item()  # each feature averages 4 values: (1/2)^4
    assert abs(dropped_all_four - 1 / 16) < 0.005
    model.dropout.p = 0.0
    assert (draws.mean(0) - model.forward_features(x)).abs().mean() < 0.03  # unbiased (sampling error ~0.02 here)


@pytest.mark.parametrize("size,sides", [(28, [24, 8, 6, 3]), (64, [60, 20, 18, 9])])
def test_sssnet_layer_shapes_and_size(size, sides):
    """5x5 conv (32), pool 3, 3x3 conv (64), pool 2, no padding; FC 256; MEB's size is 64x64."""
    model = create_model("sssnet", num_classes=3, input_size=size)
    shapes = []
    for index in (0, 2, 5, 7):  # the two convolutions and the two poolings
        model.stem[index].register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    x = torch.rand(4, 3, size, size)
    with torch.no_grad():  # PyTorch's layers (in training, 28x28 goes through the fused first block)
        assert model(x).shape == (4, 3) and model.forward_features(x).shape == (4, 256)
    assert shapes[:4] == [
        (32, sides[0], sides[0]),
        (32, sides[1], sides[1]),
        (64, sides[2], sides[2]),
        (64, sides[3], sides[3]),
    ]
    weights = (
        (3 * 25 * 32 + 32) + 2 * 32 + (32 * 9 * 64 + 64) + 2 * 64 + (64 * sides[3] ** 2 * 256 + 256) + (256 * 3 + 3)
    )
    assert sum(p.numel() for p in model.parameters()) == weights
    with pytest.raises(ValueError, match="at least 14x14"):
        create_model("sssnet", num_classes=3, input_size=12)


def test_a_sssnet_training_step_lowers_the_loss():
    torch.manual_seed(0)
    model = create_model("sssnet", num_classes=3, dropout=0.0).train()  # no dropout: the same function before and after
    x, y = torch.rand(16, 3, 28, 28), torch.arange(16) % 3
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-3)  # MEB's recipe
    before = nn.functional.cross_entropy(model(x), y)
    before.backward()
    optimiser.step()
    with torch.no_grad():
        after = nn.functional.cross_entropy(model(x), y)
    assert after < before - 1e-3, (before.item(), after.item())


def test_sssnet_dropout_only_in_training():
    torch.manual_seed(0)
    model, x = create_model("sssnet", num_classes=3), torch.rand(4, 3, 28, 28)
    assert not torch.equal(model(x), model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


def test_sssnet_fused_first_block_is_the_same_function_as_pytorchs_layers(sssnet_kernel):
    """Forward and every gradient against PyTorch's layers in float64, with the same dropout
    masks (PyTorch draws them, in the same order); flat inputs make every window a tie."""
    torch.manual_seed(3)
    fused = create_model("sssnet", num_classes=3)
    exact = create_model("sssnet", num_classes=3, fused=False)
    exact.load_state_dict(fused.state_dict())
    exact.double()
    x, g = torch.rand(37, 3, 28, 28) - 0.3, torch.randn(37, 3)
    x[0] = 0.0  # every position the same: the first of each window is the argmax
    x[1, :, 9:] = 0.5  # a flat region
    torch.manual_seed(5)
    out = fused(x)
    torch.manual_seed(5)
    expected = exact(x.double())
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)
    (out * g).sum().backward()
    (expected * g.double()).sum().backward()
    assert_same_gradients(fused, exact)
    assert fused.stem[0].weight.grad.abs().max() > 0
    torch.testing.assert_close(fused.stem[3].running_var.double(), exact.stem[3].running_var)
    assert fused_pool_conv.fused_block(x[:1], fused.stem[0]).is_contiguous(memory_format=torch.channels_last)


def test_sssnet_fused_training_step_lowers_the_loss_and_fused_false_keeps_pytorchs_layers(sssnet_kernel):
    torch.manual_seed(0)
    model = create_model("sssnet", num_classes=3, dropout=0.0)
    x, y = torch.rand(16, 3, 28, 28), torch.arange(16) % 3
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-3)
    before = nn.functional.cross_entropy(model(x), y)
    before.backward()
    optimiser.step()
    after = nn.functional.cross_entropy(model(x), y)
    assert after < before - 1e-3, (before.item(), after.item())
    calls = len(sssnet_kernel)
    create_model("sssnet", num_classes=3, fused=False)(x).sum().backward()
    wanted = x.clone().requires_grad_()  # an input gradient, which the kernel does not compute
    model(wanted).sum().backward()
    assert len(sssnet_kernel) == calls == 2 and wanted.grad.abs().sum() > 0
