"""Whole synthetic datasets written in the real on-disk layouts, with their spreadsheets.

The demo, the tests and the benchmarks read these through the same readers as a user's copy
of the real dataset, so every quirk of the layout is exercised.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from openpyxl import Workbook

from merkit.errors import DatasetError
from merkit.executors import spawn_pool
from merkit.io.atomic import atomic_write_bytes, atomic_write_text
from merkit.synthetic.clips import ClipTruth, Nuisance, synthesize_clip
from merkit.synthetic.errata import Erratum, SheetSpec, spoil_rows
from merkit.synthetic.expressions import ACTION_UNITS, Expression
from merkit.synthetic.faces import FaceGeometry, render_face

# Roughly each dataset's proportions, rare words made a little less rare so that a small set
# still has them.
CASME2_EMOTIONS: dict[str, float] = {
    "others": 0.26,
    "disgust": 0.2,
    "happiness": 0.16,
    "repression": 0.12,
    "surprise": 0.14,
    "sadness": 0.06,
    "fear": 0.06,
}
CASME_EMOTIONS = {
    "tense": 0.3,
    "disgust": 0.2,
    "repression": 0.2,
    "surprise": 0.12,
    "amusement": 0.06,
    "sadness": 0.06,
    "contempt": 0.03,
    "fear": 0.03,
}
SMIC_EMOTIONS = {"negative": 0.43, "positive": 0.31, "surprise": 0.26}
SAMM_EMOTIONS = {
    "Anger": 0.3,
    "Other": 0.18,
    "Happiness": 0.18,
    "Surprise": 0.1,
    "Contempt": 0.1,
    "Disgust": 0.06,
    "Fear": 0.04,
    "Sadness": 0.04,
}
CASME3_EMOTIONS = {
    "others": 0.25,
    "disgust": 0.25,
    "surprise": 0.15,
    "happy": 0.1,
    "fear": 0.1,
    "anger": 0.08,
    "sad": 0.07,
}
MMEW_EMOTIONS = {"others": 0.3, "disgust": 0.2, "surprise": 0.2, "happiness": 0.12, "fear": 0.08, "sadness": 0.1}
FOURDME_EMOTIONS = {
    "Negative": 0.3,
    "Others": 0.2,
    "Positive": 0.15,
    "Surprise": 0.15,
    "Repression": 0.1,
    "Surprise+Positive": 0.05,
    "Negative+Surprise": 0.05,
}
FOURDME_WORDS = ("Positive", "Negative", "Surprise", "Repression", "Others")  # its 0/1 emotion columns
DFME_EMOTIONS = {
    "disgust": 0.25,
    "happiness": 0.2,
    "surprise": 0.15,
    "fear": 0.12,
    "anger": 0.1,
    "sadness": 0.1,
    "contempt": 0.08,
}
DFME_WORDS = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")  # EmotionId order
DFME_SPLITS = ("train", "train", "testA", "testB")  # subject k's split: DFME_SPLITS[(k - 1) % 4]
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
    errata: list[Erratum] = field(default_factory=list)


def write_xlsx(
    path: Path, header: Sequence[object], rows: Sequence[Sequence[object]], preamble: Sequence[Sequence[object]] = ()
) -> None:
    """An .xlsx sheet: optional preamble rows, the header row (None = empty cell), the rows."""
    book = Workbook()
    sheet = book.active
    for line in [*preamble, header, *rows]:
        sheet.append(list(line))
    buffer = io.BytesIO()
    book.save(buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _write_frames(
    folder: Path, frames: np.ndarray, numbers: Sequence[int], pattern: str, quality: int, encoding: str = ".jpg"
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for frame, number in zip(frames, numbers):
        params = [cv2.IMWRITE_JPEG_QUALITY, quality] if encoding == ".jpg" else []
        ok, data = cv2.imencode(encoding, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
        assert ok, f"OpenCV failed to encode a {encoding} image"
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
            geometry,
            expression,
            n_frames=n_frames,
            onset=onset,
            apex=apex,
            offset=offset,
            nuisance=config.nuisance,
            rng=rng,
            face=face,
        )
        clip_id = f"EP{int(rng.integers(1, 20)):02d}_{c:02d}{'f' if rng.random() < 0.7 else ''}"
        truth = ClipTruth(
            subject=f"sub{index:02d}",
            clip=clip_id,
            emotion=emotion,
            expression=expression,
            onset=onset,
            apex=apex,
            offset=offset,
            n_frames=n_frames,
            fps=config.fps,
            apex_field=apex_field,
            profile=profile,
            drift=drift,
        )
        yield truth, frames, int(rng.integers(1, 400))


def _work(root: Path, config: SynthConfig, index: int, layout: str):
    return LAYOUTS[layout][0](root, config, index)


def _for_each_subject(layout: str, root: Path, config: SynthConfig, jobs: int, progress) -> list:
    """The layout's subject writer for every subject, in ``jobs`` processes, results in subject order."""
    indices = list(range(1, config.n_subjects + 1))
    results = []
    if jobs <= 1:
        for index in indices:
            results.append(_work(root, config, index, layout))
            if progress is not None:
                progress(1)
        return results
    with spawn_pool(jobs) as pool:
        for result in pool.map(_work, [root] * len(indices), [config] * len(indices), indices, [layout] * len(indices)):
            results.append(result)
            if progress is not None:
                progress(1)
    return results


