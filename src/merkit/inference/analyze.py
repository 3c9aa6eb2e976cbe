"""Analyse a long recording: track the face, spot expressions, recognise them, report.

:func:`~merkit.preprocess.track_cache.track_video` is the long pass: it streams the video
through the face tracker and appends each frame's aligned face and record (flags, landmarks,
transform) to a cache folder, checkpointing the tracker every two seconds of video, so an
interrupted analysis resumes where it stopped. Spotting then reads the cached faces in order;
recognition (with a bundle) and the annotated video read the video again, frame by frame.

Output of :func:`analyze` in ``out``: ``frames.csv``, ``intervals.csv`` and ``.json``,
``annotated.mp4``, ``report.html`` (a single file that opens offline), and ``cache/``.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from merkit.datasets.intervals import Interval
from merkit.errors import ConfigError, DatasetError, MerkitError
from merkit.inference.report import write_analysis_report
from merkit.io.atomic import atomic_path, atomic_write_text
from merkit.io.video import video_writer
from merkit.preprocess.track_cache import FrameSource, TrackCache, flag_names, interval_faces, open_source, track_video
from merkit.progress import progress_bar
from merkit.spotting import KIND_RGB, Spotter, create_spotter, spot_cached


def analyze(
    video: str | os.PathLike,
    out: str | os.PathLike,
    *,
    model=None,
    spotter: str | Spotter = "roi_flow",
    fps: float | None = None,
    limit: int | None = None,
    annotate: bool = True,
) -> dict:
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
        raise DatasetError(
            f"No face was found in any of the {n} frames of {source.path}. The face must be frontal, "
            "unhidden and at least about 80 pixels wide; crop or re-record the video."
        )
    spotting, states = spot_cached(cache, spotter, source.fps)
    found = states[:, 0] == 1
    relative = spotting.relative
    times = cache.times()
    write_frames_csv(out / "frames.csv", states, relative, times)
    rows = [interval_row(iv, times) for iv in spotting.intervals]
    thumbnails: dict[int, str] = {}
    if spotting.intervals:
        for i, faces, position, rate in interval_faces(source, cache, spotting.intervals):
            thumbnails[i] = jpeg_data(cv2.resize(faces[position], (128, 128), interpolation=cv2.INTER_AREA))
            if model is not None:
                rows[i].update(recognise(model, faces, position, rate))
    write_intervals(out, rows, model)
    if annotate:
        write_annotated(source, cache, spotting.intervals, rows, out / "annotated.mp4")
    write_analysis_report(
        out / "report.html",
        source=source,
        relative=relative,
        found=found,
        rows=rows,
        thumbnails=thumbnails,
        classes=tuple(model.classes) if model is not None else (),
        spotter=spotter.name,
        note=spotting.note,
    )
    return {"frames": n, "face_frames": int(found.sum()), "intervals": rows, "complete": True, "note": spotting.note}


FRAME_COLUMNS = "frame,time_s,face_found,score,flags"


def frame_line(t: int, time: float, found: bool, relative: float, flags: list[str]) -> str:
    """One row of ``frames.csv`` (without its line end): frame, time, face found, score over threshold, flags."""
    return f"{t},{round(time, 4)},{int(found)},{round(float(relative), 4)},{';'.join(flags)}"


def write_frames_csv(
    path: Path, states: np.ndarray, relative: np.ndarray, times: np.ndarray, chunk: int = 4096
) -> None:
    """``frame, time_s, face_found, score, flags``, written a chunk of rows at a time; ``times``
    (T,) seconds, each frame's own timestamp."""
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w") as file:
        file.write(FRAME_COLUMNS + "\n")
        for start in range(0, len(states), chunk):
            file.writelines(
                frame_line(t, times[t], states[t, 0] == 1, relative[t], flag_names(int(states[t, 3]))) + "\n"
                for t in range(start, min(start + chunk, len(states)))
            )


