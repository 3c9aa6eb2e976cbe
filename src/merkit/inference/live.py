"""Analyse a camera or a stream as it happens: analyze's steps, causally, with a local dashboard.

A reader thread decodes the source (PyAV: a camera, any URL FFmpeg reads, or a file played at its
own rate) into a bounded queue; when the queue is full the frame is dropped and counted, never
queued without bound. The main thread tracks the face frame by frame
(:class:`~merkit.preprocess.tracking.FaceTracker`, as ``merkit analyze``), feeds the spotter's
causal version (:meth:`merkit.spotting.Spotter.online`), and reports each interval as soon as it
is decided: its row (recognised at once by the bundle, if given) is written to
``intervals.csv``/``.json`` there and then, so a session that is killed keeps what it found.
Memory is flat: only the last seconds of faces, times and scores are held; frame rows go to
``frames.csv`` as their scores become known.

On end of stream, Ctrl-C (KeyboardInterrupt) or a stream that breaks and cannot be reconnected,
``out`` holds what :func:`merkit.inference.analyze.analyze` writes: ``frames.csv`` (with a
``latency_s`` column: seconds from decoding to tracking), ``intervals.csv``/``.json``,
``report.html``, and ``annotated.mp4`` when asked (its frames wait, in memory, until any interval
over them is decided: the spotter's ``reach``, 6.5 s for roi_flow, about 180 MB at 640x480);
each written atomically. A live interval's row
also says when it was decided: ``decided_s`` (the stream's time then) and ``delay_s`` (seconds of
the clock from the arrival of its last frame).
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd

from merkit.datasets.intervals import Interval
from merkit.errors import ConfigError, DatasetError
from merkit.inference.analyze import (
    FRAME_COLUMNS,
    annotate,
    banner,
    frame_line,
    interval_row,
    jpeg_data,
    recognise,
    write_intervals,
)
from merkit.inference.report import write_analysis_report
from merkit.io.atomic import atomic_path
from merkit.io.video import decode_timed, video_writer
from merkit.preprocess.track_cache import FACE_SIZE, UNUSABLE, crop_face
from merkit.preprocess.tracking import FaceTracker
from merkit.spotting import Spotter, create_spotter

SCHEMES = ("rtsp", "rtsps", "rtmp", "udp", "tcp", "http", "https", "srt", "rtp")


@dataclass(frozen=True)
class LiveSource:
    """What :func:`live` reads: ``url`` as PyAV opens it, ``kind`` camera, network or file."""

    url: str
    kind: str
    format: str | None = None  # v4l2 for a camera

    @property
    def name(self) -> str:
        return Path(self.url).name if self.kind == "file" else self.url


def live_source(text: str) -> LiveSource:
    """A camera (``0``, ``/dev/video0``), a stream URL (``rtsp://``, ``udp://``, ``tcp://``,
    ``http://``...) or a video file; anything else is a ConfigError naming the forms."""
    text = str(text)
    if text.isdigit():
        return LiveSource(f"/dev/video{text}", "camera", "v4l2")
    if text.startswith("/dev/video"):
        return LiveSource(text, "camera", "v4l2")
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in SCHEMES:
            raise ConfigError(f"Cannot read {text}: streams start with one of {', '.join(s + '://' for s in SCHEMES)}.")
        return LiveSource(text, "network")
    if not Path(text).is_file():
        raise ConfigError(
            f"{text} is neither a camera (0, /dev/video0), a stream URL (rtsp://, udp://, tcp://, http://) "
            "nor a video file."
        )
    return LiveSource(text, "file")


@dataclass
class _Item:
    index: int  # the frame's number in the stream (dropped frames counted)
    time: float  # seconds from the stream's first frame
    frame: np.ndarray
    arrived: float  # time.monotonic() when it was decoded


_END = None


class Reader(threading.Thread):
    """Decode ``source`` into :attr:`queue` (``seconds`` of frames at most). A file is read as fast as
    it is taken (no frame dropped) unless ``realtime``, when it is played at its own rate; a camera
    or a stream is never waited for: a frame that finds the queue full is dropped and counted. A
    stream that breaks (or ends) is reopened up to ``reconnects`` times; ``drop=False`` makes any
    source wait for room instead (a stream sent from a file, with nothing lost); ``notes`` collects what
    happened, for the log and the dashboard."""

    def __init__(
        self,
        source: LiveSource,
        *,
        seconds: float = 2.0,
        realtime: bool = False,
        drop: bool | None = None,
        reconnects: int = 3,
        timeout: float = 10.0,
    ):
        super().__init__(daemon=True, name="merkit-live-reader")
        self.source, self.realtime, self.reconnects, self.timeout = source, realtime, reconnects, timeout
        self.drop = drop if drop is not None else source.kind != "file" or realtime
        self.seconds = seconds
        self.queue: queue.Queue = queue.Queue(maxsize=2)  # sized to ``seconds`` of frames once the rate is known
        self.dropped = 0
        self.fps: float | None = None
        self.error: Exception | None = None
        self.broken = False  # the stream broke and could not be reopened
        self.opened, self.stop = threading.Event(), threading.Event()
        self.notes: deque = deque(maxlen=100)

    def _open(self):
        options = {"rw_timeout": str(int(self.timeout * 1e6))} if self.source.kind == "network" else {}
        return av.open(
            self.source.url,
            format=self.source.format,
            options=options,
            timeout=self.timeout if self.source.kind != "file" else None,
        )

    def run(self) -> None:
        index, offset, attempt = 0, 0.0, 0
        try:
            while not self.stop.is_set():
                try:
                    with self._open() as container:
                        stream = container.streams.video[0]
                        stream.thread_type = "AUTO"
                        if self.fps is None:
                            self.fps = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
                            self.queue.maxsize = max(2, int(round(self.seconds * self.fps)))
                            self.opened.set()
                        elif attempt:
                            self.notes.append(f"reconnected to {self.source.name} at {offset:.2f} s")
                        attempt, started, last = 0, time.monotonic(), offset
                        for t, frame in decode_timed(container, stream):
                            if self.stop.is_set():
                                return
                            if self.realtime and (wait := started + t - time.monotonic()) > 0:
                                self.stop.wait(wait)
                            last = offset + t
                            self._put(_Item(index, last, frame, time.monotonic()))
                            index += 1
                        offset = last + 1 / self.fps
                    if self.source.kind != "network":
                        return
                    problem = "ended"
                except (av.error.FFmpegError, OSError, IndexError) as error:
                    if self.fps is None:  # never opened: nothing to reconnect to
                        self.error = error
                        return
                    problem = f"broke ({error})"
                if self.source.kind == "file" or attempt >= self.reconnects:
                    if self.source.kind != "file" or problem != "ended":
                        self.broken = self.broken or problem != "ended"
                        self.notes.append(
                            f"the stream {problem} at {offset:.2f} s"
                            + (f"; {attempt} reconnection(s) failed" if attempt else "")
                        )
                    return
                attempt += 1
                self.notes.append(
                    f"the stream {problem} at {offset:.2f} s; reconnecting ({attempt} of {self.reconnects})"
                )
                self.stop.wait(1.0)
        finally:
            self.opened.set()
            self._put(_END, wait=True)

    def _put(self, item: _Item | None, wait: bool | None = None) -> None:
        """Into the queue: a file's frames (not realtime) and the end wait for room; other frames are dropped when it is full."""
        if wait or (wait is None and not self.drop):
            while not self.stop.is_set() or item is _END:
                try:
                    self.queue.put(item, timeout=0.2)
                    return
                except queue.Full:
                    if item is _END and self.stop.is_set():
                        return
            return
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1


class _Recent:
    """The values of the last ``size`` frames, by frame number (a bounded window for times and faces)."""

    def __init__(self, size: int):
        self.items: deque = deque(maxlen=size)
        self.first = 0

    def append(self, t: int, value) -> None:
        """Frame ``t``'s value (frames come in order, one number after the other)."""
        self.items.append(value)
        self.first = t - len(self.items) + 1

    def __getitem__(self, t: int):
        if not self.items:
            raise KeyError(t)
        return self.items[
            min(max(t - self.first, 0), len(self.items) - 1)
        ]  # clamped: an interval's edge just out of the window

    def span(self, a: int, b: int) -> list:
        return [
            self.items[i - self.first] for i in range(max(a, self.first), min(b, self.first + len(self.items) - 1) + 1)
        ]


@dataclass
class Stats:
    """What the dashboard and the summary show of a running session."""

    frames: int = 0
    faces: int = 0
    dropped: int = 0
    stalls: int = 0
    fps: float = 0.0
    latency: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "frames": self.frames,
            "faces": self.faces,
            "dropped": self.dropped,
            "stalls": self.stalls,
            "fps": round(self.fps, 1),
            "latency": round(self.latency, 3),
            "notes": self.notes[-5:],
        }