def _missing(config: SynthConfig, index: int, salt: int) -> np.random.Generator:
    """The random stream that decides which annotation cells are left empty."""
    return np.random.default_rng([config.seed, index, salt])


def _grey(frames: np.ndarray) -> np.ndarray:
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def _casme2_subject(root: Path, config: SynthConfig, index: int):
    out, missing = [], _missing(config, index, 7)
    for truth, frames, first in subject_clips(config, index):
        numbers = [first + i for i in range(truth.n_frames)]
        _write_frames(
            root / "CASME2_RAW_selected" / truth.subject / truth.clip, frames, numbers, "img{}.jpg", config.jpeg_quality
        )
        if missing.random() < config.missing_apex:
            truth.apex = None
        apex = "/" if truth.apex is None else numbers[truth.apex]
        out.append(
            (
                truth,
                [
                    index,
                    truth.clip,
                    None,
                    numbers[truth.onset],
                    apex,
                    numbers[truth.offset],
                    None,
                    _au_cell(truth, "casme2"),
                    truth.emotion,
                ],
            )
        )
    return out


def _casme_subject(root: Path, config: SynthConfig, index: int):
    section = "A" if index <= (config.n_subjects + 1) // 2 else "B"
    if section == "B":  # section B was filmed at a higher resolution
        config = dataclasses.replace(config, size=(config.size[0] + 16, config.size[1] + 16))
    out, missing = [], _missing(config, index, 11)
    for truth, frames, first in subject_clips(config, index):
        clip = truth.clip.rstrip("f").replace("_0", "_")
        truth.clip = clip
        numbers = [first + i for i in range(truth.n_frames)]
        folder = root / f"CASME_{section}" / f"Section {section}" / truth.subject / clip
        _write_frames(folder, frames, numbers, clip + "-{:04d}.jpg", config.jpeg_quality)
        apex1, apex2 = numbers[truth.apex], ""
        draw = missing.random()
        if draw < config.missing_apex:
            truth.apex, apex1 = None, ""
        elif draw < 2 * config.missing_apex:
            apex1, apex2 = "", numbers[truth.apex]  # only the second apex column filled
        out.append(
            (
                truth,
                section,
                [
                    index,
                    clip,
                    numbers[truth.onset],
                    apex1,
                    apex2,
                    numbers[truth.offset],
                    _au_cell(truth, "casme"),
                    truth.emotion,
                ],
            )
        )
    return out


SMIC_SHORT = {"negative": "ne", "positive": "po", "surprise": "sur"}


def smic_subject_number(index: int) -> int:
    """SMIC's subject numbers have gaps (16 HS subjects among s1..s20)."""
    return index + (index - 1) // 4


