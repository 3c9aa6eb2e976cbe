"""Content-addressed cache of preprocessing results.

A result is keyed by the clip's content (the SHA-256 of its frame files) and the step's name and
parameters, stored as ``.npy`` and written atomically, so runs and methods share results,
parallel workers never see half a file, and an interrupted run keeps what it finished.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from merkit.errors import MerkitError
from merkit.io.atomic import atomic_write_bytes, atomic_write_text

_FINGERPRINTS: dict[str, str] = {}


def default_cache_dir() -> Path:
    """``$MERKIT_CACHE``, else ``~/.cache/merkit``."""
    return Path(os.environ.get("MERKIT_CACHE", Path.home() / ".cache" / "merkit"))


class Cache:
    """Results of preprocessing steps under ``root``, one ``.npy`` file per (step, clip, params)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def fingerprint(self, clip) -> str:
        """Content hash of a clip's frames (:meth:`Clip.fingerprint`).

        Hashing every frame is the costly part of a cache lookup, so the hash is remembered, in
        memory and under ``fingerprints/``, against the files' (path, size, modification time):
        a changed file changes that signature and is hashed again.
        """
        if not clip.frame_paths:  # frames held in memory: hash them (no files to remember them by)
            return clip.fingerprint()
        files = (*clip.frame_paths, *filter(None, [getattr(clip, "face_image", "")]))  # a clip's face image is read too
        signature = "\n".join(f"{p}\t{st.st_size}\t{st.st_mtime_ns}" for p in files for st in [os.stat(p)])
        key = hashlib.sha256(signature.encode()).hexdigest()
        if key not in _FINGERPRINTS:
            path = self.root / "fingerprints" / key[:2] / key
            if path.is_file():
                _FINGERPRINTS[key] = path.read_text()
            else:
                _FINGERPRINTS[key] = clip.fingerprint()
                atomic_write_text(path, _FINGERPRINTS[key])
        return _FINGERPRINTS[key]

    def path(self, step: str, clip, params: Mapping) -> Path:
        key = json.dumps({"clip": self.fingerprint(clip), "params": params}, sort_keys=True, default=str)
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / step / digest[:2] / f"{digest}.npy"

    def load(self, step: str, clip, params: Mapping) -> np.ndarray | None:
        """The stored result, or None if there is none (or it is damaged and must be computed again)."""
        path = self.path(step, clip, params)
        if path.is_file():
            try:
                return np.load(path, allow_pickle=False)
            except (ValueError, OSError, EOFError):
                return None
        return None

    def get(self, step: str, clip, params: Mapping, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
        """The cached result, or ``compute()`` stored; the flag says whether it was computed now."""
        value = self.load(step, clip, params)
        return (value, False) if value is not None else (self.put(step, clip, params, compute()), True)

    def put(self, step: str, clip, params: Mapping, value) -> np.ndarray:
        """Store ``value`` for (step, clip, params) atomically; returns it as an array."""
        value = np.asarray(value)
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        atomic_write_bytes(self.path(step, clip, params), buffer.getvalue())
        return value


class MemoryCache(Cache):
    """Results kept in memory for as long as the object lives, keyed by clip id and step; nothing
    is written. For prediction on new inputs: what one input needs is computed once per call."""

    def __init__(self):
        super().__init__(os.devnull)
        self.results: dict[str, np.ndarray] = {}

    def _key(self, step: str, clip, params: Mapping) -> str:
        return json.dumps({"clip": clip.key, "step": step, "params": params}, sort_keys=True, default=str)

    def load(self, step: str, clip, params: Mapping) -> np.ndarray | None:
        return self.results.get(self._key(step, clip, params))

    def put(self, step: str, clip, params: Mapping, value) -> np.ndarray:
        self.results[self._key(step, clip, params)] = value = np.asarray(value)
        return value


class ShippedCache(MemoryCache):
    """Representations computed elsewhere (by the driver, where the data is) and shipped with the
    work: a miss is an error, since the worker may see neither the frames nor the cache folder."""

    def load(self, step: str, clip, params: Mapping) -> np.ndarray | None:
        value = super().load(step, clip, params)
        if value is None:
            raise MerkitError(
                f"No representation of {clip.key} was shipped with this task; the driver sends every "
                "clip's representation (Ray with --ray-storage driver)."
            )
        return value
