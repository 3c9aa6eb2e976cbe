"""Reading and writing frames and files: numeric frame order, atomic writes."""

from merkit.io.atomic import atomic_write_bytes, atomic_write_text
from merkit.io.frames import frame_number, list_frames, read_frame, read_frames

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "frame_number",
    "list_frames",
    "read_frame",
    "read_frames",
]
