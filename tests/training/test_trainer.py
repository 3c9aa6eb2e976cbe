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
