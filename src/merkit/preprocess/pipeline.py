"""Representations: chains of preprocessing steps whose results come from the cache.

A method asks for a representation, for example::

    Representation(Step("frames", grey=True), Step("resize", size=(128, 128)), Step("tim", n_frames=20))

and gets each clip's array from the cache, computed once and shared by every run and method
that asks for the same chain. A step's key is the clip's content and the parameters of the
chain up to it; steps marked ``keep=True`` (costly ones other chains reuse, such as alignment)
are stored too, the last step always.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from merkit.errors import check_choice
from merkit.preprocess.cache import Cache, ShippedCache

_STEPS: dict[str, Callable[..., np.ndarray]] = {}


def register_step(name: str):
    """Decorator: ``fn(data, clip, **params) -> ndarray``; ``data`` is the previous step's output."""

    def decorate(fn):
        _STEPS[name] = fn
        return fn

    return decorate


@dataclass(frozen=True)
class Step:
    name: str
    params: dict = field(default_factory=dict)
    keep: bool = False

    def __init__(self, name: str, keep: bool = False, **params):
        check_choice("preprocessing step", name, _STEPS)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "keep", keep)

    def describe(self) -> dict:
        return {"step": self.name, **self.params}


class Representation:
    """A chain of steps from a clip to an array; ``get`` returns it through the cache."""

    def __init__(self, *steps: Step, version: int = 1):
        self.steps = steps
        self.version = version

    def __repr__(self) -> str:
        return " -> ".join(json.dumps(s.describe(), default=str) for s in self.steps)

    def _key(self, upto: int) -> dict:
        return {"version": self.version, "chain": [s.describe() for s in self.steps[: upto + 1]]}

    def get(self, clip, cache: Cache) -> tuple[np.ndarray, bool]:
        """The clip's array, and whether it was computed now (False: read from the cache)."""
        last = len(self.steps) - 1
        start, data = 0, None
        for i in range(last, -1, -1):  # resume from the latest stored step
            if (i == last or self.steps[i].keep) and (
                data := cache.load("representations", clip, self._key(i))
            ) is not None:
                if i == last:
                    return data, False
                start = i + 1
                break
        for i in range(start, last + 1):
            step = self.steps[i]
            data = _STEPS[step.name](data, clip, **step.params)
            if i == last or step.keep:
                cache.put("representations", clip, self._key(i), data)
        return data, True

    def shipped(self, clips, cache: Cache) -> ShippedCache:
        """Each clip's array (from ``cache``, computed where missing) in a :class:`ShippedCache`,
        to send with work that runs where the frames and the cache cannot be read."""
        store = ShippedCache()
        for clip in clips:
            store.put("representations", clip, self._key(len(self.steps) - 1), self.get(clip, cache)[0])
        return store


def _grey_levels(values: np.ndarray) -> np.ndarray:
    """Float frames back to uint8 grey levels (rounded, clipped to 0..255)."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


@register_step("frames")
def _frames(data, clip, *, grey: bool = False, segment: str = "onset_offset"):
    """The clip's frames, uint8; ``onset_offset`` keeps onset..offset, ``all`` every frame."""
    check_choice("segment", segment, ("onset_offset", "all"))
    frames = clip.read(grey=grey)
    return frames[clip.onset : clip.offset + 1] if segment == "onset_offset" else frames


@register_step("resize")
def _resize(frames, clip, *, size: tuple[int, int], interpolation: str = "area"):
    """Each frame to (height, width)."""
    flag = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}[
        check_choice("interpolation", interpolation, ("area", "bilinear", "bicubic"))
    ]
    return np.stack([cv2.resize(f, (size[1], size[0]), interpolation=flag) for f in frames])


@register_step("tim")
def _tim(frames, clip, *, n_frames: int, to_uint8: bool = True):
    from merkit.preprocess.temporal import tim

    out = tim(frames, n_frames)
    return _grey_levels(out) if to_uint8 else out


@register_step("resize_time")
def _resize_time(frames, clip, *, n_frames: int, method: str = "bicubic", boundary: str = "mirror"):
    from merkit.preprocess.temporal import resize_time

    return resize_time(frames, n_frames, method=method, boundary=boundary)


@register_step("interpolate_time")
def _interpolate_time(frames, clip, *, n_frames: int):
    """Linear interpolation to ``n_frames``; uint8 frames stay uint8 (rounded)."""
    from merkit.preprocess.temporal import interpolate_time

    out = interpolate_time(frames, n_frames)
    return _grey_levels(out) if frames.dtype == np.uint8 else out


@register_step("magnify")
def _magnify(frames, clip, **params):
    from merkit.preprocess.magnify import magnify_eulerian

    return magnify_eulerian(frames, **params)