def interval_row(interval: Interval, times) -> dict:
    """An interval as a row of ``intervals.csv``; ``times[t]`` is frame t's time in seconds."""
    apex = interval.apex if interval.apex is not None else (interval.onset + interval.offset) // 2
    return {
        "onset_frame": interval.onset,
        "apex_frame": apex,
        "offset_frame": interval.offset,
        "onset_s": round(float(times[interval.onset]), 4),
        "apex_s": round(float(times[apex]), 4),
        "offset_s": round(float(times[interval.offset]), 4),
        "kind": interval.kind,
        "score": round(interval.score, 4),
    }


def write_intervals(out: Path, rows: list[dict], model=None) -> None:
    """``intervals.csv`` and ``intervals.json`` in ``out``, atomically (the class columns with a bundle)."""
    columns = ["onset_frame", "apex_frame", "offset_frame", "onset_s", "apex_s", "offset_s", "kind", "score"]
    if model is not None:
        columns += ["prediction", *[f"p_{c}" for c in model.classes], "note"]
    columns += ["decided_s", "delay_s"] if rows and "decided_s" in rows[0] else []  # live: when it was decided
    atomic_write_text(out / "intervals.csv", pd.DataFrame(rows, columns=columns).to_csv(index=False))
    atomic_write_text(out / "intervals.json", json.dumps(rows, indent=1))


def recognise(model, faces: np.ndarray, apex: int, fps: float) -> dict:
    """The bundle's class and probabilities for one interval's faces; a note where it cannot say."""
    try:
        [label], [p] = model.classify(faces, onset=0, apex=apex, offset=len(faces) - 1, fps=fps)
    except MerkitError as error:
        return {"prediction": "", **{f"p_{c}": None for c in model.classes}, "note": str(error)}
    return {"prediction": str(label), **{f"p_{c}": round(float(v), 4) for c, v in zip(model.classes, p)}, "note": ""}


def jpeg_data(rgb: np.ndarray) -> str:
    _, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode()


def write_annotated(
    source: FrameSource, cache: TrackCache, intervals: list[Interval], rows: list[dict], path: Path
) -> None:
    """``annotated.mp4``: each frame with the face box and landmarks, and during an interval its
    kind and (with a bundle) class on a banner."""
    label_at: dict[int, tuple[str, tuple[int, int, int]]] = {}
    for interval, row in zip(intervals, rows):
        for t in range(interval.onset, interval.offset + 1):
            label_at[t] = banner(row)
    with (
        video_writer(path, source.fps) as write,
        progress_bar("annotating", cache.n_frames(), unit="frames") as advance,
    ):
        for t, (frame, (points, transform)) in enumerate(zip(source.frames(), cache.shapes())):
            write(annotate(frame, points if transform.any() else None, label_at.get(t)))
            advance()


def banner(row: dict) -> tuple[str, tuple[int, int, int]]:
    """The text and colour of an interval's banner: its kind and, with a bundle, its class and probability."""
    text = row["kind"].upper() + (f"  {row['prediction']}" if row.get("prediction") else "")
    probability = max((v for k, v in row.items() if k.startswith("p_") and v is not None), default=None)
    text += f" {probability:.2f}" if probability is not None and row.get("prediction") else ""
    return text, KIND_RGB[row["kind"]]


def annotate(
    frame: np.ndarray, points: np.ndarray | None, label: tuple[str, tuple[int, int, int]] | None = None
) -> np.ndarray:
    """A copy of uint8 (H, W, 3) RGB ``frame`` with the face box and (68, 2) landmarks ``points``
    (None: no face) and a banner ``(text, colour)``."""
    frame = frame.copy()
    scale = max(1, round(frame.shape[1] / 640))
    if points is not None:
        (x0, y0), (x1, y1) = points.min(axis=0).astype(int), points.max(axis=0).astype(int)
        cv2.rectangle(frame, (x0, y0), (x1, y1), (40, 220, 40), scale)
        for x, y in points.astype(int):
            cv2.circle(frame, (int(x), int(y)), scale, (0, 255, 255), -1)
    if label is not None:
        text, colour = label
        cv2.rectangle(frame, (0, 0), (frame.shape[1], 28 * scale), colour, -1)
        cv2.putText(
            frame, text, (8, 20 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 255), scale, cv2.LINE_AA
        )
    return frame
