"""Face alignment: dlib's face detector and 68 landmarks, a similarity transform fixed by the eyes.

MER-RCNN crops and aligns faces with an eye detector and an active shape model (ASM) fitted from
it (its refs [11], [19], [8]). merkit uses dlib's HOG face detector and its 68-point shape
predictor (an ensemble of regression trees, Kazemi & Sullivan 2014) in their place: both give
landmark points from which the eye centres fix a similarity transform. The landmark model ships
in the ``face-recognition-models`` package; nothing is downloaded at run time.

By default every frame of a clip is warped with the transform of its reference (onset) frame, so
the face's own motion is kept; ``track=True`` fits a transform per frame instead, for clips whose
head moves.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from merkit.errors import ConfigError, DatasetError, check_array, check_choice

LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"
EYES = (slice(36, 42), slice(42, 48))  # the eye on the image's left, then on its right


def landmark_model_path() -> Path:
    """The 68-point model inside the installed ``face-recognition-models`` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("Face alignment needs the package face-recognition-models; install it with `make` or pip.")
    path = Path(spec.submodule_search_locations[0]) / "models" / LANDMARK_MODEL
    if not path.is_file():
        raise ConfigError(f"The landmark model {path} is missing; reinstall face-recognition-models.")
    return path


@lru_cache(maxsize=1)
def _models():
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(landmark_model_path()))


def detect_landmarks(frame, *, upsample: int = 1) -> np.ndarray | None:
    """(68, 2) float64 landmark (x, y) of the most confident face in ``frame``, or None.

    ``frame`` is uint8 (H, W) or (H, W, 3); ``upsample`` enlarges it that many times for the
    detector (faces under about 80 pixels need it).
    """
    frame = check_array("frame", frame, ndim=(2, 3))
    image = np.ascontiguousarray(frame if frame.dtype == np.uint8 else np.clip(frame * 255, 0, 255).astype(np.uint8))
    detector, predictor = _models()
    boxes, scores, _ = detector.run(image, upsample, 0.0)
    if not boxes:
        return None
    shape = predictor(image, boxes[int(np.argmax(scores))])
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2): centre of the eye on the image's left, then on its right."""
    return np.stack([landmarks[EYES[0]].mean(axis=0), landmarks[EYES[1]].mean(axis=0)])


def similarity_from_eyes(
    eyes: np.ndarray, size: tuple[int, int], *, eye_y: float = 0.38, eye_spread: float = 0.42
) -> np.ndarray:
    """(2, 3) similarity taking the eyes to (0.5 -+ eye_spread / 2) W, eye_y H of a (H, W) crop."""
    h, w = size
    p1, p2 = (complex(*e) for e in eyes)
    q1, q2 = complex(w * (0.5 - eye_spread / 2), h * eye_y), complex(w * (0.5 + eye_spread / 2), h * eye_y)
    if p1 == p2:
        raise ConfigError("The two eye centres coincide; no similarity transform fits.")
    a = (q2 - q1) / (p2 - p1)
    b = q1 - a * p1
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


@dataclass
class Alignment:
    """Aligned frames and how they were made: one (2, 3) transform per frame, frames without a face."""

    frames: np.ndarray
    transforms: np.ndarray
    missing: list[int] = field(default_factory=list)


def align_clip(
    frames,
    *,
    size: tuple[int, int] = (256, 256),
    reference: int = 0,
    track: bool = False,
    on_missing: str = "fail",
    upsample: int = 1,
    eye_y: float = 0.38,
    eye_spread: float = 0.42,
    name: str = "clip",
) -> Alignment:
    """Align a clip's faces to the eyes of its reference frame and crop them to ``size``.

    Parameters
    ----------
    frames : (T, H, W, 3) or (T, H, W) uint8
    size : (height, width) of the face box
    reference : frame whose landmarks fix the transform (the onset)
    track : fit a transform on every frame (for head motion) instead of the reference's for all
    on_missing : {'fail', 'reuse'}
        A frame whose face is needed but not found: stop with an error naming ``name`` and the
        frame, or reuse the last good transform (the first good one for frames before it).

    Returns
    -------
    Alignment with frames (T, height, width[, 3]) uint8.
    """
    frames = check_array("frames", frames, ndim=(3, 4))
    check_choice("on_missing", on_missing, ("fail", "reuse"))
    order = range(len(frames)) if track else [reference]
    transforms: dict[int, np.ndarray] = {}
    missing = []
    for t in order:
        landmarks = detect_landmarks(frames[t], upsample=upsample)
        if landmarks is None:
            missing.append(t)
            if on_missing == "fail":
                raise DatasetError(
                    f"No face found in frame {t} of {name}; try upsample=2, or on_missing='reuse' "
                    "to reuse the last good transform, or skip alignment for cropped datasets."
                )
            continue
        transforms[t] = similarity_from_eyes(eye_centres(landmarks), size, eye_y=eye_y, eye_spread=eye_spread)
    if not transforms and not track:  # the reference frame has no face: take the first frame that has one
        for t in range(len(frames)):
            if t != reference and (landmarks := detect_landmarks(frames[t], upsample=upsample)) is not None:
                transforms[t] = similarity_from_eyes(eye_centres(landmarks), size, eye_y=eye_y, eye_spread=eye_spread)
                break
    if not transforms:
        raise DatasetError(f"No face found in any frame of {name}.")
    per_frame, last = [], transforms[min(transforms)]
    for t in range(len(frames)):
        last = transforms.get(t, last) if track else next(iter(transforms.values()))
        per_frame.append(last)
    h, w = size
    aligned = np.stack(
        [
            cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for f, m in zip(frames, per_frame)
        ]
    )
    return Alignment(aligned, np.stack(per_frame), missing)
