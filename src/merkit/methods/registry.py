"""Methods registered by name: ``create_method(name, **params)``, ``list_methods()``."""

from __future__ import annotations

import dataclasses

from merkit.errors import ConfigError, check_choice
from merkit.methods.base import Method

_METHODS: dict[str, type[Method]] = {}
BOOLEAN_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: register ``cls`` under ``cls.name``."""
    _METHODS[cls.name] = cls
    return cls


def list_methods() -> list[type[Method]]:
    return [_METHODS[k] for k in sorted(_METHODS)]


def method_class(name: str) -> type[Method]:
    return _METHODS[check_choice("method", name, _METHODS)]


def create_method(name: str, **params) -> Method:
    """A new, unfitted method; unknown parameter names get a ConfigError listing the known ones."""
    cls = method_class(name)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(f"Method {name!r} has no parameter {', '.join(unknown)}; its parameters are: {', '.join(known)}.")
    return cls(**{k: _coerce(known[k], v, name) for k, v in params.items()})


def _coerce(field: dataclasses.Field, value, method: str):
    """Bring a value given as text (from the command line), or as a list (a tuple read back from
    JSON: a run's config, a bundle), to the type of the field's default."""
    default = field.default
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    if not isinstance(value, str) or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            word = value.strip().lower()
            if word not in BOOLEAN_WORDS:
                raise ConfigError(f"Parameter {field.name}={value!r} of method {method!r} must be a boolean: "
                                  f"one of {', '.join(sorted(BOOLEAN_WORDS, key=str))}.")
            return BOOLEAN_WORDS[word]
        if isinstance(default, tuple):
            return tuple(type(default[0])(v) for v in value.replace("x", ",").split(","))
        if isinstance(default, (int, float)):
            return type(default)(value)
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(f"Parameter {field.name}={value!r} of method {method!r} should look like {default!r}.") from None
    return value
