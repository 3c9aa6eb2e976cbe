import pytest
import torch
from torch import nn

from merkit.errors import ConfigError
from merkit.models import create_model
from merkit.models.htnet import from_blocks, to_blocks

SMALL = {"dim": 8, "heads": 1, "block_repeats": (1, 1, 1)}


def test_paper_sizes_shapes_and_weights():
    """Patches of 7 on 28x28 (a 4x4 token map), widths 256, 512, 1024 and (2, 2, 10) blocks."""
    model = create_model("htnet", num_classes=3)
    assert model(torch.rand(2, 3, 28, 28)).shape == (2, 3) and model.forward_features(
        torch.rand(2, 3, 28, 28)
    ).shape == (2, 1024)
    assert [len(t.attentions) for t in model.transformers] == [2, 2, 10]
    assert [t.attentions[0].heads for t in model.transformers] == [3, 6, 12]

    def level(width, depth, heads):  # one level's transformer: position, 2 norms, qkv, out, feed-forward, per block
        inner = heads * (width // heads)
        return 1 + depth * (4 * width + width * 3 * inner + inner * width + width + 2 * 4 * width * width + 5 * width)

    weights = (
        (147 * 256 + 256)
        + level(256, 2, 3)
        + level(512, 2, 6)
        + level(1024, 10, 12)
        + (256 * 9 * 512 + 512 + 2 * 512)
        + (512 * 9 * 1024 + 1024 + 2 * 1024)
        + 2 * 1024
        + (1024 * 3 + 3)
    )
    assert sum(p.numel() for p in model.parameters()) == weights


def test_blocks_round_trip_and_hold_neighbouring_tokens():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    blocks = to_blocks(x, 2)
    assert blocks.shape == (8, 4, 3)
    torch.testing.assert_close(blocks[1, :, 0], x[0, 0, :2, 2:].reshape(-1))  # the first image's top-right 2x2
    torch.testing.assert_close(from_blocks(blocks, 2, (4, 4)), x, rtol=0, atol=0)


def test_the_first_level_attends_within_each_patch_of_a_facial_area():
    """Change the left eye's area (top-left 14x14) only: the first level's tokens of the other
    three areas stay the same (local attention); the output changes (the aggregation mixes)."""
    torch.manual_seed(0)
    model = create_model("htnet", num_classes=3, **SMALL).eval()
    x = torch.rand(1, 3, 28, 28)
    y = x.clone()
    y[:, :, :14, :14] = torch.rand(1, 3, 14, 14)
    seen = []
    model.transformers[0].register_forward_hook(lambda m, args, out: seen.append(out))  # 16 blocks of one 7x7 patch
    assert not torch.allclose(model(x), model(y))
    first, second = (from_blocks(out, 4, (4, 4)) for out in seen)
    changed = (first - second).abs().amax(dim=(0, 1)) > 0
    assert changed.tolist() == [[True, True, False, False], [True, True, False, False], [False] * 4, [False] * 4]


def test_a_training_step_lowers_the_loss():
    torch.manual_seed(0)
    model = create_model("htnet", num_classes=3, **SMALL).train()
    x, y = torch.rand(16, 3, 28, 28), torch.arange(16) % 3
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = nn.functional.cross_entropy(model(x), y)
    before.backward()
    optimiser.step()
    with torch.no_grad():
        after = nn.functional.cross_entropy(model(x), y)
    assert after < before - 1e-3, (before.item(), after.item())


def test_sizes_that_do_not_divide_are_refused():
    with pytest.raises(ConfigError, match="divisible"):
        create_model("htnet", num_classes=3, input_size=30)
    with pytest.raises(ConfigError, match="one number per level"):
        create_model("htnet", num_classes=3, block_repeats=(2, 2))
