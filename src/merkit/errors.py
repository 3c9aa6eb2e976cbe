"""Errors a user can act on, and the shared validation helpers that raise them.

Every message names what is wrong, where (file, row, clip, parameter) and how to fix it; the CLI
prints it as it is and exits non-zero, without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


class MerkitError(Exception):
    """Base class of every error merkit raises for bad input or configuration."""


class DatasetError(MerkitError):
    """A dataset on disk does not match its layout (missing files, columns, frames...).

    ``problems`` lists every problem found, not only the first.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()):
        self.problems = list(problems)
        if self.problems:
            shown = self.problems[:20]
            more = len(self.problems) - len(shown)
            message = message + "\n" + "\n".join(f"  - {p}" for p in shown)
            if more:
                message += f"\n  ... and {more} more"
        super().__init__(message)


class DatasetWarning(UserWarning):
    """A dataset was read with some annotation rows skipped (release errata, missing clip folders);
    the message lists every skipped row. ``strict=True`` makes these rows a DatasetError instead."""


class ConfigError(MerkitError, ValueError):
    """A parameter has a value merkit cannot use."""


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise a ConfigError listing them."""
    allowed = list(allowed)
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ConfigError(f"Unknown {name} {value!r}; choose one of: {options}.")
    return value


def check_array(name: str, array: Any, *, ndim: Sequence[int], dtype_kind: str = "biuf") -> np.ndarray:
    """Return ``array`` as an ndarray after checking its dimensionality and numeric kind."""
    array = np.asarray(array)
    if array.ndim not in ndim:
        dims = " or ".join(str(d) for d in ndim)
        raise ConfigError(f"The parameter `{name}` must be a {dims}-dimensional array; got shape {array.shape}.")
    if array.dtype.kind not in dtype_kind:
        raise ConfigError(f"The parameter `{name}` must be numeric; got dtype {array.dtype}.")
    return array


def check_positive_ints(name: str, values: Sequence[int], length: int) -> tuple[int, ...]:
    """Return ``values`` as a tuple of ``length`` positive ints, else raise a ConfigError."""
    values = tuple(values)
    if len(values) != length or not all(isinstance(v, (int, np.integer)) and v > 0 for v in values):
        raise ConfigError(f"The parameter `{name}` must be {length} positive integers; got {values}.")
    return tuple(int(v) for v in values)


BOOLEAN_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def configured(cls: type, params: dict, what: str):
    """An instance of the dataclass ``cls`` from ``params``: unknown names get a ConfigError listing
    the known ones, and a value given as text (from the command line) or as a list (a tuple read
    back from JSON) is brought to the type of the field's default. ``what`` names the thing in
    messages, e.g. ``method 'lbptop_svm'``."""
    import dataclasses

    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(
            f"{what[0].upper()}{what[1:]} has no parameter {', '.join(unknown)}; its parameters are: {', '.join(known)}."
        )
    return cls(**{k: _coerce(known[k], v, what) for k, v in params.items()})


def _coerce(field, value, what: str):
    default = field.default
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    if not isinstance(value, str) or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            word = value.strip().lower()
            if word not in BOOLEAN_WORDS:
                raise ConfigError(
                    f"Parameter {field.name}={value!r} of {what} must be a boolean: "
                    f"one of {', '.join(sorted(BOOLEAN_WORDS, key=str))}."
                )
            return BOOLEAN_WORDS[word]
        if isinstance(default, tuple):
            return tuple(type(default[0])(v) for v in value.replace("x", ",").split(","))
        if isinstance(default, (int, float)):
            return type(default)(value)
    except ConfigError:  # a ValueError too: keep its own message
        raise
    except ValueError:
        raise ConfigError(f"Parameter {field.name}={value!r} of {what} should look like {default!r}.") from None
    return value
