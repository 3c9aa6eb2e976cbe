"""Videos read with PyAV: frame count and decoded frames."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def read_video(path: str | Path, *, grey: bool = False) -> np.ndarray:
    """All frames, uint8 (T, H, W, 3) RGB or (T, H, W) grey."""
    fmt = "gray" if grey else "rgb24"
    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format=fmt) for f in container.decode(container.streams.video[0])]
    except (av.error.FFmpegError, IndexError) as error:
        raise DatasetError(f"Cannot read video {path}: {error}") from error
    if not frames:
        raise DatasetError(f"Video {path} holds no frames.")
    return np.stack(frames)


def iter_video(path: str | Path, start: int = 0) -> Iterator[np.ndarray]:
    """uint8 (H, W, 3) RGB frames from position ``start``, decoded one at a time; a video that
    cannot be opened or breaks off (truncated, damaged) raises DatasetError naming the frame."""
    index, expected = 0, 0
    fix = "re-export or re-copy it (ffmpeg -i IN -c:v libx264 OUT.mp4 rewrites what can be read)"
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            expected = expected_frames(container, stream)
            for frame in container.decode(stream):
                if index >= start:
                    yield frame.to_ndarray(format="rgb24")
                index += 1
    except (av.error.FFmpegError, IndexError) as error:
        where = f"after frame {index}" if index else "before its first frame"
        raise DatasetError(f"Cannot read video {path} {where}: {error}. The file is damaged or truncated; {fix}.") from error
    if expected and index < 0.98 * expected - 1:  # a cut-off file often decodes without an error
        raise DatasetError(f"Video {path} ends after frame {index} but its header says {expected} frames: it is truncated; {fix}.")


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
        raise DatasetError(f"Cannot read video {path}: {error}. Is it a video file? Re-export it as .mp4 if it is.") from error


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


def write_video(path: str | Path, frames: np.ndarray, fps: float, codec: str | None = None, crf: int | None = None) -> None:
    """Write uint8 (T, H, W, 3) RGB frames, atomically (a crash leaves no partial video under
    ``path``). The codec follows the suffix unless given: ``.mkv`` lossless FFV1, ``.mp4`` H.264
    (frames padded to even sizes, as H.264 needs) at x264's constant rate factor ``crf`` (its
    default, 23, when None; lower is closer to the frames: sub-pixel motion needs about 10)."""
    with video_writer(path, fps, codec=codec, crf=crf) as write:
        for frame in frames:
            write(frame)


@contextmanager
def video_writer(path: str | Path, fps: float, codec: str | None = None, crf: int | None = None) -> Iterator[Callable[[np.ndarray], None]]:
    """Yield ``write(frame)`` taking uint8 (H, W, 3) RGB frames one at a time (as
    :func:`write_video`); the video appears at ``path`` only when the block ends without error."""
    path = Path(path)
    codec = codec or video_codec(path)
    with atomic_path(path, suffix=path.suffix) as tmp, av.open(str(tmp), mode="w") as container:
        stream = container.add_stream(codec, rate=int(round(fps)), options={"crf": str(crf)} if crf is not None and codec == "libx264" else {})
        stream.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
        sized = []

        def write(frame: np.ndarray) -> None:
            if codec != "ffv1":
                frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
            if not sized:  # the stream takes the first frame's size
                stream.width, stream.height = frame.shape[1], frame.shape[0]
                sized.append(True)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)

        yield write
        for packet in stream.encode():
            container.mux(packet)
