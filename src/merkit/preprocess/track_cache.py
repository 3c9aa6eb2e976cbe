"""The tracking cache: a long recording's aligned faces and per-frame records, appended in order
and checkpointed, so tracking resumes where it stopped and memory stays flat however long the
video. Both ``merkit analyze`` and ``merkit spot-evaluate`` track through it.

A checkpoint is synced before it is renamed into place; its fingerprint holds merkit's version,
the source (path, size, time) and the tracker's parameters, so a cache written by another
tracker is not reused; a damaged checkpoint is discarded with a warning and tracking starts over.
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from merkit import __version__
from merkit.datasets.intervals import Interval
from merkit.errors import ConfigError, DatasetError
from merkit.io.atomic import atomic_write_bytes, atomic_write_text
from merkit.io.frames import list_frames, read_frame
from merkit.io.video import iter_video_timed, video_header
from merkit.preprocess.tracking import FLAGS, FaceFrame, FaceTracker
from merkit.progress import progress_bar

FACE_SIZE = 128
STATE = 4  # found, eye aspect ratio, head motion, flag bits
SHAPE = 68 * 2 + 6  # landmarks, transform
UNUSABLE = ("no_face", "head_motion", "realigned")  # frames the spotters skip


@dataclass(frozen=True)
class FrameSource:
    """A video file or a folder of frames, read one frame at a time."""

    path: Path
    fps: float
    n_frames: int  # 0 where the video's header does not say

    def frames(self, start: int = 0) -> Iterator[np.ndarray]:
        """uint8 (H, W, 3) RGB frames from position ``start``, upright."""
        return (frame for _, frame in self.timed_frames(start))

    def timed_frames(self, start: int = 0) -> Iterator[tuple[float, np.ndarray]]:
        """(time s, frame) from position ``start``: a video's own timestamps, a folder's index / fps."""
        if self.path.is_dir():
            return (((start + i) / self.fps, read_frame(p)) for i, p in enumerate(list_frames(self.path)[start:]))
        return iter_video_timed(self.path, start)

    def fingerprint(self) -> str:
        stat = self.path.stat()
        return f"{self.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.fps}"


def open_source(path: str | os.PathLike, fps: float | None = None) -> FrameSource:
    """A :class:`FrameSource` for a video (its own frame rate unless ``fps``) or a frame folder
    (``fps`` required); errors name the file and the fix."""
    path = Path(path)
    if path.is_dir():
        frames = list_frames(path)
        if not frames:
            raise DatasetError(f"Folder {path} holds no frames (.jpg, .png, .bmp, .tif).")
        if not fps:
            raise ConfigError(f"{path} is a folder of frames: pass --fps, its frame rate.")
        return FrameSource(path, float(fps), len(frames))
    if not path.is_file():
        raise DatasetError(f"{path} is neither a video file nor a folder of frames.")
    n, own_fps = video_header(path)
    fps = fps or own_fps
    if not fps > 0:
        raise DatasetError(f"Video {path} does not say its frame rate; pass --fps.")
    return FrameSource(path, float(fps), n)


def _flag_bits(flags: tuple[str, ...]) -> int:
    return sum(1 << FLAGS.index(f) for f in flags)


def flag_names(bits: int) -> list[str]:
    return [f for i, f in enumerate(FLAGS) if bits & (1 << i)]


class TrackCache:
    """A folder of per-frame tracking results, appended in order and checkpointed.

    ``faces.u8``: each frame's aligned grey face (size x size bytes, zeros without a face);
    ``track.f32``: each frame's state (found, eye aspect ratio, head motion, flag bits: 16 bytes);
    ``shapes.f32``: each frame's 68 landmarks and transform (read in order, never all at once);
    ``times.f64``: each frame's time in seconds (its timestamp: a variable frame rate keeps its times);
    ``checkpoint.npz``: the frames done and the tracker's state (no pickle); ``done.json`` once
    the whole video is tracked.
    """

    def __init__(self, folder: Path, size: int = FACE_SIZE):
        self.folder, self.size = folder, size
        self.faces_path, self.states_path, self.shapes_path = (
            folder / "faces.u8",
            folder / "track.f32",
            folder / "shapes.f32",
        )
        self.checkpoint_path, self.done_path = folder / "checkpoint.npz", folder / "done.json"
        self.times_path = folder / "times.f64"

    def n_frames(self) -> int:
        return self.states_path.stat().st_size // (4 * STATE) if self.states_path.exists() else 0

    def states(self) -> np.ndarray:
        """(T, 4) float32: found, eye aspect ratio, head motion, flag bits."""
        return np.fromfile(self.states_path, np.float32).reshape(-1, STATE)

    def times(self) -> np.ndarray:
        """(T,) float64: each frame's time in seconds from the first."""
        return np.fromfile(self.times_path, np.float64)

    def shapes(self, chunk: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Each frame's ((68, 2) landmarks, (2, 3) transform) in order (zeros without a face)."""
        with open(self.shapes_path, "rb") as file:
            while block := file.read(4 * SHAPE * chunk):
                for row in np.frombuffer(block, np.float32).reshape(-1, SHAPE):
                    yield row[:136].reshape(68, 2), row[136:].reshape(2, 3)

    def usable(self) -> np.ndarray:
        """(T,) bool: the frames with a face the spotters can use (none of ``UNUSABLE``'s flags)."""
        states = self.states()
        return (states[:, 0] == 1) & (states[:, 3].astype(int) & _flag_bits(UNUSABLE) == 0)

    def faces(self, usable: np.ndarray, chunk: int = 256) -> Iterator[np.ndarray | None]:
        """The cached faces in order, None where ``usable`` is False; read ``chunk`` at a time."""
        n = self.size * self.size
        with open(self.faces_path, "rb") as file:
            for start in range(0, len(usable), chunk):
                block = np.frombuffer(file.read(n * min(chunk, len(usable) - start)), np.uint8).reshape(
                    -1, self.size, self.size
                )
                for i, face in enumerate(block):
                    yield face if usable[start + i] else None


def track_video(source: FrameSource, cache: TrackCache, *, limit: int | None = None, every: float = 2.0) -> int:
    """Track ``source`` into ``cache``, resuming from its checkpoint; returns the number of frames.

    ``limit`` stops after that many frames in all (as an interrupted run would).
    """
    cache.folder.mkdir(parents=True, exist_ok=True)
    tracker = FaceTracker(source.fps, size=cache.size)
    fingerprint = json.dumps(
        {"merkit": __version__, "source": source.fingerprint(), "tracker": tracker.params(), "records": "times"},
        sort_keys=True,
    )  # caches from before frame times are tracked again
    if _done(cache) == fingerprint:
        return cache.n_frames()
    done = _restore(cache, fingerprint, tracker)
    files = {
        cache.faces_path: cache.size**2,
        cache.states_path: 4 * STATE,
        cache.shapes_path: 4 * SHAPE,
        cache.times_path: 8,
    }
    for path, size in files.items():
        with open(path, "ab") as file:
            file.truncate(done * size)  # drop what came after the checkpoint
    step = max(1, int(every * source.fps))
    with (
        open(cache.faces_path, "ab") as faces,
        open(cache.states_path, "ab") as states,
        open(cache.shapes_path, "ab") as shapes,
        open(cache.times_path, "ab") as times,
        progress_bar(f"tracking {source.path.name}", source.n_frames, unit="frames") as advance,
    ):
        advance(done)
        for time, frame in source.timed_frames(done):
            if limit is not None and done >= limit:
                return done
            seen = tracker.update(frame)
            faces.write((seen.face if seen.found else np.zeros((cache.size, cache.size), np.uint8)).tobytes())
            state, shape = _records(seen)
            states.write(state.tobytes())
            shapes.write(shape.tobytes())
            times.write(np.float64(time).tobytes())
            done += 1
            advance()
            if done % step == 0:
                for file in (faces, states, shapes, times):
                    file.flush()
                    os.fsync(file.fileno())
                _save_checkpoint(cache, fingerprint, done, tracker)
    atomic_write_text(cache.done_path, json.dumps({"fingerprint": fingerprint, "frames": done}))
    cache.checkpoint_path.unlink(missing_ok=True)
    return done


def _records(seen: FaceFrame) -> tuple[np.ndarray, np.ndarray]:
    state = np.array([seen.found, seen.ear, seen.motion, _flag_bits(seen.flags)], np.float32)
    shape = np.zeros(SHAPE, np.float32)
    if seen.found:
        shape[:136] = seen.landmarks.ravel()
        shape[136:] = seen.transform.ravel()
    return state, shape


def _save_checkpoint(cache: TrackCache, fingerprint: str, done: int, tracker: FaceTracker) -> None:
    """The checkpoint, written whole and synced before it replaces the last one."""
    data = io.BytesIO()
    np.savez(
        data,
        fingerprint=np.array(fingerprint),
        done=np.array(done),
        **{f"state_{k}": v for k, v in tracker.state().items()},
    )
    atomic_write_bytes(cache.checkpoint_path, data.getvalue())


def _done(cache: TrackCache) -> str | None:
    """The fingerprint ``done.json`` records (None without one, or where it cannot be read)."""
    try:
        return json.loads(cache.done_path.read_text()).get("fingerprint") if cache.done_path.exists() else None
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None


def _restore(cache: TrackCache, fingerprint: str, tracker: FaceTracker) -> int:
    """The frames done by the checkpoint of the same fingerprint (``tracker`` restored to it), else
    0; a damaged checkpoint is discarded with a warning (tracking starts over)."""
    if not cache.checkpoint_path.exists():
        return 0
    try:
        with np.load(cache.checkpoint_path, allow_pickle=False) as saved:
            if str(saved["fingerprint"]) != fingerprint:
                return 0
            done = int(saved["done"])
            tracker.restore({k[6:]: saved[k] for k in saved.files if k.startswith("state_")})
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        warnings.warn(
            f"{cache.checkpoint_path} is damaged ({error}); it is discarded and tracking starts over.", stacklevel=3
        )
        cache.checkpoint_path.unlink(missing_ok=True)
        return 0
    if done * 4 * STATE > (cache.states_path.stat().st_size if cache.states_path.exists() else 0):
        warnings.warn(
            f"{cache.checkpoint_path} counts more frames than the cache holds; tracking starts over.", stacklevel=3
        )
        return 0
    return done


def crop_face(frame: np.ndarray, transform: np.ndarray, scale: float, size: int) -> np.ndarray:
    """uint8 (size, size, 3) RGB face of ``frame`` through the tracker's (2, 3) ``transform`` scaled by ``scale``."""
    matrix = transform * scale
    return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def interval_faces(
    source: FrameSource, cache: TrackCache, intervals: list[Interval], *, size: int = 256, most: int = 64
) -> Iterator[tuple[int, np.ndarray, int, float]]:
    """For each interval (as it ends), (index, uint8 (n, size, size, 3) RGB aligned faces of its
    frames, at most ``most`` of them evenly taken, the apex's position among them, their frame rate)."""
    wanted: dict[int, list[int]] = {}  # frame -> the intervals that take it
    ends: dict[int, list[int]] = {}  # frame -> the intervals that end there
    for i, interval in enumerate(intervals):
        stride = max(1, -(-interval.length // most))
        for t in range(interval.onset, interval.offset + 1, stride):
            wanted.setdefault(t, []).append(i)
        ends.setdefault(interval.offset, []).append(i)
    collected: dict[int, list[tuple[int, np.ndarray]]] = {i: [] for i in range(len(intervals))}
    last_frame = max((interval.offset for interval in intervals), default=-1)
    last_transform = None
    for t, (frame, (_, transform)) in enumerate(zip(source.frames(), cache.shapes())):
        if transform.any():  # a frame without a face keeps the last transform
            last_transform = transform
        if t in wanted and last_transform is not None:
            face = crop_face(frame, last_transform, size / FACE_SIZE, size)
            for i in wanted[t]:
                collected[i].append((t, face))
        for i in ends.get(t, ()):
            items = collected.pop(i)
            if items:
                apex = intervals[i].apex if intervals[i].apex is not None else intervals[i].onset
                position = int(np.argmin([abs(t_ - apex) for t_, _ in items]))
                yield i, np.stack([f for _, f in items]), position, source.fps * len(items) / intervals[i].length
        if t >= last_frame:
            break
