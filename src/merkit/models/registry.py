"""Networks registered by name: ``create_model(name, num_classes=C, **kw)``, ``list_models()``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from merkit.errors import check_choice

_MODELS: dict[str, Callable] = {}


def register_model(fn: Callable) -> Callable:
    """Decorator on a constructor ``fn(num_classes, **kw) -> nn.Module``; registered under its name."""
    _MODELS[fn.__name__] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    return sorted(name for name in _MODELS if fnmatch.fnmatch(name, pattern))


def create_model(name: str, *, num_classes: int, **kwargs):
    """A new network ``name`` with ``num_classes`` outputs."""
    return _MODELS[check_choice("model", name, _MODELS)](num_classes=num_classes, **kwargs)