def _smic_subject(root: Path, config: SynthConfig, index: int, variant: str):
    subject, out, counts = f"s{smic_subject_number(index)}", [], {}
    for truth, frames, first in subject_clips(config, index):
        counts[truth.emotion] = counts.get(truth.emotion, 0) + 1
        frames = frames[truth.onset : truth.offset + 1]  # a SMIC clip is the micro-expression itself
        truth = truth.trimmed(truth.onset, truth.offset + 1)
        truth.subject, truth.clip = subject, f"{subject}_{SMIC_SHORT[truth.emotion]}_{counts[truth.emotion]:02d}"
        folder = root / "SMIC_all_raw" / variant / subject / "micro" / truth.emotion / truth.clip
        _write_frames(
            folder,
            _grey(frames) if variant == "NIR" else frames,
            [first * 1000 + i for i in range(truth.n_frames)],
            "image{}.bmp",
            config.jpeg_quality,
        )
        out.append((truth, None))
    return out


def _samm_subject(root: Path, config: SynthConfig, index: int):
    number = 5 + index + index // 3  # SAMM's subject numbers start at 006 and have gaps
    subject, out, missing = f"{number:03d}", [], _missing(config, index, 13)
    for k, (truth, frames, first) in enumerate(subject_clips(config, index), start=1):
        truth.subject, truth.clip = subject, f"{subject}_{k}_{int(missing.integers(1, 8))}"
        numbers = [first * 10 + i for i in range(truth.n_frames)]
        _write_frames(
            root / "SAMM" / subject / truth.clip, _grey(frames), numbers, f"{subject}_{{:05d}}.jpg", config.jpeg_quality
        )
        if missing.random() < config.missing_apex:
            truth.apex = None
        apex = -1 if truth.apex is None else numbers[truth.apex]
        out.append(
            (
                truth,
                [
                    number,
                    truth.clip,
                    f"{k}",
                    numbers[truth.onset],
                    apex,
                    numbers[truth.offset],
                    truth.offset - truth.onset + 1,
                    "Micro - 1/2",
                    _au_cell(truth, "samm"),
                    truth.emotion,
                    "",
                    "",
                ],
            )
        )
    return out


def _casme3_subject(root: Path, config: SynthConfig, index: int):
    subject, out = f"spNO.{index}", []
    recordings: dict[str, int] = {}
    missing = _missing(config, index, 17)
    for truth, frames, _ in subject_clips(config, index):
        recording = "abc"[int(missing.integers(0, 2))]  # several clips per recording: Filename repeats
        start = recordings.get(recording, int(missing.integers(0, 50)))
        numbers = [start + i for i in range(truth.n_frames)]
        _write_frames(
            root / "part_A" / "data" / "part_A_split" / "ME_A" / subject / recording / "color",
            frames,
            numbers,
            "{}.jpg",
            config.jpeg_quality,
        )
        recordings[recording] = numbers[-1] + 1 + int(missing.integers(0, 20))
        row = [
            subject,
            recording,
            numbers[truth.onset],
            numbers[truth.apex],
            numbers[truth.offset],
            _au_cell(truth, "casme3"),
            "",
            truth.emotion,
        ]
        truth = truth.trimmed(truth.onset, truth.offset + 1)  # the reader cuts onset..offset
        truth.subject, truth.clip = subject, f"{recording}_{row[2]}"
        out.append((truth, row))
    return out


def _mmew_subject(root: Path, config: SynthConfig, index: int):
    subject, out = f"S{index:02d}", []
    for k, (truth, frames, _) in enumerate(subject_clips(config, index), start=1):
        truth.subject, truth.clip = subject, f"{subject}_{k:02d}"
        numbers = list(range(1, truth.n_frames + 1))
        _write_frames(
            root / "Micro_Expression" / truth.emotion / truth.clip, frames, numbers, "{}.jpg", config.jpeg_quality
        )
        out.append(
            (
                truth,
                [
                    subject,
                    truth.clip,
                    numbers[truth.onset],
                    numbers[truth.apex],
                    numbers[truth.offset],
                    _au_cell(truth, "mmew"),
                    truth.emotion,
                    "",
                ],
            )
        )
    return out


