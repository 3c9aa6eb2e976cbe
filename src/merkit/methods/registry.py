"""Methods registered by name: ``create_method(name, **params)``, ``list_methods()``."""

from __future__ import annotations

from merkit.errors import check_choice, configured
from merkit.methods.base import Method

_METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: register ``cls`` under ``cls.name``."""
    _METHODS[cls.name] = cls
    return cls


def list_methods() -> list[type[Method]]:
    return [_METHODS[k] for k in sorted(_METHODS)]


def method_class(name: str) -> type[Method]:
    return _METHODS[check_choice("method", name, _METHODS)]


def create_method(name: str, **params) -> Method:
    """A new, unfitted method; unknown parameter names, or values of the wrong type, get a ConfigError."""
    return configured(method_class(name), params, f"method {name!r}")
