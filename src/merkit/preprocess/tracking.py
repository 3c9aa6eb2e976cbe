"""Face tracking over long videos: landmarks frame to frame, an aligned face per frame, flags.

dlib's HOG detector finds the face on a downscaled frame once a second (``detect_every``) and
whenever the face was lost; between detections its 68-point shape predictor is run in the last
detection's box, moved with the landmarks. Every frame gets its aligned grey face: a similarity
transform that puts the eyes of a *reference* frame at fixed places of a ``size`` x ``size`` crop.
The reference changes only when rigid points (the nose bridge, the inner eye corners) have
drifted, by their median, more than ``realign`` of the crop's eye distance from where the
transform put them at the reference (after a head turn), or when the face is found again, so the
small motions of an expression are never smoothed away by per-frame landmark jitter; such frames
are flagged ``realigned``. Flags per frame:

- ``no_face``: no face found (the frame has no aligned face);
- ``blink``: the eye aspect ratio (Soukupová and Čech 2016) under ``blink_ratio`` of its median
  over the last two seconds;
- ``head_motion``: the nose moved faster than ``motion_limit`` eye distances per second (its mean
  over the last 0.1 s against that of 0.3 s before, so landmark jitter does not grow with the
  frame rate);
- ``realigned``: the reference face changed at this frame.

The tracker holds a few small arrays of state (:meth:`FaceTracker.state`), so a long analysis can
stop and resume from a checkpoint; memory does not grow with the video.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from merkit.errors import ConfigError
from merkit.preprocess.align import _models, eye_centres, similarity_from_eyes

FLAGS = ("no_face", "blink", "head_motion", "realigned")
NOSE = slice(27, 36)
RIGID = [27, 28, 29, 30, 39, 42]  # nose bridge, inner eye corners: no expression moves them much


@dataclass
class FaceFrame:
    """What tracking found in one frame: ``face`` uint8 (size, size) grey or None, ``landmarks``
    (68, 2) in frame pixels or None, the (2, 3) ``transform`` frame -> face, and the flags."""

    index: int
    face: np.ndarray | None
    landmarks: np.ndarray | None
    transform: np.ndarray | None
    ear: float
    motion: float
    flags: tuple[str, ...]

    @property
    def found(self) -> bool:
        return self.face is not None


def eye_aspect_ratio(landmarks: np.ndarray) -> float:
    """Mean over both eyes of (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|), points 36-41 and 42-47."""
    ratios = []
    for start in (36, 42):
        p = landmarks[start : start + 6]
        ratios.append(
            (np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * np.linalg.norm(p[0] - p[3]) + 1e-9)
        )
    return float(np.mean(ratios))


class FaceTracker:
    """Track one face through a video, frame by frame (:meth:`update`)."""

    def __init__(
        self,
        fps: float,
        *,
        size: int = 128,
        detect_every: float = 1.0,
        detect_width: int = 320,
        blink_ratio: float = 0.75,
        motion_limit: float = 0.2,
        realign: float = 0.08,
    ):
        if not fps > 0:
            raise ConfigError(f"Tracking needs the frame rate; got fps={fps}.")
        self.fps, self.size = fps, size
        self.detect_every, self.detect_width = max(1, int(round(detect_every * fps))), detect_width
        self.blink_ratio, self.motion_limit, self.realign = blink_ratio, motion_limit, realign
        self.index = 0
        self.box: np.ndarray | None = None  # last detection (left, top, right, bottom)
        self.box_landmarks: np.ndarray | None = None  # landmarks when the box was found
        self.landmarks: np.ndarray | None = None
        self.transform: np.ndarray | None = None
        self.anchor: np.ndarray | None = None  # the rigid points where the transform put them
        self.since_detection = 0
        self.ears: deque = deque(maxlen=max(3, int(2 * fps)))
        self.step = max(1, int(round(0.1 * fps)))  # landmarks are averaged over 0.1 s against jitter
        self.noses: deque = deque(maxlen=4 * self.step)
        self.eyes: deque = deque(maxlen=self.step)
        self.rigid: deque = deque(maxlen=self.step)

    def _detect(self, grey: np.ndarray) -> np.ndarray | None:
        detector, _ = _models()
        scale = min(1.0, self.detect_width / grey.shape[1])
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else grey
        boxes, scores, _ = detector.run(small, 0 if small.shape[1] >= 240 else 1, 0.0)
        if not boxes:
            return None
        found = np.array([[b.left(), b.top(), b.right(), b.bottom()] for b in boxes], np.float64) / scale
        if self.landmarks is not None:  # keep following the same face
            centre = self.landmarks.mean(axis=0)
            return found[int(np.argmin(np.linalg.norm((found[:, :2] + found[:, 2:]) / 2 - centre, axis=1)))]
        return found[int(np.argmax(scores))]

    def _predict(self, grey: np.ndarray, box: np.ndarray) -> np.ndarray:
        import dlib

        _, predictor = _models()
        left, top, right, bottom = (int(round(v)) for v in box)
        shape = predictor(grey, dlib.rectangle(left, top, right, bottom))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float64)

    def update(self, frame: np.ndarray) -> FaceFrame:
        """Track the face into ``frame`` (uint8 (H, W, 3) RGB or (H, W) grey)."""
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
        index, self.index = self.index, self.index + 1
        flags: list[str] = []
        if self.box is None or self.since_detection >= self.detect_every:
            box = self._detect(grey)
            self.since_detection = 0
            if box is None:
                self.box = self.landmarks = self.transform = None
                for history in (self.noses, self.eyes, self.rigid):
                    history.clear()
                return FaceFrame(index, None, None, None, float("nan"), float("nan"), ("no_face",))
            landmarks = self._predict(grey, box)
            self.box, self.box_landmarks = box, landmarks
        else:
            shift = self.landmarks.mean(axis=0) - self.box_landmarks.mean(axis=0)
            if np.abs(shift).max() > 0.05 * (self.box[2] - self.box[0]):  # the head moved: move the box with it
                self.box, self.box_landmarks = self.box + np.tile(shift, 2), self.landmarks
            landmarks = self._predict(grey, self.box)
        self.since_detection += 1
        self.landmarks = landmarks
        self.eyes.append(eye_centres(landmarks))
        self.rigid.append(landmarks[RIGID])
        eyes = np.mean(self.eyes, axis=0)
        spread = float(np.linalg.norm(eyes[1] - eyes[0]))
        rigid = self._placed(np.mean(self.rigid, axis=0)) if self.transform is not None else None
        if rigid is None or np.median(np.linalg.norm(rigid - self.anchor, axis=1)) > self.realign * 0.42 * self.size:
            self.transform = similarity_from_eyes(eyes, (self.size, self.size))
            self.anchor = self._placed(np.mean(self.rigid, axis=0))
            flags.append("realigned")
        ear = eye_aspect_ratio(landmarks)
        if len(self.ears) >= self.ears.maxlen // 4 and ear < self.blink_ratio * float(np.median(self.ears)):
            flags.append("blink")
        self.ears.append(ear)
        self.noses.append(landmarks[NOSE].mean(axis=0))
        motion = 0.0
        if len(self.noses) == self.noses.maxlen:  # the nose's mean over the last 0.1 s against that of 0.3 s before
            noses = np.asarray(self.noses)
            moved = np.linalg.norm(noses[-self.step :].mean(axis=0) - noses[: self.step].mean(axis=0))
            motion = float(moved / spread * self.fps / (len(noses) - self.step))
            if motion > self.motion_limit:
                flags.append("head_motion")
        face = cv2.warpAffine(
            grey, self.transform, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        return FaceFrame(index, face, landmarks, self.transform.copy(), ear, motion, tuple(flags))

    def _placed(self, points: np.ndarray) -> np.ndarray:
        """Where the current transform puts frame ``points`` (N, 2) in the face crop."""
        return points @ self.transform[:, :2].T + self.transform[:, 2]

    OPTIONAL = ("box", "box_landmarks", "landmarks", "transform", "anchor")  # arrays or None
    HISTORIES = ("ears", "noses", "eyes", "rigid")  # the deques

    def params(self) -> dict:
        """The settings that shape what the tracker records (a cache's fingerprint holds them)."""
        return {
            "fps": self.fps,
            "size": self.size,
            "detect_every": self.detect_every,
            "detect_width": self.detect_width,
            "blink_ratio": self.blink_ratio,
            "motion_limit": self.motion_limit,
            "realign": self.realign,
        }

    def state(self) -> dict[str, np.ndarray]:
        """The tracker's state as arrays (for a checkpoint); :meth:`restore` takes it back."""
        state = {"index": np.array([self.index, self.since_detection])}
        state |= {name: np.zeros(0) if getattr(self, name) is None else getattr(self, name) for name in self.OPTIONAL}
        state |= {name: np.array(list(getattr(self, name)), np.float64) for name in self.HISTORIES}
        return state

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.index, self.since_detection = (int(v) for v in state["index"])
        for name in self.OPTIONAL:
            setattr(self, name, state[name] if state[name].size else None)
        for name in self.HISTORIES:
            getattr(self, name).clear()
            getattr(self, name).extend(state[name])