@register_step("apex_flow")
def _apex_flow(data, clip, *, method: str = "tvl1", size: tuple[int, int] = (28, 28), normalise: str = "minmax"):
    """Onset-to-apex (u, v, strain); from a flow-image clip, its image resized and normalised."""
    from merkit.errors import DatasetError
    from merkit.preprocess.flow import apex_flow, minmax

    if clip.kind == "flow_image":
        maps = cv2.resize(clip.read_flow(), (size[1], size[0]), interpolation=cv2.INTER_AREA)
        return minmax(maps) if normalise == "minmax" else maps
    if clip.apex is None:
        raise DatasetError(f"Clip {clip.key} has no apex; estimate missing apexes with --apex middle or --apex motion.")
    frames = clip.read(grey=True)
    return apex_flow(frames[clip.onset], frames[clip.apex], method=method, size=size, normalise=normalise)


@register_step("face_regions")
def _face_regions(maps, clip, *, upsample: int = 1):
    """HTNet's four areas of (H, W, 3) flow maps (``merkit.preprocess.regions``): placed by the
    landmarks of the clip's face (its ``face_image``, else its onset frame where it has frames)
    where one is found, else at the standard positions of an aligned face."""
    from merkit.io.frames import read_frame
    from merkit.preprocess.align import detect_landmarks
    from merkit.preprocess.regions import face_regions, five_points, standard_points

    points = standard_points(maps.shape[:2])
    face = (
        read_frame(clip.face_image, grey=True)
        if clip.face_image
        else None
        if clip.kind == "flow_image"
        else clip.read(grey=True)[clip.onset]
    )
    if face is not None:
        margin = face.shape[0] // 4  # room around a tight crop for dlib's detector
        landmarks = detect_landmarks(
            cv2.copyMakeBorder(face, margin, margin, margin, margin, cv2.BORDER_REPLICATE), upsample=upsample
        )
        if landmarks is not None:  # the flow maps are the whole face resized
            points = (five_points(landmarks) - margin) * np.array(
                [maps.shape[1] / face.shape[1], maps.shape[0] / face.shape[0]]
            )
    return face_regions(maps, points)


@register_step("flow_sequence")
def _flow_sequence(frames, clip, *, method: str = "tvl1", reference: str = "adjacent"):
    """(T - 1, H, W, 2) flow between adjacent frames, or (T, H, W, 2) from the first (``reference='onset'``)."""
    from merkit.preprocess.flow import flow_sequence

    return flow_sequence(frames, method=method, reference=reference)


@register_step("lbp_top")
def _lbp_top(volume, clip, **params):
    from merkit.features.lbp_top import lbp_top

    return lbp_top(volume, **params).astype(np.float32)


@register_step("mdmo")
def _mdmo(frames, clip, *, flow: str = "rlof", bins: int = 8, average: str = "polar", upsample: int = 2):
    """MDMO of aligned frames: landmarks of the first (onset) frame place the 36 ROIs; flow
    between consecutive frames; (72,) float32."""
    from merkit.errors import DatasetError
    from merkit.features.mdmo import mdmo, roi_labels
    from merkit.preprocess.align import detect_landmarks
    from merkit.preprocess.flow import flow_sequence

    if len(frames) < 2:
        raise DatasetError(f"Clip {clip.key} has one frame from onset to offset; MDMO needs the flow between two.")
    margin = frames.shape[1] // 4  # an aligned crop is tight around the face: dlib's detector wants some room
    landmarks = detect_landmarks(
        cv2.copyMakeBorder(frames[0], margin, margin, margin, margin, cv2.BORDER_REPLICATE), upsample=upsample
    )
    if landmarks is None:
        raise DatasetError(
            f"No face found in the aligned onset frame of {clip.key}, so MDMO's regions cannot be placed."
        )
    return mdmo(
        flow_sequence(frames, method=flow),
        roi_labels(landmarks - margin, frames.shape[1:3]),
        bins=bins,
        average=average,
    )


@register_step("align")
def _align(
    frames,
    clip,
    *,
    size: tuple[int, int] = (256, 256),
    track: bool = False,
    on_missing: str = "fail",
    upsample: int = 1,
):
    """Faces aligned to the eyes of the first frame of ``frames`` (the onset) and cropped."""
    from merkit.preprocess.align import align_clip

    return align_clip(frames, size=size, track=track, on_missing=on_missing, upsample=upsample, name=clip.key).frames


@register_step("crop")
def _crop(frames, clip, *, fraction: float = 0.8):
    """The central ``fraction`` of each frame along height and width (rounded to whole pixels)."""
    h, w = frames.shape[1:3]
    ch, cw = int(round(h * fraction)), int(round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    return frames[:, top : top + ch, left : left + cw]
