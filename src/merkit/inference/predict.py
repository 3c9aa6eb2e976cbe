"""Apply a trained model to new inputs: a clip, a folder of frames, a video file or an array.

The input becomes a :class:`~merkit.datasets.Clip` and goes through the very representation and
method code that training used, so a clip predicted from its frame folder gets exactly the
probabilities the fitted model gives it in memory.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from merkit.datasets.base import METADATA_COLUMNS, Clip, ClipDataset, make_metadata
from merkit.errors import DatasetError, MerkitError
from merkit.io.frames import list_frames
from merkit.io.video import count_video_frames, video_fps
from merkit.methods.base import Method
from merkit.preprocess.apex import estimate_apex
from merkit.preprocess.cache import Cache, MemoryCache

Position = int | float | str | None  # a frame (int, or text like "12"), or seconds (float, or text like "0.4s")


def frame_position(value: Position, fps: float | None, what: str, source: str) -> int | None:
    """A position as a 0-based frame: ints and digit strings are frames; floats and ``"<x>s"``
    strings are seconds, converted with ``fps`` (rounded to the nearest frame).

    Examples
    --------
    >>> frame_position("12", None, "onset", "clip.mp4"), frame_position("0.25s", 200, "apex", "clip.mp4")
    (12, 50)
    >>> frame_position(0.1, 30, "offset", "clip.mp4")
    3
    """
    if value is None:
        return None
    seconds = None
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            if text.endswith("s"):
                seconds = float(text[:-1])
            else:
                value = int(text)
        except ValueError:
            raise MerkitError(
                f"--{what} {value!r} for {source} is neither a frame (12) nor a time in seconds (0.4s)."
            ) from None
    elif isinstance(value, float):
        seconds = value
    if seconds is not None:
        if not fps or fps <= 0:
            raise MerkitError(f"--{what} {value!r} for {source} is a time, but the frame rate is unknown; pass --fps.")
        return int(round(seconds * fps))
    return int(value)


def as_clip(
    x, *, onset: Position = None, apex: Position = None, offset: Position = None, fps: float | None = None
) -> Clip:
    """``x`` as a Clip: a Clip, a frame folder (numeric order), a video file (PyAV) or a uint8
    (T, H, W, 3) RGB array. Missing ``onset``/``offset`` are the first and last frames."""
    if isinstance(x, Clip):
        base, source, n = x, x.key, x.n_frames
        fps = fps or x.fps
    elif isinstance(x, np.ndarray):
        if x.ndim != 4 or x.shape[3] != 3 or x.dtype != np.uint8:
            raise MerkitError(f"An array input must be uint8 (T, H, W, 3) RGB frames; got {x.dtype} {x.shape}.")
        source, n = f"array{tuple(x.shape)}", len(x)
        base = _clip(source, "array", (), n, fps, array=x)
    elif isinstance(x, (str, os.PathLike)):
        path = Path(x)
        source = str(path)
        if path.is_dir():
            frames = tuple(list_frames(path))
            if not frames:
                raise DatasetError(f"Folder {path} holds no frames (.jpg, .png, .bmp, .tif).")
            base, n = _clip(source, "frames", frames, len(frames), fps), len(frames)
        elif path.is_file():
            n = count_video_frames(path)
            if n == 0:
                raise DatasetError(f"Video {path} holds no frames.")
            fps = fps or video_fps(path)
            base = _clip(source, "video", (path,), n, fps)
        else:
            raise DatasetError(f"{path} is neither a video file nor a folder of frames.")
    else:
        raise MerkitError(
            f"Cannot predict from a {type(x).__name__}: give a Clip, a frame folder, a video file "
            "or a uint8 (T, H, W, 3) array."
        )
    # what is not given is the base's: a Clip's own span and apex; a file's or array's whole length
    first = frame_position(onset, fps, "onset", source)
    last = frame_position(offset, fps, "offset", source)
    peak = frame_position(apex, fps, "apex", source)
    first = base.onset if first is None else first
    last = base.offset if last is None else last
    if peak is None and onset is None and offset is None:  # a new span would move the apex: estimate it anew
        peak = base.apex
    if not 0 <= first < n or not 0 <= last < n:
        raise MerkitError(
            f"{source} has {n} frames (0 to {n - 1}); onset {first} and offset {last} must lie within them."
        )
    if first > last:
        raise MerkitError(f"{source}: the onset (frame {first}) comes after the offset (frame {last}); swap them.")
    if peak is not None and not first <= peak <= last:
        raise MerkitError(f"{source}: the apex (frame {peak}) lies outside onset..offset ({first}..{last}).")
    return dataclasses.replace(base, onset=first, apex=peak, offset=last, fps=float(fps or 0.0))


def _clip(source: str, kind: str, paths: tuple, n_frames: int, fps: float | None, array=None) -> Clip:
    return Clip(
        dataset="input",
        subject="-",
        clip=source,
        emotion="",
        label="",
        onset=0,
        apex=None,
        offset=n_frames - 1,
        fps=float(fps or 0.0),
        frame_paths=paths,
        n_frames=n_frames,
        source=source,
        kind=kind,
        array=array,
    )


def ready_clip(method: Method, clip: Clip) -> Clip:
    """``clip`` checked against what ``method`` needs, its apex estimated by motion if it needs one."""
    length = clip.offset - clip.onset + 1
    if length < method.min_frames:
        raise MerkitError(
            f"{clip.source or clip.key}: onset..offset holds {length} frame(s); {method.name} needs at "
            f"least {method.min_frames}. Give a longer clip or wider --onset/--offset."
        )
    if method.needs_apex and clip.apex is None:
        clip = dataclasses.replace(
            clip, apex=estimate_apex(clip.read(grey=True), clip.onset, clip.offset, method="motion")
        )
    return clip


def one_clip_dataset(clip: Clip, classes: Sequence[str]) -> ClipDataset:
    """A ClipDataset of ``clip`` alone (the form every method's ``predict_proba`` takes)."""
    row = {f: getattr(clip, f) for f in METADATA_COLUMNS}
    return ClipDataset(
        clip.dataset, make_metadata([row]), [clip.frame_paths], tuple(classes), labels="input", arrays=[clip.array]
    )


class Model:
    """A fitted method with what it was trained on; ``predict_proba`` takes any input.

    Load one with :func:`merkit.load_model`; ``classes`` are the columns of ``predict_proba``.
    """

    def __init__(self, method: Method, description: dict | None = None):
        self.method = method
        self.description = description or {}

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.method.classes_)

    def __repr__(self) -> str:
        trained = self.description.get("training", {}).get("dataset", "?")
        return f"Model({self.method.name!r}, classes={self.classes}, trained on {trained!r})"

    def classify(
        self,
        x,
        *,
        onset: Position = None,
        apex: Position = None,
        offset: Position = None,
        fps: float | None = None,
        cache: str | os.PathLike | Cache | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """((n_inputs,) predicted classes, (n_inputs, n_classes) probabilities) in one pass.

        ``x`` is one input or a list of them (see :func:`as_clip`); the positions apply to every
        input. Nothing is written unless ``cache`` names a cache folder. The predicted class is
        the method's decision: the most probable class for the networks, the SVM's own decision
        for the SVM methods (:class:`merkit.methods.FeatureMethod`).
        """
        inputs = x if isinstance(x, list) else [x]
        labels, rows = [], []
        for item in inputs:
            clip = as_clip(item, onset=onset, apex=apex, offset=offset, fps=fps)
            store = cache if isinstance(cache, Cache) else (Cache(cache) if cache is not None else MemoryCache())
            try:
                data = one_clip_dataset(ready_clip(self.method, clip), self.classes)
                rows.append(self.method.predict_proba(data, cache=store)[0])
                labels.append(self.method.predict(data, cache=store)[0])
            except MerkitError as error:
                raise type(error)(f"{clip.source or clip.key}: {error}") from None
        return np.asarray(labels, dtype=object), np.stack(rows)

    def predict_proba(self, x, **options) -> np.ndarray:
        """(n_inputs, n_classes) probabilities, columns in ``classes`` (arguments as :meth:`classify`)."""
        return self.classify(x, **options)[1]

    def predict(self, x, **options) -> np.ndarray:
        """(n_inputs,) the predicted class of each input (arguments as :meth:`classify`)."""
        return self.classify(x, **options)[0]

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write this model as a bundle at ``path`` (see :mod:`merkit.inference.bundle`)."""
        from merkit.inference.bundle import save

        training = self.description.get("training")
        return save(self.method, path, training=training, overwrite=overwrite)