def _fourdme_subject(root: Path, config: SynthConfig, index: int):
    subject, out = f"S{index:02d}", []
    for k, (truth, frames, first) in enumerate(subject_clips(config, index), start=1):
        numbers = [
            first + truth.onset + i for i in range(truth.offset - truth.onset + 1)
        ]  # a folder holds onset..offset
        frames = frames[truth.onset : truth.offset + 1]
        row = [
            subject,
            f"{subject}_{k:02d}",
            truth.emotion,
            *[int(w in truth.emotion.split("+")) for w in FOURDME_WORDS],
            numbers[0],
            numbers[truth.apex - truth.onset],
            numbers[-1],
            _au_cell(truth, "4dme"),
            *[int(a in truth.expression.aus or a == _static_au(truth.expression.aus)) for a in ACTION_UNITS],
        ]
        truth = truth.trimmed(truth.onset, truth.offset + 1)
        truth.subject, truth.clip = subject, row[1]
        _write_frames(root / "gray_micro" / subject / truth.clip, _grey(frames), numbers, "{}.jpg", config.jpeg_quality)
        out.append((truth, row))
    return out


def _dfme_subject(root: Path, config: SynthConfig, index: int):
    """A DFME subject: its split's folder, 5-digit PNG frames, a frame rate of 200, 300 or 500 by
    subject (per clip in the sheet); every other clip of test A starts at its onset, numbered from 0."""
    split, subject, out = DFME_SPLITS[(index - 1) % 4], f"sub{index + 7:04d}", []
    config = dataclasses.replace(config, fps=(200.0, 300.0, 500.0)[index % 3])
    for k, (truth, frames, first) in enumerate(subject_clips(config, index), start=1):
        truth.subject, truth.clip = subject, f"{subject}_{k:02d}"
        if split == "testA" and k % 2:
            frames, truth, first = frames[truth.onset :], truth.trimmed(truth.onset, truth.n_frames), 0
        numbers = [first + i for i in range(truth.n_frames)]
        _write_frames(root / split / truth.clip, frames, numbers, "{:05d}.png", config.jpeg_quality, ".png")
        out.append(
            (
                truth,
                split,
                [
                    subject,
                    truth.clip,
                    numbers[truth.onset],
                    numbers[truth.apex],
                    numbers[truth.offset],
                    truth.emotion,
                    DFME_WORDS.index(truth.emotion),
                    int(config.fps),
                    _au_cell(truth, "dfme"),
                ],
            )
        )
    return out


def _static_au(aus: tuple[int, ...]) -> int:
    """The AU a 4DME row codes as static ``(k)``: one the clip does not move."""
    return next(a for a in (4, 7, 12, 1) if a not in aus)


def format_aus(aus: tuple[int, ...], layout: str, *, amplitude: float = 0.0) -> str:
    """AUs in a layout's own notation, as its spreadsheet writes them.

    ``samm`` adds an intensity letter, A (trace) to E (maximum), from ``amplitude`` in pixels
    (0.5 px a letter); ``4dme`` writes 4DME's notation (``AU4(k)+AU1+R2``: a static ``(k)`` AU
    the clip does not move, an ``AU`` prefix, a side mark on the second AU as notation only); the
    others write plain numbers joined by ``+``. Synthetic AUs move both sides of the face, so no
    other laterality mark (L, R) is written.

    Examples
    --------
    >>> format_aus((1, 2), "casme2"), format_aus((1, 2), "samm", amplitude=0.8)
    ('1+2', '1B+2B')
    """
    if layout == "samm":
        letter = "ABCDE"[min(4, int(amplitude / 0.5))]
        return "+".join(f"{au}{letter}" for au in aus)
    if layout == "4dme":  # AU prefix, a side mark (notation only) and a static (k) AU the clip does not move
        items = [f"AU{aus[0]}", *[f"R{a}" for a in aus[1:2]], *[str(a) for a in aus[2:]]]
        return "+".join([f"AU{_static_au(aus)}(k)", *items])
    return "+".join(str(au) for au in aus)


def _au_cell(truth: ClipTruth, layout: str) -> str:
    """The AU cell of a clip's row, in the layout's notation: the action units the clip moves."""
    return format_aus(truth.expression.aus, layout, amplitude=truth.expression.amplitude)


