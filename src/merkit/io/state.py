"""Fitted state on disk without pickle: arrays in safetensors, scikit-learn estimators through skops.

Loading either never runs code from the file: safetensors holds raw tensors and a JSON header;
skops rebuilds only the types merkit's classifiers are made of (``TRUSTED_ESTIMATOR_TYPES`` plus
skops' own safe defaults) and refuses any other type the file names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from merkit.errors import MerkitError
from merkit.io.atomic import atomic_write_bytes

# Types skops does not trust by default that merkit's classifiers (calibrated SVM pipelines,
# nearest neighbours) are built of.
TRUSTED_ESTIMATOR_TYPES = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.frozen._frozen.FrozenEstimator",
)


def write_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray], metadata: dict | None = None) -> Path:
    """Write named arrays (and a JSON-able ``metadata`` dict) as one safetensors file, atomically."""
    from safetensors.numpy import save

    contiguous = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
    return atomic_write_bytes(path, save(contiguous, metadata={"merkit": json.dumps(metadata or {})}))


def read_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and metadata that :func:`write_arrays` wrote."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = json.loads((f.metadata() or {}).get("merkit", "{}"))
            if not isinstance(metadata, dict):
                raise ValueError("its merkit metadata is not a JSON object")
            return {name: f.get_tensor(name) for name in f.keys()}, metadata
    except Exception as error:  # safetensors raises its own error types for a damaged header
        raise MerkitError(
            f"{path} is not a readable safetensors file ({error}); copy or train the model again."
        ) from None


def write_estimator(path: str | os.PathLike, estimator) -> Path:
    """Write a fitted scikit-learn estimator with skops, atomically."""
    import skops.io as sio

    return atomic_write_bytes(path, sio.dumps(estimator))


def read_estimator(path: str | os.PathLike):
    """The estimator :func:`write_estimator` wrote; a file naming any other type is refused."""
    import skops.io as sio

    data = Path(path).read_bytes()
    try:
        untrusted = set(sio.get_untrusted_types(data=data)) - set(TRUSTED_ESTIMATOR_TYPES)
    except Exception as error:
        raise MerkitError(f"{path} is not a readable skops file ({error}); copy or train the model again.") from None
    if untrusted:
        raise MerkitError(
            f"{path} names types merkit does not load: {', '.join(sorted(untrusted))}. "
            "Loading them could run code from the file; only load models merkit wrote."
        )
    try:
        return sio.loads(data, trusted=list(TRUSTED_ESTIMATOR_TYPES))
    except Exception as error:
        raise MerkitError(f"{path} could not be read ({error}); copy or train the model again.") from None
