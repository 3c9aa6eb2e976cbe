import numpy as np
import pytest
import torch

from merkit.errors import ConfigError
from merkit.training.trainer import tensor_batches, torch_device, torch_threads


def test_tensor_batches_cover_every_sample_once_per_pass_in_a_new_order():
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    batches = tensor_batches(x, y, batch_size=4)
    rng = np.random.default_rng(0)
    first, second = list(batches(rng)), list(batches(rng))
    assert [len(b) for b, _ in first] == [4, 4, 2]
    for one_pass in (first, second):
        seen = torch.cat([b for _, b in one_pass])
        assert sorted(seen.tolist()) == list(range(10))
        assert all(torch.equal(b[:, 0].long(), labels) for b, labels in one_pass), "inputs stay with their labels"
    assert not torch.equal(torch.cat([b for _, b in first]), torch.cat([b for _, b in second]))


def test_torch_threads_is_restored():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message where PyTorch sees no GPU")
def test_a_gpu_where_there_is_none_is_a_clear_error():
    with pytest.raises(ConfigError, match="device=cuda asks for a GPU, but .* or leave device=cpu"):
        torch_device("cuda")
    assert torch_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="not a device"):
        torch_device("gpu0")


def test_the_learning_rate_decays_every_lr_step_passes():
    """One weight w, loss = w (gradient 1), plain SGD: each pass moves w by minus the learning
    rate, which halves after every second pass: 0.1, 0.1, 0.05, 0.05, 0.025."""
    from merkit.training.recipe import Recipe
    from merkit.training.trainer import train

    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    weights = []
    recipe = Recipe(
        optimizer="sgd",
        lr=0.1,
        momentum=0.0,
        weight_decay=0.0,
        batch_size=1,
        lr_decay=0.5,
        tolerance=0.0,
        max_epochs=5,
        lr_step=2,
    )
    batches = tensor_batches(torch.ones(1, 1), torch.zeros(1), 1)
    train(
        model,
        batches,
        recipe,
        rng=np.random.default_rng(0),
        loss_fn=lambda m, out, y: out.sum(),
        after_epoch=lambda n: weights.append(model.weight.item()),
    )
    np.testing.assert_allclose(np.diff([0.0, *weights]), [-0.1, -0.1, -0.05, -0.05, -0.025], rtol=1e-6)
