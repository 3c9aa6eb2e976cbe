"""Folds trained in lockstep are the folds trained one at a time: same initial weights, shuffles,
dropout draws, batch statistics and Adam steps, with batches of unequal sizes and counts."""

import numpy as np
import pytest
import torch

from merkit.models import create_model, fused_stem
from merkit.training.lockstep import FoldStack, train_lockstep
from merkit.training.recipe import Recipe
from merkit.training.trainer import seed_everything, tensor_batches, train

SIZES = (16, 19, 23)  # with mini-batches of 8: 2, 3 and 3 batches an epoch, the last ones 3 and 7 clips


def recipe(epochs, tolerance):
    return Recipe(
        optimizer="adam",
        lr=1e-3,
        momentum=0.0,
        weight_decay=1e-4,
        batch_size=8,
        lr_decay=0.9,
        tolerance=tolerance,
        max_epochs=epochs,
    )


def folds_data(channels, multilabel=False):
    g = torch.Generator().manual_seed(5)
    targets = (
        (lambda n: (torch.rand(n, 3, generator=g) < 0.4).float())
        if multilabel
        else (lambda n: torch.randint(0, 3, (n,), generator=g))
    )
    return [(torch.rand(n, channels, 28, 28, generator=g), targets(n)) for n in SIZES]


def one_at_a_time(name, data, recipe, multilabel=False):
    loss = (
        (lambda m, logits, y: torch.nn.functional.binary_cross_entropy_with_logits(logits, y)) if multilabel else None
    )
    networks, histories = [], []
    for f, (x, y) in enumerate(data):
        rng = seed_everything(100 + f)
        network = create_model(name, num_classes=3)
        histories.append(train(network, tensor_batches(x, y, recipe.batch_size), recipe, rng=rng, loss_fn=loss))
        networks.append(network)
    return networks, histories


def in_lockstep(name, data, recipe, multilabel=False):
    networks, generators, rngs = [], [], []
    for f in range(len(data)):
        rngs.append(seed_everything(100 + f))
        networks.append(create_model(name, num_classes=3))
        generators.append(torch.Generator())
        generators[-1].set_state(torch.get_rng_state())
    stack = FoldStack(networks, generators)
    histories = train_lockstep(stack, networks[0].forward_folds, data, recipe, rngs=rngs, multilabel=multilabel)
    stack.unstack_into(networks)
    return networks, histories


# Up to float rounding, for a few epochs: later a max-pooling tie or a ReLU at 0 decided the other
# way by a rounding turns it into a difference of 1e-4 (action units, epoch 5).
@pytest.mark.parametrize(
    "name,channels,multilabel,epochs,tolerance,weights_atol",
    [
        ("ststnet", 3, False, 4, 0.0, 1e-5),  # the fused kernel alone; its dropout draws reproduced
        ("ststnet", 3, True, 4, 0.0, 1e-5),  # action units: binary cross-entropy per output
        ("ststnet", 3, False, 5, 0.12, 1e-5),  # folds stop at their own epochs (here after 5, 4 and 2)
        (
            "offapexnet",
            2,
            False,
            4,
            0.0,
            2e-4,
        ),  # PyTorch's dropout; Adam's first steps magnify rounding in its large layers
    ],
)
def test_lockstep_equals_training_each_fold_alone(name, channels, multilabel, epochs, tolerance, weights_atol):
    torch.set_num_threads(1)
    data = folds_data(channels, multilabel)
    alone, alone_histories = one_at_a_time(name, data, recipe(epochs, tolerance), multilabel)
    together, histories = in_lockstep(name, data, recipe(epochs, tolerance), multilabel)
    if tolerance:
        assert len({len(h) for h in alone_histories}) == len(SIZES), "each fold must stop at its own epoch"
    for f in range(len(SIZES)):
        assert len(histories[f]) == len(alone_histories[f])
        np.testing.assert_allclose(histories[f], alone_histories[f], rtol=1e-5)
        for (key, expected), value in zip(alone[f].state_dict().items(), together[f].state_dict().values()):
            torch.testing.assert_close(value, expected, rtol=0, atol=weights_atol, msg=f"fold {f}, {key}")
        assert not torch.equal(together[f].head.weight, together[(f + 1) % len(SIZES)].head.weight)


def test_dropout_factors_are_the_kernels_draws():
    seeds = torch.tensor([0, 12345, 2**62 - 1])
    factors = fused_stem.dropout_factors(seeds, 2, 0.3)
    assert factors.shape == (3, 2, 16, fused_stem.PH, fused_stem.PW)
    threshold, keep = np.uint32(int(0.3 * 2**32)), np.empty(fused_stem.P * 16, np.float32)
    for f, seed in enumerate(seeds.tolist()):
        for n in range(2):
            fused_stem._draws(np.uint64(seed), n, threshold, np.float32(1 / 0.7), keep)
            np.testing.assert_array_equal(
                factors[f, n].flatten(1).numpy(), keep.reshape(-1, 16).T
            )  # the kernel's: channels last
    assert abs((factors > 0).float().mean().item() - 0.7) < 0.03
    # splitmix64 by hand: the first output after seed 0 is 0xE220A8397B1DCDAF; its low half is map 0's draw at
    # clip 0, position 0, and its high half map 1's
    low, high = 0x7B1DCDAF, 0xE220A839
    for k, draw in ((0, low), (1, high)):
        for drop, kept in (
            (draw / 2**32 - 1e-6, True),
            (draw / 2**32 + 1e-6, False),
        ):  # kept when the draw >= the threshold
            assert (fused_stem.dropout_factors(torch.tensor([0]), 1, drop)[0, 0, k, 0, 0].item() > 0) == kept


def test_lockstep_trains_in_full_float32_and_restores_the_setting():
    seen = []
    networks = [create_model("ststnet", num_classes=3) for _ in range(2)]
    stack = FoldStack(networks, [torch.Generator() for _ in networks])

    def forward(stack, x, valid):
        seen.append(torch.backends.cudnn.conv.fp32_precision)
        return networks[0].forward_folds(stack, x, valid)

    before = torch.backends.cudnn.conv.fp32_precision
    train_lockstep(stack, forward, folds_data(3)[:2], recipe(1, 0.0), rngs=[np.random.default_rng(0)] * 2)
    assert set(seen) == {"ieee"}, "cuDNN's convolutions must not round to TF32"
    assert torch.backends.cudnn.conv.fp32_precision == before
