"""Whole synthetic datasets written in the real on-disk layouts, with their spreadsheets.

The demo, the tests and the benchmarks read these through the same readers as a user's copy
of the real dataset, so every quirk of the layout is exercised.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from openpyxl import Workbook

from merkit.io.atomic import atomic_write_bytes, atomic_write_text
from merkit.synthetic.clips import ClipTruth, Nuisance, synthesize_clip
from merkit.synthetic.expressions import Expression
from merkit.synthetic.faces import FaceGeometry, render_face

# Roughly CASME II's proportions, with the two rare words made a little less rare so that a
# small set still has them.
CASME2_EMOTIONS: dict[str, float] = {
    "others": 0.26, "disgust": 0.2, "happiness": 0.16, "repression": 0.12,
    "surprise": 0.14, "sadness": 0.06, "fear": 0.06,
}
MARKER = ".merkit-synthetic.json"


@dataclass(frozen=True)
class SynthConfig:
    """What a synthetic dataset is made of; the same config and seed give the same files.

    amplitude : (low, high)   peak displacement of an expression in pixels, drawn per clip
    duration : (low, high)    onset to offset in seconds, drawn per clip
    """

    n_subjects: int = 16
    clips_per_subject: tuple[int, int] = (6, 9)
    fps: float = 200.0
    size: tuple[int, int] = (144, 120)
    amplitude: tuple[float, float] = (0.3, 1.0)
    duration: tuple[float, float] = (0.3, 0.5)
    nuisance: Nuisance = Nuisance()
    emotions: Mapping[str, float] = field(default_factory=lambda: dict(CASME2_EMOTIONS))
    missing_apex: float = 0.08
    jpeg_quality: int = 95
    seed: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class SyntheticDataset:
    """A synthetic dataset on disk and the truth of every clip, in spreadsheet order."""

    root: Path
    dataset: str
    config: SynthConfig
    clips: list[ClipTruth]


def write_xlsx(path: Path, header: Sequence[object], rows: Sequence[Sequence[object]], preamble: Sequence[Sequence[object]] = ()) -> None:
    """An .xlsx sheet: optional preamble rows, the header row (None = empty cell), the rows."""
    book = Workbook()
    sheet = book.active
    for line in [*preamble, header, *rows]:
        sheet.append(list(line))
    buffer = io.BytesIO()
    book.save(buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _write_frames(folder: Path, frames: np.ndarray, numbers: Sequence[int], pattern: str, quality: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for frame, number in zip(frames, numbers):
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok, "OpenCV failed to encode a JPEG"
        (folder / pattern.format(number)).write_bytes(data.tobytes())


def subject_clips(config: SynthConfig, index: int):
    """Yield ``(truth, frames, first_number)`` for each clip of subject ``index`` (1-based).

    Deterministic from ``config.seed``; each subject has its own face and its own stream of
    random numbers, so subjects can be made in any order, in parallel, and adding subjects does
    not change the existing ones.
    """
    words = list(config.emotions)
    weights = np.array([config.emotions[w] for w in words], dtype=np.float64)
    weights /= weights.sum()
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(index)[-1])
    geometry = FaceGeometry.random(config.size, rng)
    face = render_face(geometry)
    n_clips = int(rng.integers(config.clips_per_subject[0], config.clips_per_subject[1] + 1))
    for c in range(1, n_clips + 1):
        emotion = words[int(rng.choice(len(words), p=weights))]
        expression = Expression.random(emotion, rng.uniform(*config.amplitude), rng)
        span = max(int(round(rng.uniform(*config.duration) * config.fps)), 6)
        lead, tail = int(rng.integers(0, 4)), int(rng.integers(0, 4))
        onset, offset = lead, lead + span - 1
        apex = onset + int(round(rng.uniform(0.3, 0.6) * (span - 1)))
        n_frames = offset + 1 + tail
        frames, apex_field, profile, drift = synthesize_clip(
            geometry, expression, n_frames=n_frames, onset=onset, apex=apex, offset=offset,
            nuisance=config.nuisance, rng=rng, face=face,
        )
        clip_id = f"EP{int(rng.integers(1, 20)):02d}_{c:02d}{'f' if rng.random() < 0.7 else ''}"
        truth = ClipTruth(
            subject=f"sub{index:02d}", clip=clip_id, emotion=emotion, expression=expression,
            onset=onset, apex=apex, offset=offset, n_frames=n_frames, fps=config.fps,
            apex_field=apex_field, profile=profile, drift=drift,
        )
        yield truth, frames, int(rng.integers(1, 400))


def _casme2_subject(root: Path, config: SynthConfig, index: int) -> list[tuple[ClipTruth, list]]:
    """Write one subject's clips in the CASME II layout; return each clip's truth and sheet row."""
    out = []
    apex_rng = np.random.default_rng([config.seed, index, 7])
    for truth, frames, first in subject_clips(config, index):
        numbers = [first + i for i in range(truth.n_frames)]
        _write_frames(root / "CASME2_RAW_selected" / truth.subject / truth.clip, frames, numbers, "img{}.jpg", config.jpeg_quality)
        apex_cell = "/" if apex_rng.random() < config.missing_apex else numbers[truth.apex]
        if apex_cell == "/":
            truth.apex = None
        row = [index, truth.clip, None, numbers[truth.onset], apex_cell, numbers[truth.offset], None, truth.expression.code, truth.emotion]
        out.append((truth, row))
    return out


def _for_each_subject(work, root: Path, config: SynthConfig, jobs: int, progress) -> list:
    """``work(root, config, index)`` for every subject, in ``jobs`` processes, results in subject order."""
    indices = range(1, config.n_subjects + 1)
    results = []
    if jobs <= 1:
        for index in indices:
            results.append(work(root, config, index))
            if progress is not None:
                progress(1)
        return results
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        for result in pool.map(work, [root] * len(indices), [config] * len(indices), indices):
            results.append(result)
            if progress is not None:
                progress(1)
    return results


def write_casme2(
    out: str | Path, config: SynthConfig = SynthConfig(), *, jobs: int = 1, progress: Callable[[int], None] | None = None
) -> SyntheticDataset:
    """Write a synthetic CASME II: ``CASME2_RAW_selected/subNN/EPxx_yy/imgN.jpg`` and the coding sheet.

    The sheet ``CASME2-coding-20140508.xlsx`` has the real columns (two with empty headers),
    ``Subject`` as an int, absolute frame numbers, and ``/`` for a share ``missing_apex`` of the
    apexes. Subjects are made in ``jobs`` processes; ``progress(1)`` is called per subject.
    Returns the truth of every clip (positions are 0-based within the clip's frames).
    """
    root = Path(out)
    per_subject = _for_each_subject(_casme2_subject, root, config, jobs, progress)
    clips = [truth for subject in per_subject for truth, _ in subject]
    rows = [row for subject in per_subject for _, row in subject]
    header = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units", "Estimated Emotion"]
    write_xlsx(root / "CASME2-coding-20140508.xlsx", header, rows)
    atomic_write_text(root / MARKER, config.to_json())
    return SyntheticDataset(root, "casme2", config, clips)


def is_written(out: str | Path, config: SynthConfig) -> bool:
    """Whether ``out`` already holds the dataset ``config`` describes (written completely)."""
    marker = Path(out) / MARKER
    return marker.is_file() and marker.read_text() == config.to_json()
