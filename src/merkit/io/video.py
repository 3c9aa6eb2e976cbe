"""Videos read with PyAV: frame count and decoded frames.

Frames come out upright and timed as phones and webcams record them: a stream's rotation (its
display matrix) is applied to each frame, and each frame's time is its own timestamp (``pts *
time_base``, from the first frame's), not its index over the average rate, so a variable frame
rate keeps its true times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from merkit.errors import ConfigError, DatasetError
from merkit.io.atomic import atomic_path


def count_video_frames(path: str | Path) -> int:
    """Number of frames of the first video stream (decoded to count when the header lacks it)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            return sum(1 for _ in container.decode(stream))
    except (av.error.FFmpegError, IndexError) as error:
        raise DatasetError(f"Cannot read video {path}: {error}") from error


def upright(frame: av.VideoFrame, fmt: str = "rgb24") -> np.ndarray:
    """The decoded ``frame`` as uint8 (H, W, 3) RGB (or (H, W) for ``fmt='gray'``), turned by its
    display matrix's rotation (counter-clockwise degrees, as FFmpeg gives it) so it stands upright."""
    image = frame.to_ndarray(format=fmt)
    turns = int(round((frame.rotation or 0) / 90)) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def decode_timed(container, stream, fmt: str = "rgb24") -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds from the first frame, upright frame) for each frame of ``stream``; a frame
    without a timestamp takes the last one's plus one frame at the stream's average rate."""
    first, last = None, None
    step = 1.0 / float(stream.average_rate or stream.guessed_rate or 30)
    for frame in container.decode(stream):
        if frame.pts is None or frame.time is None:
            time = 0.0 if last is None else last + step
        else:
            first = frame.time if first is None else first
            time = frame.time - first
            time = time if last is None or time > last else last + step  # never back in time (a broken stream)
        last = time
        yield time, upright(frame, fmt)


def read_video(path: str | Path, *, grey: bool = False) -> np.ndarray:
    """All frames, uint8 (T, H, W, 3) RGB or (T, H, W) grey, upright."""
    fmt = "gray" if grey else "rgb24"
    try:
        with av.open(str(path)) as container:
            frames = [f for _, f in decode_timed(container, container.streams.video[0], fmt)]
    except (av.error.FFmpegError, IndexError) as error:
        raise DatasetError(f"Cannot read video {path}: {error}") from error
    if not frames:
        raise DatasetError(f"Video {path} holds no frames.")
    return np.stack(frames)


def iter_video(path: str | Path, start: int = 0) -> Iterator[np.ndarray]:
    """uint8 (H, W, 3) RGB upright frames from position ``start`` (:func:`iter_video_timed` without the times)."""
    return (frame for _, frame in iter_video_timed(path, start))


def iter_video_timed(path: str | Path, start_at: int = 0) -> Iterator[tuple[float, np.ndarray]]:
    """(time s, uint8 (H, W, 3) RGB upright frame) from position ``start``, decoded one at a time
    (:func:`decode_timed`); a video that cannot be opened or breaks off (truncated, damaged) raises
    DatasetError naming the frame."""
    index, time, counted, promised, start = 0, 0.0, 0, 0.0, 0.0
    fix = "re-export or re-copy it (ffmpeg -i IN -c:v libx264 OUT.mp4 rewrites what can be read)"
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            counted = int(stream.frames or 0)
            promised = container.duration / 1e6 if container.duration else 0.0
            start = (
                float(stream.start_time * stream.time_base)
                if stream.start_time is not None and stream.time_base
                else 0.0
            )
            step = 1.0 / float(stream.average_rate or 30)
            for time, frame in decode_timed(container, stream):
                if index >= start_at:
                    yield time, frame
                index += 1
    except (av.error.FFmpegError, IndexError) as error:
        where = f"after frame {index}" if index else "before its first frame"
        raise DatasetError(
            f"Cannot read video {path} {where}: {error}. The file is damaged or truncated; {fix}."
        ) from error
    # a cut-off file often decodes without an error: its frames (or, at a variable rate, its time) fall short of the header's
    if counted and index < 0.98 * counted - 1:
        raise DatasetError(
            f"Video {path} ends after frame {index} but its header says {counted} frames: it is truncated; {fix}."
        )
    if not counted and promised and start + time + 2 * step < 0.98 * promised:
        raise DatasetError(
            f"Video {path} ends after frame {index} at {start + time:.2f} s but its header says {promised:.2f} s: "
            f"it is truncated; {fix}."
        )


def expected_frames(container, stream) -> int:
    """The frame count a video's header promises (frame count, else duration times frame rate); 0 if unknown."""
    if stream.frames:
        return int(stream.frames)
    rate = float(stream.average_rate or 0)
    if stream.duration and stream.time_base:
        return int(round(float(stream.duration * stream.time_base) * rate))
    return int(round(container.duration / 1e6 * rate)) if container.duration else 0