def _sheet_rows(per_subject: list, section: str | None = None) -> list:
    return [item[-1] for subject in per_subject for item in subject if section is None or item[1] == section]


# layout -> (subject writer, fps, emotion weights, sheets: [(path, header, preamble, section)])
LAYOUTS = {
    "casme2": (
        _casme2_subject,
        200.0,
        CASME2_EMOTIONS,
        [
            (
                "CASME2-coding-20140508.xlsx",
                [
                    "Subject",
                    "Filename",
                    None,
                    "OnsetFrame",
                    "ApexFrame",
                    "OffsetFrame",
                    None,
                    "Action Units",
                    "Estimated Emotion",
                ],
                0,
                None,
            )
        ],
    ),
    "casme": (
        _casme_subject,
        60.0,
        CASME_EMOTIONS,
        [
            (
                f"CASME_{s}/CASME_{s}_Section{s}.xls",
                ["Subject", "Filename", "OnsetF", "ApexF1", "ApexF2", "OffsetF", "AU", "Emotion"],
                0,
                s,
            )
            for s in "AB"
        ],
    ),
    "smic_hs": (functools.partial(_smic_subject, variant="HS"), 100.0, SMIC_EMOTIONS, []),
    "smic_vis": (functools.partial(_smic_subject, variant="VIS"), 25.0, SMIC_EMOTIONS, []),
    "smic_nir": (functools.partial(_smic_subject, variant="NIR"), 25.0, SMIC_EMOTIONS, []),
    "samm": (
        _samm_subject,
        200.0,
        SAMM_EMOTIONS,
        [
            (
                "SAMM_Micro_FACS_Codes_v2.xlsx",
                [
                    "Subject",
                    "Filename",
                    "Inducement Code",
                    "Onset Frame",
                    "Apex Frame",
                    "Offset Frame",
                    "Duration",
                    "Micro",
                    "Action Units",
                    "Estimated Emotion",
                    "Objective Classes",
                    "Notes",
                ],
                13,
                None,
            )
        ],
    ),
    "casme3": (
        _casme3_subject,
        30.0,
        CASME3_EMOTIONS,
        [
            (
                "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx",
                ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"],
                0,
                None,
            )
        ],
    ),
    "mmew": (
        _mmew_subject,
        90.0,
        MMEW_EMOTIONS,
        [
            (
                "MMEW_Micro_Exp.xlsx",
                [
                    "Subject",
                    "Filename",
                    "OnsetFrame",
                    "ApexFrame",
                    "OffsetFrame",
                    "Action Units",
                    "Estimated Emotion",
                    "remarks",
                ],
                0,
                None,
            )
        ],
    ),
    "dfme": (
        _dfme_subject,
        200.0,
        DFME_EMOTIONS,
        [
            (
                f"{name}_full_with_AU.xlsx",
                ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Emotion", "EmotionId", "Fps", "AU"],
                0,
                split,
            )
            for name, split in (("training", "train"), ("testA", "testA"), ("testB", "testB"))
        ],
    ),
    "4dme": (
        _fourdme_subject,
        60.0,
        FOURDME_EMOTIONS,
        [
            (
                "4DME_Labelling_Micro_release v1.xlsx",
                [
                    "sub_ID",
                    "fold_name",
                    "Emotion",
                    *FOURDME_WORDS,
                    "Onset",
                    "Apex",
                    "Offset",
                    "AUs",
                    *[f"AU{a}" for a in ACTION_UNITS],
                ],
                0,
                None,
            )
        ],
    ),
}


