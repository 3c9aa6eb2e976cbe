"""Analyse a long recording: track the face, spot expressions, recognise them, report.

:func:`track_video` is the long pass: it streams the video through :class:`FaceTracker` and
appends each frame's aligned face and record (flags, landmarks, transform) to a cache folder,
checkpointing the tracker every two seconds of video, so an interrupted analysis resumes where it
stopped and memory stays flat however long the video. Spotting then reads the cached faces in
order; recognition (with a bundle) and the annotated video read the video again, frame by frame.

Output of :func:`analyze` in ``out``: ``frames.csv``, ``intervals.csv`` and ``.json``,
``annotated.mp4``, ``report.html`` (a single file that opens offline), and ``cache/``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from merkit.datasets.intervals import Interval
from merkit.errors import ConfigError, DatasetError, MerkitError
from merkit.inference.report import KIND_RGB, write_analysis_report
from merkit.io.atomic import atomic_path, atomic_write_text
from merkit.io.frames import list_frames, read_frame
from merkit.io.video import iter_video, video_header, video_writer
from merkit.preprocess.tracking import FLAGS, FaceFrame, FaceTracker
from merkit.progress import progress_bar
from merkit.spotting import Spotter, Spotting, create_spotter

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
        """uint8 (H, W, 3) RGB frames from position ``start``."""
        if self.path.is_dir():
            return (read_frame(p) for p in list_frames(self.path)[start:])
        return iter_video(self.path, start)

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
    ``checkpoint.npz``: the frames done and the tracker's state (no pickle); ``done.json`` once
    the whole video is tracked.
    """

    def __init__(self, folder: Path, size: int = FACE_SIZE):
        self.folder, self.size = folder, size
        self.faces_path, self.states_path, self.shapes_path = folder / "faces.u8", folder / "track.f32", folder / "shapes.f32"
        self.checkpoint_path, self.done_path = folder / "checkpoint.npz", folder / "done.json"

    def n_frames(self) -> int:
        return self.states_path.stat().st_size // (4 * STATE) if self.states_path.exists() else 0

    def states(self) -> np.ndarray:
        """(T, 4) float32: found, eye aspect ratio, head motion, flag bits."""
        return np.fromfile(self.states_path, np.float32).reshape(-1, STATE)

    def shapes(self, chunk: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Each frame's ((68, 2) landmarks, (2, 3) transform) in order (zeros without a face)."""
        with open(self.shapes_path, "rb") as file:
            while block := file.read(4 * SHAPE * chunk):
                for row in np.frombuffer(block, np.float32).reshape(-1, SHAPE):
                    yield row[:136].reshape(68, 2), row[136:].reshape(2, 3)

    def faces(self, usable: np.ndarray, chunk: int = 256) -> Iterator[np.ndarray | None]:
        """The cached faces in order, None where ``usable`` is False; read ``chunk`` at a time."""
        n = self.size * self.size
        with open(self.faces_path, "rb") as file:
            for start in range(0, len(usable), chunk):
                block = np.frombuffer(file.read(n * min(chunk, len(usable) - start)), np.uint8).reshape(-1, self.size, self.size)
                for i, face in enumerate(block):
                    yield face if usable[start + i] else None


def track_video(source: FrameSource, cache: TrackCache, *, limit: int | None = None, every: float = 2.0) -> int:
    """Track ``source`` into ``cache``, resuming from its checkpoint; returns the number of frames.

    ``limit`` stops after that many frames in all (as an interrupted run would).
    """
    cache.folder.mkdir(parents=True, exist_ok=True)
    fingerprint = json.dumps({"source": source.fingerprint(), "size": cache.size})
    if cache.done_path.exists() and json.loads(cache.done_path.read_text()).get("fingerprint") == fingerprint:
        return cache.n_frames()
    tracker = FaceTracker(source.fps, size=cache.size)
    done = 0
    if cache.checkpoint_path.exists():
        with np.load(cache.checkpoint_path, allow_pickle=False) as saved:
            if str(saved["fingerprint"]) == fingerprint:
                done = int(saved["done"])
                tracker.restore({k[6:]: saved[k] for k in saved.files if k.startswith("state_")})
    files = {cache.faces_path: cache.size**2, cache.states_path: 4 * STATE, cache.shapes_path: 4 * SHAPE}
    for path, size in files.items():
        with open(path, "ab") as file:
            file.truncate(done * size)  # drop what came after the checkpoint
    step = max(1, int(every * source.fps))
    with open(cache.faces_path, "ab") as faces, open(cache.states_path, "ab") as states, open(cache.shapes_path, "ab") as shapes, \
            progress_bar(f"tracking {source.path.name}", source.n_frames, unit="frames") as advance:
        advance(done)
        for frame in source.frames(done):
            if limit is not None and done >= limit:
                return done
            seen = tracker.update(frame)
            faces.write((seen.face if seen.found else np.zeros((cache.size, cache.size), np.uint8)).tobytes())
            state, shape = _records(seen)
            states.write(state.tobytes())
            shapes.write(shape.tobytes())
            done += 1
            advance()
            if done % step == 0:
                for file in (faces, states, shapes):
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
    with atomic_path(cache.checkpoint_path, suffix=".npz") as tmp:
        np.savez(tmp, fingerprint=np.array(fingerprint), done=np.array(done), **{f"state_{k}": v for k, v in tracker.state().items()})


def spot_cached(cache: TrackCache, spotter: Spotter, fps: float) -> tuple[Spotting, np.ndarray]:
    """Run ``spotter`` over the cached faces; returns its result and the (T, 4) states."""
    states = cache.states()
    bits = states[:, 3].astype(int)
    usable = (states[:, 0] == 1) & (bits & _flag_bits(UNUSABLE) == 0)
    return spotter.spotting(spotter.signals(cache.faces(usable), fps), fps), states


def _crop(frame: np.ndarray, transform: np.ndarray, scale: float, size: int) -> np.ndarray:
    matrix = transform * scale
    return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def interval_faces(source: FrameSource, cache: TrackCache, intervals: list[Interval], *, size: int = 256,
                   most: int = 64) -> Iterator[tuple[int, np.ndarray, int, float]]:
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
            face = _crop(frame, last_transform, size / FACE_SIZE, size)
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


def analyze(video: str | os.PathLike, out: str | os.PathLike, *, model=None, spotter: str | Spotter = "roi_flow",
            fps: float | None = None, limit: int | None = None, annotate: bool = True) -> dict:
    """Spot (and with ``model``, a bundle from :func:`merkit.load_model`, recognise) the
    expressions of ``video``; write the outputs listed in the module's docstring to ``out``.

    Returns a summary: frames, frames with a face, intervals (the rows of intervals.json).
    ``limit`` stops tracking after that many frames (an interrupted run, for tests); a later call
    resumes.
    """
    source = open_source(video, fps)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder for the analysis.")
    spotter = create_spotter(spotter) if isinstance(spotter, str) else spotter
    cache = TrackCache(out / "cache")
    n = track_video(source, cache, limit=limit)
    if limit is not None and not cache.done_path.exists():
        return {"frames": n, "complete": False}
    if n == 0:
        raise DatasetError(f"{source.path} holds no frames.")
    if not (cache.states()[:, 0] == 1).any():
        raise DatasetError(f"No face was found in any of the {n} frames of {source.path}. The face must be frontal, "
                           "unhidden and at least about 80 pixels wide; crop or re-record the video.")
    spotting, states = spot_cached(cache, spotter, source.fps)
    found = states[:, 0] == 1
    relative = spotting.relative
    write_frames_csv(out / "frames.csv", states, relative, source.fps)
    rows = [_interval_row(iv, source.fps) for iv in spotting.intervals]
    thumbnails: dict[int, str] = {}
    if spotting.intervals:
        for i, faces, position, rate in interval_faces(source, cache, spotting.intervals):
            thumbnails[i] = _jpeg_data(cv2.resize(faces[position], (128, 128), interpolation=cv2.INTER_AREA))
            if model is not None:
                rows[i].update(_recognise(model, faces, position, rate))
    columns = ["onset_frame", "apex_frame", "offset_frame", "onset_s", "apex_s", "offset_s", "kind", "score"]
    if model is not None:
        columns += ["prediction", *[f"p_{c}" for c in model.classes], "note"]
    table = pd.DataFrame(rows, columns=columns)
    atomic_write_text(out / "intervals.csv", table.to_csv(index=False))
    atomic_write_text(out / "intervals.json", json.dumps(rows, indent=1))
    if annotate:
        write_annotated(source, cache, spotting.intervals, rows, out / "annotated.mp4")
    write_analysis_report(out / "report.html", source=source, relative=relative, found=found, rows=rows,
                          thumbnails=thumbnails, classes=tuple(model.classes) if model is not None else (), spotter=spotter.name,
                          note=spotting.note)
    return {"frames": n, "face_frames": int(found.sum()), "intervals": rows, "complete": True, "note": spotting.note}


def write_frames_csv(path: Path, states: np.ndarray, relative: np.ndarray, fps: float, chunk: int = 4096) -> None:
    """``frame, time_s, face_found, score, flags``, written a chunk of rows at a time."""
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w") as file:
        file.write("frame,time_s,face_found,score,flags\n")
        for start in range(0, len(states), chunk):
            file.writelines(f"{t},{round(t / fps, 4)},{int(states[t, 0])},{round(float(relative[t]), 4)},"
                            f"{';'.join(flag_names(int(states[t, 3])))}\n" for t in range(start, min(start + chunk, len(states))))


def _interval_row(interval: Interval, fps: float) -> dict:
    apex = interval.apex if interval.apex is not None else (interval.onset + interval.offset) // 2
    return {"onset_frame": interval.onset, "apex_frame": apex, "offset_frame": interval.offset,
            "onset_s": round(interval.onset / fps, 4), "apex_s": round(apex / fps, 4), "offset_s": round(interval.offset / fps, 4),
            "kind": interval.kind, "score": round(interval.score, 4)}


def _recognise(model, faces: np.ndarray, apex: int, fps: float) -> dict:
    """The bundle's class and probabilities for one interval's faces; a note where it cannot say."""
    try:
        [label], [p] = model.classify(faces, onset=0, apex=apex, offset=len(faces) - 1, fps=fps)
    except MerkitError as error:
        return {"prediction": "", **{f"p_{c}": None for c in model.classes}, "note": str(error)}
    return {"prediction": str(label), **{f"p_{c}": round(float(v), 4) for c, v in zip(model.classes, p)}, "note": ""}


def _jpeg_data(rgb: np.ndarray) -> str:
    _, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode()


def write_annotated(source: FrameSource, cache: TrackCache, intervals: list[Interval], rows: list[dict], path: Path) -> None:
    """``annotated.mp4``: each frame with the face box and landmarks, and during an interval its
    kind and (with a bundle) class on a banner."""
    label_at: dict[int, tuple[str, tuple[int, int, int]]] = {}
    for interval, row in zip(intervals, rows):
        text = interval.kind.upper() + (f"  {row['prediction']}" if row.get("prediction") else "")
        probability = max((v for k, v in row.items() if k.startswith("p_") and v is not None), default=None)
        text += f" {probability:.2f}" if probability is not None and row.get("prediction") else ""
        for t in range(interval.onset, interval.offset + 1):
            label_at[t] = (text, KIND_RGB[interval.kind])
    with video_writer(path, source.fps) as write, progress_bar("annotating", cache.n_frames(), unit="frames") as advance:
        for t, (frame, (points, transform)) in enumerate(zip(source.frames(), cache.shapes())):
            frame = frame.copy()
            scale = max(1, round(frame.shape[1] / 640))
            if transform.any():
                (x0, y0), (x1, y1) = points.min(axis=0).astype(int), points.max(axis=0).astype(int)
                cv2.rectangle(frame, (x0, y0), (x1, y1), (40, 220, 40), scale)
                for x, y in points.astype(int):
                    cv2.circle(frame, (int(x), int(y)), scale, (0, 255, 255), -1)
            if t in label_at:
                text, colour = label_at[t]
                cv2.rectangle(frame, (0, 0), (frame.shape[1], 28 * scale), colour, -1)
                cv2.putText(frame, text, (8, 20 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 255), scale, cv2.LINE_AA)
            write(frame)
            advance()