def video_header(path: str | Path) -> tuple[int, float]:
    """(frames, frame rate) the first video stream's header gives, without decoding (0 where it
    does not say); a file that is not a video raises DatasetError naming it."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return expected_frames(container, stream), float(stream.average_rate or 0.0)
    except (av.error.FFmpegError, IndexError) as error:
        raise DatasetError(
            f"Cannot read video {path}: {error}. Is it a video file? Re-export it as .mp4 if it is."
        ) from error


def video_fps(path: str | Path) -> float:
    """Frame rate of the first video stream."""
    return video_header(path)[1]


VIDEO_CODECS = {".mp4": "libx264", ".mkv": "ffv1"}


def video_codec(path: str | Path) -> str:
    """The codec a video written to ``path`` gets: H.264 for ``.mp4``, lossless FFV1 for ``.mkv``.

    Checked before any work is done, so a wrong suffix never costs a finished computation.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_CODECS:
        raise ConfigError(f"Cannot write a video to {path}: name it .mp4 (H.264) or .mkv (lossless FFV1).")
    return VIDEO_CODECS[suffix]


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float,
    codec: str | None = None,
    crf: int | None = None,
    *,
    times: np.ndarray | None = None,
    rotation: int = 0,
) -> None:
    """Write uint8 (T, H, W, 3) RGB frames, atomically (a crash leaves no partial video under
    ``path``). The codec follows the suffix unless given: ``.mkv`` lossless FFV1, ``.mp4`` H.264
    (frames padded to even sizes, as H.264 needs) at x264's constant rate factor ``crf`` (its
    default, 23, when None; lower is closer to the frames: sub-pixel motion needs about 10).
    ``times`` (T,) seconds gives each frame its own timestamp (a variable frame rate, to the
    millisecond); ``rotation`` (a multiple of 90, counter-clockwise) tags the stream as a phone
    does for a frame stored sideways."""
    with video_writer(path, fps, codec=codec, crf=crf, timed=times is not None, rotation=rotation) as write:
        for t, frame in enumerate(frames):
            write(frame, None if times is None else float(times[t]))


@contextmanager
def video_writer(
    path: str | Path,
    fps: float,
    codec: str | None = None,
    crf: int | None = None,
    *,
    timed: bool = False,
    rotation: int = 0,
) -> Iterator[Callable[..., None]]:
    """Yield ``write(frame, time=None)`` taking uint8 (H, W, 3) RGB frames one at a time (as
    :func:`write_video`; with ``timed``, each frame's ``time`` in seconds is its timestamp); the
    video appears at ``path`` only when the block ends without error."""
    path = Path(path)
    codec = codec or video_codec(path)
    if rotation % 90:
        raise ConfigError(f"Cannot tag {path} with a rotation of {rotation} degrees: give a multiple of 90.")
    with atomic_path(path, suffix=path.suffix) as tmp, av.open(str(tmp), mode="w") as container:
        stream = container.add_stream(
            codec, rate=int(round(fps)), options={"crf": str(crf)} if crf is not None and codec == "libx264" else {}
        )
        stream.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
        if timed:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        if rotation % 360:
            stream.set_display_rotation(rotation % 360)
        sized = []

        def write(frame: np.ndarray, time: float | None = None) -> None:
            if codec != "ffv1":
                frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
            if not sized:  # the stream takes the first frame's size
                stream.width, stream.height = frame.shape[1], frame.shape[0]
                sized.append(True)
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            if timed:
                picture.pts, picture.time_base = int(round(time * 1000)), Fraction(1, 1000)
            for packet in stream.encode(picture):
                container.mux(packet)

        yield write
        for packet in stream.encode():
            container.mux(packet)