# layout -> where its first sheet's rows keep onset, apex and offset, and the clip folder a row names
SHEET_SPECS = {
    "casme2": SheetSpec(3, 4, 5, lambda root, row: root / "CASME2_RAW_selected" / f"sub{row[0]:02d}" / row[1]),
    "casme": SheetSpec(2, 3, 5, lambda root, row: root / "CASME_A" / "Section A" / f"sub{row[0]:02d}" / row[1]),
    "samm": SheetSpec(3, 4, 5, lambda root, row: root / "SAMM" / f"{row[0]:03d}" / row[1]),
    "casme3": SheetSpec(
        2, 3, 4, lambda root, row: root / "part_A" / "data" / "part_A_split" / "ME_A" / row[0] / row[1] / "color"
    ),
    "mmew": SheetSpec(2, 3, 4, lambda root, row: root / "Micro_Expression" / row[6] / row[1]),
    "4dme": SheetSpec(8, 9, 10, lambda root, row: root / "gray_micro" / row[0] / row[1]),
    "dfme": SheetSpec(2, 3, 4, lambda root, row: root / "train" / row[1]),
}


def write_dataset(
    layout: str,
    out: str | Path,
    config: SynthConfig | None = None,
    *,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
    errata: bool = False,
) -> SyntheticDataset:
    """Write a synthetic dataset in the on-disk layout of ``layout`` (a key of ``LAYOUTS``).

    Without a ``config`` the dataset's own frame rate and emotion words are used. Subjects are
    made in ``jobs`` processes; ``progress(1)`` is called per subject. The returned truth
    describes each clip as the dataset's reader sees it (SMIC clips are the micro-expression
    only, CAS(ME)³ clips are cut from onset to offset), in annotation order. With ``errata``
    the first sheet gets one spoilt row of each kind of :data:`merkit.synthetic.errata.ERRATA`
    (SMIC, without a sheet, an emptied clip folder), listed in ``errata``; ``clips`` holds only
    the clips a reader can still yield.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}.")
    _, fps, emotions, sheets = LAYOUTS[layout]
    config = config or SynthConfig(fps=fps, emotions=emotions)
    root = _fresh_folder(Path(out))
    per_subject = _for_each_subject(layout, root, config, jobs, progress)
    spoilt: list[Erratum] = []
    gone: set[int] = set()  # id() of the truths a reader can no longer yield
    for number, (path, header, preamble_rows, section) in enumerate(sheets):
        rows = _sheet_rows(per_subject, section)
        if errata and number == 0:
            pairs = [
                (item[0], item[-1])
                for subject in per_subject
                for item in subject
                if section is None or item[1] == section
            ]
            spoiled_pairs, spoilt = spoil_rows(pairs, SHEET_SPECS[layout], root, path, preamble_rows + 2, config.seed)
            gone = {id(t) for t, _ in pairs} - {id(t) for t, _ in spoiled_pairs if t is not None}
            rows = [row for _, row in spoiled_pairs]
        if path.endswith(".xls"):
            write_xls(root / path, header, rows)
        else:
            preamble = (
                [["SAMM Micro-Facial Movement Dataset"], ["FACS coding"]] + [[] for _ in range(preamble_rows - 2)]
                if preamble_rows
                else []
            )
            write_xlsx(root / path, header, rows, preamble)
    if errata and not sheets:
        spoilt, gone = _empty_a_folder(per_subject, root)
    clips = [item[0] for subject in per_subject for item in subject if id(item[0]) not in gone]
    atomic_write_text(root / MARKER, _marker(layout, config, errata))
    return SyntheticDataset(root, layout, config, clips, spoilt)


def _empty_a_folder(per_subject: list, root: Path) -> tuple[list[Erratum], set[int]]:
    """SMIC's erratum (it has no sheet): the second clip's folder left without frames."""
    truth = [item[0] for subject in per_subject for item in subject][1]
    folder = next(root.glob(f"SMIC_all_raw/*/{truth.subject}/micro/*/{truth.clip}"))
    for frame in folder.iterdir():
        frame.unlink()
    return [Erratum("empty_folder", str(folder.parent.relative_to(root)), 0, truth.subject, truth.clip)], {id(truth)}


def _fresh_folder(root: Path) -> Path:
    """``root``, empty and marked as being written by merkit. A folder merkit wrote before (its
    marker is there, complete or not) is emptied first, so no clip of an earlier set stays behind;
    a folder holding anything else is refused rather than mixed with or deleted."""
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root} is a file; pass a folder to write the synthetic dataset into.")
    if root.is_dir() and any(root.iterdir()):
        if not (root / MARKER).is_file():
            raise DatasetError(f"{root} holds files that merkit synth did not write; pass a new or empty folder.")
        for entry in root.iterdir():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    atomic_write_text(root / MARKER, json.dumps({"writing": True}))
    return root


def write_casme2(
    out: str | Path,
    config: SynthConfig = SynthConfig(),
    *,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> SyntheticDataset:
    """Write a synthetic CASME II: ``CASME2_RAW_selected/subNN/EPxx_yy/imgN.jpg`` and the coding sheet.

    The sheet ``CASME2-coding-20140508.xlsx`` has the real columns (two with empty headers),
    ``Subject`` as an int, absolute frame numbers, and ``/`` for a share ``missing_apex`` of the
    apexes.
    """
    return write_dataset("casme2", out, config, jobs=jobs, progress=progress)


MEGC_CLASSES = {"negative": 0, "positive": 1, "surprise": 2}
MEGC_WORDS = {
    "casme2": {"disgust": "negative", "repression": "negative", "happiness": "positive", "surprise": "surprise"},
    "samm": {
        "anger": "negative",
        "contempt": "negative",
        "disgust": "negative",
        "fear": "negative",
        "sadness": "negative",
        "happiness": "positive",
        "surprise": "surprise",
    },
    "smic_hs": {"negative": "negative", "positive": "positive", "surprise": "surprise"},
}


def megc_names(layout: str, truth: ClipTruth) -> tuple[str, str]:
    """Subject and clip as MEGC's list writes them (``s01``/``s01_ne_01``, CASME II ``01``)."""
    if layout == "smic_hs":
        number = int(truth.subject[1:])
        return f"s{number:02d}", truth.clip.replace(f"{truth.subject}_", f"s{number:02d}_", 1)
    if layout == "casme2":
        return truth.subject[3:], truth.clip
    return truth.subject, truth.clip