@dataclass(frozen=True)
class _Named:
    """What the analysis report needs of its source: a name and a frame rate."""

    path: Path
    fps: float


def live(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    model=None,
    spotter: str | Spotter = "roi_flow",
    realtime: bool = False,
    drop: bool | None = None,
    annotate_video: bool = False,
    dashboard=None,
    queue_seconds: float = 2.0,
    history: float = 600.0,
    stall: float = 5.0,
    reconnects: int = 3,
    timeout: float = 10.0,
    on_interval: Callable[[dict], None] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Track, spot and (with ``model``, a bundle from :func:`merkit.load_model`) recognise the
    expressions of ``source`` (see :func:`live_source`) as they happen; write the outputs listed in
    the module's docstring to ``out`` at the end of the stream or on Ctrl-C.

    ``dashboard`` (a started :class:`merkit.inference.dashboard.Dashboard`) gets the frames,
    scores and intervals; ``on_interval(row)`` is called for each interval as it is decided;
    ``log`` gets the notes (stalls, breaks, reconnections). The queue holds ``queue_seconds`` of
    frames; when it is full a camera's or a stream's frames are dropped (a file's wait, unless
    ``realtime``), or any source's wait with ``drop=False``. A source silent for ``stall`` seconds
    is reported; a stream that breaks is reopened ``reconnects`` times. ``history`` seconds of
    scores make the running thresholds.

    Returns a summary: frames, frames with a face, dropped frames, stalls, notes, intervals (the
    rows of intervals.json) and how the session ended (end of stream, interrupted, stream broke).
    """
    where = live_source(str(source))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder for the session.")
    spotter = create_spotter(spotter) if isinstance(spotter, str) else spotter
    spotter.online(30.0)  # a spotter that cannot run live says so before anything is opened
    reader = Reader(where, seconds=queue_seconds, realtime=realtime, drop=drop, reconnects=reconnects, timeout=timeout)
    reader.start()
    reader.opened.wait()
    if reader.error is not None or reader.fps is None:
        raise DatasetError(
            f"Cannot open {where.url}: {reader.error}. Check that the camera is connected (ls /dev/video*), "
            "that the stream is being sent to that address, or that the file is a video."
        )
    fps = reader.fps
    session = _Session(
        where,
        out,
        fps,
        spotter.online(fps, history=history),
        spotter.name,
        model,
        annotate_video,
        dashboard,
        on_interval,
        log,
    )
    ended = "end of stream"
    try:
        session.run(reader, stall)
        if reader.broken:
            ended = "stream broke"
    except KeyboardInterrupt:
        ended = "interrupted"
    finally:
        reader.stop.set()
    summary = session.finish(reader)
    summary["ended"] = ended
    log(
        f"{where.name}: {ended} after {summary['frames']} frames; {len(summary['intervals'])} interval(s), "
        f"{summary['dropped']} frame(s) dropped; outputs in {out}"
    )
    return summary


class _Session:
    """The main thread's side of :func:`live`: tracking, spotting, rows and outputs."""

    def __init__(
        self,
        source: LiveSource,
        out: Path,
        fps: float,
        online,
        spotter: str,
        model,
        annotate_video: bool,
        dashboard,
        on_interval,
        log,
    ):
        self.source, self.out, self.fps, self.online, self.spotter, self.model = (
            source,
            out,
            fps,
            online,
            spotter,
            model,
        )
        self.dashboard, self.on_interval, self.log = dashboard, on_interval, log
        self.tracker = FaceTracker(fps)
        window = online.reach + int(
            math.ceil(fps)
        )  # an interval's frames and its decision's delay, and a second to spare
        self.times, self.faces, self.arrivals = _Recent(window), _Recent(window), _Recent(window)
        self.pending: deque = deque()  # frame rows waiting for their score
        self.rows: list[dict] = []
        self.thumbnails: dict[int, str] = {}
        self.stats = Stats()
        self.next = 0  # the next frame number the tracker expects
        self.latest = -1  # the last frame the spotter has taken
        self.transform = None
        self.rate = deque(maxlen=max(2, int(fps)))  # processing times of the last second's frames
        out.mkdir(parents=True, exist_ok=True)
        self._frames_file = atomic_path(out / "frames.csv", suffix=".csv")
        self.frames_csv = open(self._frames_file.__enter__(), "w")
        self.frames_csv.write(FRAME_COLUMNS + ",latency_s\n")
        self.video = self.write_frame = None
        if annotate_video:
            self.video = video_writer(out / "annotated.mp4", fps, timed=True)
            self.write_frame = self.video.__enter__()
            self.delayed: deque = deque()  # (t, time, frame, points): written once their banner is known
        # tracking (this thread) and spotting (the next) run side by side: OpenCV's flow lets go of the GIL
        self.work: queue.Queue = queue.Queue(maxsize=max(2, int(fps)))
        self.failure: BaseException | None = None
        self.spotting = threading.Thread(target=self._spot, daemon=True, name="merkit-live-spotter")
        self.spotting.start()

    def run(self, reader: Reader, stall: float) -> None:
        silent_since, reported = None, False
        while True:
            try:
                item = reader.queue.get(timeout=min(stall, 0.5))
            except queue.Empty:
                self._note(reader)
                if silent_since is None:
                    silent_since, reported = time.monotonic(), False
                elif not reported and time.monotonic() - silent_since >= stall:
                    self.stats.stalls += 1
                    self._say(f"no frame from {self.source.name} for {stall:g} s (the stream stalled)")
                    reported = True
                continue
            silent_since = None
            if item is _END:
                self._note(reader)
                return
            self.step(item, reader)

    def _note(self, reader: Reader) -> None:
        self.stats.dropped = reader.dropped
        while reader.notes:
            self._say(reader.notes.popleft())

    def _say(self, note: str) -> None:
        self.stats.notes = [*self.stats.notes[-99:], note]  # the last hundred: a flapping stream does not grow memory
        self.log(note)
        if self.dashboard is not None:
            self.dashboard.publish("note", {"text": note})

    def step(self, item: _Item, reader: Reader) -> None:
        """Track one frame and hand it (with the frames dropped before it) to the spotting thread."""
        seen = self.tracker.update(item.frame)
        if seen.found:
            self.transform = seen.transform
        usable = seen.found and not set(seen.flags) & set(UNUSABLE)
        crop = crop_face(item.frame, self.transform, 1.0, FACE_SIZE) if self.transform is not None else None
        now = time.monotonic()
        self.rate.append(now)
        self.stats.frames, self.stats.faces = self.stats.frames + 1, self.stats.faces + seen.found
        self.stats.latency = now - item.arrived
        self.stats.fps = (
            (len(self.rate) - 1) / (self.rate[-1] - self.rate[0])
            if len(self.rate) > 1 and self.rate[-1] > self.rate[0]
            else 0.0
        )
        job = (
            self.next,
            item,
            seen.face if usable else None,
            crop,
            seen.flags,
            self.stats.latency,
            seen.found,
            seen.landmarks,
        )
        while True:  # a full hand-over waits (the reader's queue then fills, and a live source drops)
            if self.failure is not None:
                raise self.failure
            try:
                self.work.put(job, timeout=0.5)
                break
            except queue.Full:
                continue
        self.next = item.index + 1
        if self.dashboard is not None:
            self.dashboard.set_frame(item.frame, seen.landmarks)
            if item.index % max(1, int(self.fps / 5)) == 0:
                self._note(reader)
                self.dashboard.publish("status", {**self.stats.as_dict(), "time": round(item.time, 2)})

    def _spot(self) -> None:
        """The spotting thread: each tracked frame (after the dropped ones before it) into the spotter, rows and intervals out."""
        try:
            while (job := self.work.get()) is not None:
                first, item, face, crop, flags, latency, found, landmarks = job
                for t in range(first, item.index):  # dropped: no face, so no flow reaches across them
                    self._frame(
                        t, item.time - (item.index - t) / self.fps, item.arrived, None, None, ("dropped",), float("nan")
                    )
                self._frame(item.index, item.time, item.arrived, face, crop, flags, latency, found)
                if self.video is not None:
                    self.delayed.append((item.index, item.time, item.frame, landmarks))
                    while (
                        self.delayed and self.delayed[0][0] < item.index - self.online.reach
                    ):  # its interval is known by then
                        self._write_delayed()
        except BaseException as error:  # handed to the tracking thread, which raises it
            self.failure = error

    def _frame(
        self,
        t: int,
        when: float,
        arrived: float,
        face,
        crop,
        flags: tuple[str, ...],
        latency: float,
        found: bool = False,
    ) -> None:
        self.times.append(t, when)
        self.arrivals.append(t, arrived)
        self.faces.append(t, crop)
        self.pending.append((t, when, found, list(flags), latency))
        self.latest = t
        pairs, decided = self.online.push(face)
        self._scored(pairs)
        for interval in decided:
            self._interval(interval)

    def _scored(self, pairs: list[tuple[int, float]]) -> None:
        """Write the rows of the frames whose scores are now known."""
        trace = []
        for frame, relative in pairs:
            while self.pending and self.pending[0][0] <= frame:
                t, when, found, flags, latency = self.pending.popleft()
                value = relative if t == frame else 0.0
                self.frames_csv.write(
                    frame_line(t, when, found, value, flags)
                    + ("," if math.isnan(latency) else f",{latency:.4f}")
                    + "\n"
                )
                trace.append((round(float(when), 3), round(float(value), 3)))
        if trace and self.dashboard is not None:
            self.dashboard.publish("scores", {"points": trace})

    def _interval(self, interval: Interval) -> None:
        """Report a decided interval: its row (and class), written at once, and published."""
        row = interval_row(interval, self.times)
        faces = [f for f in self.faces.span(interval.onset, interval.offset)]
        apex = interval.apex if interval.apex is not None else interval.onset
        kept = [
            (t, f)
            for t, f in zip(range(max(interval.onset, self.faces.first), interval.offset + 1), faces)
            if f is not None
        ]
        i = len(self.rows)
        if kept:
            position = int(np.argmin([abs(t - apex) for t, _ in kept]))
            self.thumbnails[i] = jpeg_data(kept[position][1])
            if self.model is not None:
                stride = max(1, -(-len(kept) // 64))
                chosen = kept[::stride]
                position = int(np.argmin([abs(t - apex) for t, _ in chosen]))
                big = np.stack(
                    [cv2.resize(f, (2 * FACE_SIZE, 2 * FACE_SIZE), interpolation=cv2.INTER_LINEAR) for _, f in chosen]
                )
                row.update(recognise(self.model, big, position, self.fps * len(chosen) / interval.length))
        elif self.model is not None:
            row.update(recognise(self.model, np.zeros((0, 2 * FACE_SIZE, 2 * FACE_SIZE, 3), np.uint8), 0, self.fps))
        row["decided_s"] = round(self.times[self.latest], 4)
        row["delay_s"] = round(time.monotonic() - self.arrivals[interval.offset], 3)  # from its last frame's arrival
        self.rows.append(row)
        write_intervals(self.out, self.rows, self.model)  # at once: a killed session keeps it
        self.log(
            f"{row['kind']} {row['onset_s']:.2f}-{row['offset_s']:.2f} s"
            + (f": {row['prediction']}" if row.get("prediction") else "")
        )
        if self.dashboard is not None:
            self.dashboard.publish("interval", {**row, "face": self.thumbnails.get(i, "")})
        if self.on_interval is not None:
            self.on_interval(row)

    def _write_delayed(self) -> None:
        t, when, frame, points = self.delayed.popleft()
        label = next((banner(r) for r in self.rows if r["onset_frame"] <= t <= r["offset_frame"]), None)
        self.write_frame(annotate(frame, points, label), when)

    def finish(self, reader: Reader) -> dict:
        """The remaining scores and intervals; every output written atomically; the summary."""
        self._note(reader)
        if self.spotting.is_alive():
            self.work.put(None)  # the frames handed over are spotted first
        self.spotting.join()
        if self.failure is not None:
            raise self.failure
        pairs, decided = self.online.finish()
        self._scored(pairs)
        for interval in decided:
            self._interval(interval)
        self._scored([(t, 0.0) for t, *_ in list(self.pending)])
        self.frames_csv.close()
        self._frames_file.__exit__(None, None, None)
        if self.video is not None:
            while self.delayed:
                self._write_delayed()
            self.video.__exit__(None, None, None)
        write_intervals(self.out, self.rows, self.model)
        frames = pd.read_csv(self.out / "frames.csv", usecols=["face_found", "score"])
        relative, found = frames["score"].to_numpy(float), frames["face_found"].to_numpy() == 1
        classes = tuple(self.model.classes) if self.model is not None else ()
        note = (
            ""
            if len(frames) >= 2 * self.online.lookahead
            else (
                f"The session has {len(frames)} frame(s); live spotting needs its scores' {self.online.lookahead} frames of lookahead."
            )
        )
        write_analysis_report(
            self.out / "report.html",
            source=_Named(Path(self.source.name), self.fps),
            relative=relative,
            found=found,
            rows=self.rows,
            thumbnails=self.thumbnails,
            classes=classes,
            spotter=self.spotter,
            note=note,
        )
        self.stats.dropped = reader.dropped
        if self.dashboard is not None:
            self.dashboard.publish("end", self.stats.as_dict())
        return {
            "frames": len(frames),
            "face_frames": int(found.sum()),
            "dropped": reader.dropped,
            "stalls": self.stats.stalls,
            "intervals": self.rows,
            "notes": list(self.stats.notes),
        }
