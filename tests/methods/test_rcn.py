import numpy as np
import pytest

from merkit.datasets import load
from merkit.errors import ConfigError
from merkit.methods import create_method
from merkit.preprocess.cache import Cache
from merkit.synthetic.flow_images import FlowSetConfig, write_flow_manifest


def test_rcn_trains_the_authors_recipe_and_lowers_its_loss(cache_dir, tmp_path):
    method = create_method("rcn", epochs=25, variant="p")
    recipe = method.recipe()
    assert (recipe.optimizer, recipe.lr, recipe.momentum, recipe.batch_size, recipe.lr_decay, recipe.lr_step) == (
        "sgd",
        5e-4,
        0.9,
        64,
        0.5,
        10,
    )
    assert create_method("rcn").epochs == 20 and create_method("rcn").variant == "a"
    flows = load(
        "manifest",
        root=write_flow_manifest(
            tmp_path,
            FlowSetConfig(datasets={"casme2": (3, {"negative": 5, "surprise": 5})}, amplitude=(0.6, 1.0), seed=3),
        ),
    )
    method.fit(flows, seed=0, cache=Cache(cache_dir))
    assert len(method.history_) == 25 and np.mean(method.history_[-3:]) < 0.8 * method.history_[0]
    assert method.inputs(flows, cache=Cache(cache_dir)).shape == (10, 3, 28, 28) and method.folds_together() == 1
    with pytest.raises(ConfigError, match="variant 'f'"):
        create_method("rcn", variant="f")
    with pytest.raises(ConfigError, match="one at a time"):
        create_method("rcn", folds_at_once=2)