def write_megc2019(
    out: str | Path,
    config: SynthConfig = SynthConfig(n_subjects=6),
    *,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> dict[str, SyntheticDataset]:
    """Write SMIC-HS, CASME II and SAMM under ``out/SMIC``, ``out/CASME2`` and ``out/SAMM``, and
    ``out/combined_3class_gt.csv`` (no header, classes 0/1/2) listing the clips whose word MEGC
    keeps. Each dataset gets its own seed, faces, frame rate and words.
    """
    root = Path(out)
    written = {}
    for offset, (layout, folder) in enumerate([("smic_hs", "SMIC"), ("casme2", "CASME2"), ("samm", "SAMM")]):
        cfg = dataclasses.replace(
            config, seed=config.seed + 1000 * offset, fps=LAYOUTS[layout][1], emotions=LAYOUTS[layout][2]
        )
        written[layout] = write_dataset(layout, root / folder, cfg, jobs=jobs, progress=progress)
    lines = []
    for layout, data in written.items():
        for truth in data.clips:
            word = MEGC_WORDS[layout].get(truth.emotion.lower())
            if word is not None:
                subject, clip = megc_names(layout, truth)
                lines.append(f"{layout.split('_')[0]},{subject},{clip},{MEGC_CLASSES[word]}")
    atomic_write_text(root / "combined_3class_gt.csv", "\n".join(lines) + "\n")
    return written


def write_xls(path: Path, header: Sequence[object], rows: Sequence[Sequence[object]]) -> None:
    """An old-format .xls sheet (CASME's annotations), written with xlwt."""
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Sheet1")
    for r, line in enumerate([header, *rows]):
        for c, value in enumerate(line):
            if value is not None and value != "":
                sheet.write(r, c, value)
    buffer = io.BytesIO()
    book.save(buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _marker(layout: str, config: SynthConfig, errata: bool = False) -> str:
    return json.dumps(
        {"layout": layout, "config": json.loads(config.to_json())} | ({"errata": True} if errata else {}),
        sort_keys=True,
    )


def is_written(out: str | Path, config: SynthConfig, layout: str = "casme2") -> bool:
    """Whether ``out`` already holds the dataset ``config`` describes (written completely)."""
    marker = Path(out) / MARKER
    return marker.is_file() and marker.read_text() == _marker(layout, config)
