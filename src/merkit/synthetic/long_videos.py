"""Synthetic long recordings: a face at rest for minutes, a few micro- and macro-expressions at
known frames, and the events that make real spotters fire falsely: blinks, head turns, talking
and changes of light.

Frames are made one at a time (:func:`render_long_video` is a generator), so a ten-minute video
costs the memory of one frame. :func:`plan_long_video` draws what happens when; the plan is the
ground truth (expressions) and the list of distractors (for counting false positives on them).
Two levels of difficulty (:data:`DIFFICULTIES`, ``merkit synth --difficulty``): ``easy`` as
before, and ``hard``, with subtler expressions, more talking and head turns, a head that sways
all along, more sensor noise and stronger JPEG compression, so that spotters can be told apart.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from openpyxl import Workbook

from merkit.errors import ConfigError, check_choice
from merkit.io.atomic import atomic_write_bytes, atomic_write_text
from merkit.synthetic.expressions import Expression, landmark_field
from merkit.synthetic.faces import FaceGeometry, render_face

DISTRACTORS = ("blink", "head_turn", "talking", "light")
EXPRESSION_KINDS = ("micro", "macro")


@dataclass(frozen=True)
class Event:
    """Something that happens in a long recording, frames ``onset..offset`` (inclusive).

    ``kind`` is an expression (micro, macro) or a distractor (blink, head_turn, talking, light);
    expressions carry their emotion word and action units.
    """

    kind: str
    onset: int
    apex: int
    offset: int
    emotion: str = ""
    aus: tuple[int, ...] = ()
    amplitude: float = 0.0

    @property
    def is_expression(self) -> bool:
        return self.kind in EXPRESSION_KINDS


@dataclass(frozen=True)
class LongVideoPlan:
    """A synthetic recording: frame rate, length, frame size (H, W) and events in time order."""

    fps: float
    n_frames: int
    size: tuple[int, int]
    events: tuple[Event, ...]
    seed: int
    sway: float = 0.0  # slow head motion all along: its amplitude as a share of the face's width
    noise: float = 1.0  # sensor noise, standard deviation in grey levels

    @property
    def expressions(self) -> list[Event]:
        return [e for e in self.events if e.is_expression]

    @property
    def distractors(self) -> list[Event]:
        return [e for e in self.events if not e.is_expression]


# (shortest, longest) onset-to-offset in seconds
DURATIONS = {
    "micro": (0.2, 0.45),
    "macro": (0.8, 3.0),
    "blink": (0.15, 0.3),
    "head_turn": (0.5, 1.2),
    "talking": (1.0, 2.5),
    "light": (0.3, 1.0),
}


@dataclass(frozen=True)
class Difficulty:
    """How hard a synthetic long recording is to spot in.

    Parameters
    ----------
    micro, macro : (low, high) peak displacement of an expression's action units, pixels of the frame
    distractors : how many of each distractor a recording has unless told otherwise
    sway : slow head motion all along (two sines a few seconds long per axis, and a rotation of
        ``40 * sway`` degrees), as a share of the face's width; 0 = the head still between events
    noise : sensor noise, standard deviation in grey levels (of 255)
    quality : JPEG quality of the frames written
    """

    micro: tuple[float, float]
    macro: tuple[float, float]
    distractors: tuple[tuple[str, int], ...]
    sway: float
    noise: float
    quality: int


DIFFICULTIES = {
    "easy": Difficulty(
        (1.5, 2.5), (3.0, 5.0), (("blink", 2), ("head_turn", 1), ("talking", 1), ("light", 1)), 0.0, 1.0, 95
    ),
    # micro-expressions under half as large, twice the talking and head turns, a swaying head (about
    # 1.5 px at 320 x 240, slower than the tracker's head_motion flag), twice the noise, JPEG at 60
    "hard": Difficulty(
        (0.6, 1.2), (1.5, 3.0), (("blink", 3), ("head_turn", 2), ("talking", 2), ("light", 1)), 0.012, 2.0, 60
    ),
}


def difficulty_of(name: str) -> Difficulty:
    """The :class:`Difficulty` called ``name``; an unknown name gets a ConfigError listing them."""
    return DIFFICULTIES[check_choice("difficulty", name, DIFFICULTIES)]


def plan_long_video(
    seconds: float,
    fps: float,
    *,
    size: tuple[int, int] = (480, 640),
    micro: int = 3,
    macro: int = 2,
    distractors: dict[str, int] | None = None,
    emotions: tuple[str, ...] = ("happiness", "surprise", "disgust", "repression"),
    difficulty: str = "easy",
    seed: int = 0,
) -> LongVideoPlan:
    """Draw a recording of ``seconds`` at ``fps``: ``micro`` and ``macro`` expressions and the
    ``distractors`` (by default the ``difficulty``'s: at ``easy`` two blinks, a head turn, one
    stretch of talking and one change of light), in random order, at least 0.7 s apart (so every
    event is seen alone), starting after the first second; expression amplitudes, head sway and
    noise as the ``difficulty`` (:data:`DIFFICULTIES`) says."""
    level = difficulty_of(difficulty)
    rng = np.random.default_rng(seed)
    distractors = dict(level.distractors) if distractors is None else distractors
    kinds = ["micro"] * micro + ["macro"] * macro + [k for k, n in distractors.items() for _ in range(n)]
    rng.shuffle(kinds)
    lengths = [max(3, int(round(rng.uniform(*DURATIONS[k]) * fps))) for k in kinds]
    gap_min = int(round(0.7 * fps))
    free = int(seconds * fps) - int(fps) - sum(lengths) - gap_min * (len(kinds) + 1)
    if free < 0:
        raise ConfigError(
            f"{seconds} s cannot hold {len(kinds)} events; make the video longer (--seconds) or plan fewer events."
        )
    extra = np.diff(
        np.sort(rng.integers(0, free + 1, len(kinds) + 1)), prepend=0
    )  # random spare time before each event
    events, t = [], int(fps)
    for kind, length, spare in zip(kinds, lengths, extra):
        onset = t + gap_min + int(spare)
        offset = onset + length - 1
        apex = onset + int(round(rng.uniform(0.35, 0.6) * (length - 1)))
        if kind in EXPRESSION_KINDS:
            emotion = str(rng.choice(emotions))
            expression = Expression.random(emotion, float(rng.uniform(*getattr(level, kind))), rng)
            events.append(Event(kind, onset, apex, offset, emotion, expression.aus, expression.amplitude))
        else:
            events.append(Event(kind, onset, apex, offset, amplitude=float(rng.uniform(0.6, 1.0))))
        t = offset + 1
    return LongVideoPlan(fps, int(seconds * fps), size, tuple(events), seed, level.sway, level.noise)


def _ramp(t: int, start: int, stop: int) -> float:
    """Raised cosine from 0 at ``start`` to 1 at ``stop`` (as the expressions' timing profile)."""
    x = min(max((t - start) / max(stop - start, 1), 0.0), 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def render_long_video(plan: LongVideoPlan) -> Iterator[np.ndarray]:
    """Yield the recording's uint8 (H, W, 3) RGB frames, one at a time.

    The face (a quarter to a third of the frame's width) stays still but for the events: an
    expression moves its action units along the raised-cosine profile; a blink closes both upper
    lids (a displacement of about the eye's height); a head turn rotates (up to 6 degrees) and
    shifts (up to 8% of the face) the whole head and holds the new pose; talking opens and closes
    the jaw four times a second; light changes the exposure by 15-25% and stays. With ``plan.sway``
    the head also drifts slowly all along (periods of 3-10 s), and the sensor noise is ``plan.noise``.
    """
    rng = np.random.default_rng(plan.seed)
    h, w = plan.size
    face_h = int(h * 0.6)
    geometry = FaceGeometry.random((face_h, int(face_h * 0.85)), rng)
    face = render_face(geometry)
    centre = np.array([w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.05, 0.05) * h])
    fields = {}
    for i, e in enumerate(plan.events):
        if e.is_expression:
            expression = Expression(
                e.aus, e.amplitude, tuple(np.random.default_rng([plan.seed, i]).uniform(0.7, 1.3, 8))
            )
            fields[i] = expression.apex_field(geometry)
        elif e.kind == "blink":
            lids = 1.0 * geometry.eye_size
            fields[i] = landmark_field(
                geometry,
                [("upper_lid_left", (0, 1), lids), ("upper_lid_right", (0, 1), lids)],
                0.45 * geometry.eye_size,
            )
        elif e.kind == "talking":
            jaw = 0.25 * geometry.eye_size * 2
            fields[i] = landmark_field(
                geometry, [("lower_lip", (0, 1), jaw), ("chin", (0, 1), jaw)], 0.5 * geometry.eye_dx
            )
    turns = {
        i: (rng.uniform(-6, 6), rng.uniform(-0.08, 0.08, 2) * face.shape[1])
        for i, e in enumerate(plan.events)
        if e.kind == "head_turn"
    }
    lights = {i: rng.choice([-1, 1]) * rng.uniform(0.15, 0.25) for i, e in enumerate(plan.events) if e.kind == "light"}
    fy, fx = np.mgrid[0 : face.shape[0], 0 : face.shape[1]].astype(np.float32)
    noise_rng = np.random.default_rng([plan.seed, 0])
    sway = np.random.default_rng([plan.seed, 1])  # its own draws: an easy recording is the same as before sway existed
    periods, phases = sway.uniform(3.0, 10.0, (3, 2)) * plan.fps, sway.uniform(0, 2 * np.pi, (3, 2))
    for t in range(plan.n_frames):
        displacement = np.zeros(face.shape[:2] + (2,), np.float32)
        drift = 0.5 * np.sin(2 * np.pi * t / periods + phases).sum(axis=1) if plan.sway else np.zeros(3)
        angle, shift, gain = 40 * plan.sway * drift[2], plan.sway * face.shape[1] * drift[:2], 1.0
        for i, e in enumerate(plan.events):  # state after finished events, motion during the current one
            if t < e.onset:
                continue
            done = t > e.offset
            if e.kind == "head_turn":
                ramp = _ramp(t, e.onset, e.offset)
                angle, shift = angle + ramp * turns[i][0], shift + ramp * turns[i][1]
            elif e.kind == "light":
                gain *= 1 + _ramp(t, e.onset, e.offset) * lights[i]
            elif not done:
                strength = _ramp(t, e.onset, e.apex) if t <= e.apex else 1 - _ramp(t, e.apex, e.offset)
                if e.kind == "talking":
                    strength = abs(np.sin(np.pi * 4 * (t - e.onset) / plan.fps))
                displacement += strength * fields[i]
        moved = (
            cv2.remap(
                face,
                fx - displacement[..., 0],
                fy - displacement[..., 1],
                cv2.INTER_CUBIC,
                borderMode=cv2.BORDER_REFLECT101,
            )
            if np.any(displacement)
            else face
        )
        matrix = cv2.getRotationMatrix2D((face.shape[1] / 2, face.shape[0] / 2), angle, 1.0)
        matrix[:, 2] += centre + shift - np.array([face.shape[1] / 2, face.shape[0] / 2])
        frame = cv2.warpAffine(moved, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        frame *= gain * 255.0
        if plan.noise:
            frame += plan.noise * noise_rng.standard_normal((h, w), dtype=np.float32)[..., None]
        yield np.clip(np.rint(frame), 0, 255).astype(np.uint8)


LONG_LAYOUTS = {"casme2_long": 30.0, "samm_lv": 200.0, "casme3_long": 30.0}
# the emotion words each release's workbook writes: CAS(ME)2's four estimated emotions, CAS(ME)3
# part A's seven; SAMM-LV's workbook has no emotion column
LONG_EMOTIONS = {
    "casme2_long": ("negative", "positive", "surprise", "others"),
    "samm_lv": ("others",),
    "casme3_long": ("disgust", "surprise", "happy", "fear", "anger", "sad", "others"),
}
CASME2_VIDEOS = [
    (101, "disgust1"),
    (102, "disgust2"),
    (401, "anger1"),
    (402, "anger2"),
    (502, "happy1"),
    (503, "happy2"),
]
TRUTH_FILE = "merkit_long_truth.json"


@dataclass
class SyntheticLongDataset:
    """Synthetic long videos on disk: for each video key (``dataset/subject/video``) its plan."""

    root: Path
    layout: str
    plans: dict[str, LongVideoPlan]


def _frame_writer(folder: Path, name: Callable[[int], str], quality: int):
    folder.mkdir(parents=True, exist_ok=True)

    def write(frame: np.ndarray, number: int) -> None:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok, "OpenCV failed to encode a JPEG"
        (folder / name(number)).write_bytes(data.tobytes())

    return write


def write_long_dataset(
    layout: str,
    out: str | Path,
    *,
    subjects: int = 2,
    videos: int = 2,
    seconds: float = 20.0,
    size: tuple[int, int] = (240, 320),
    fps: float | None = None,
    micro: int = 3,
    macro: int = 2,
    distractors: dict[str, int] | None = None,
    quality: int | None = None,
    seed: int = 0,
    emotions: tuple[str, ...] | None = None,
    difficulty: str = "easy",
    progress: Callable[[int], None] | None = None,
) -> SyntheticLongDataset:
    """Write ``subjects`` x ``videos`` synthetic long recordings in the release layout of
    ``layout`` (casme2_long, samm_lv, casme3_long) with its workbook(s), and the plans (events
    with the distractors) in ``merkit_long_truth.json``. Expressions carry the release's own
    emotion words (``LONG_EMOTIONS``), or ``emotions``; ``difficulty`` (easy, hard) sets their
    amplitudes, the distractors, head sway, noise and the JPEG ``quality`` unless given.
    ``progress(1)`` is called per video."""
    from merkit.synthetic.layouts import MARKER, _fresh_folder, write_xlsx

    if layout not in LONG_LAYOUTS:
        raise ValueError(f"Unknown long-video layout {layout!r}; choose one of {', '.join(LONG_LAYOUTS)}.")
    fps = fps or LONG_LAYOUTS[layout]
    quality = quality or difficulty_of(difficulty).quality
    root = _fresh_folder(Path(out))
    plans: dict[str, LongVideoPlan] = {}
    rows: dict[str, list] = {"code": [], "micro": [], "macro": []}
    for s in range(1, subjects + 1):
        for v in range(1, videos + 1):
            plan = plan_long_video(
                seconds,
                fps,
                size=size,
                micro=micro,
                macro=macro,
                distractors=distractors,
                emotions=emotions or LONG_EMOTIONS[layout],
                difficulty=difficulty,
                seed=seed * 10_000 + s * 100 + v,
            )
            if layout == "casme2_long":
                number, (code, name) = 14 + s, CASME2_VIDEOS[(v - 1) % len(CASME2_VIDEOS)]
                subject, video = f"s{number}", f"{number}_{code:04d}{name}"
                write = _frame_writer(root / "rawpic" / subject / video, lambda k: f"img{k}.jpg", quality)
                first = 1
                for i, e in enumerate(plan.expressions, start=1):
                    rows["code"].append(
                        [
                            s,
                            f"{name}_{i}",
                            e.onset + first,
                            e.apex + first,
                            e.offset + first,
                            _au_code(e),
                            e.emotion,
                            f"{e.kind}-expression",
                            e.emotion,
                        ]
                    )
            elif layout == "samm_lv":
                subject, video = f"{5 + s:03d}", f"{5 + s:03d}_{v}"
                write = _frame_writer(
                    root / "SAMM_longvideos" / video, lambda k, video=video: f"{video}_{k:04d}.jpg", quality
                )
                first = 1
                for i, e in enumerate(plan.expressions, start=1):
                    rows["code"].append(
                        [
                            int(subject),
                            f"{video}_{i}",
                            f"{v}_{i}",
                            e.onset + first,
                            e.apex + first,
                            e.offset + first,
                            e.offset - e.onset + 1,
                            "Micro - 1/2" if e.kind == "micro" else "Macro",
                            _au_code(e),
                            "",
                        ]
                    )
            else:
                subject, video = f"spNO.{s}", "abcdefgh"[v - 1]
                write = _frame_writer(
                    root / "part_A" / "data" / "part_A_split" / "ME_A" / subject / video / "color",
                    lambda k: f"{k}.jpg",
                    quality,
                )
                first = 0
                for e in plan.expressions:
                    rows[e.kind].append(
                        [subject, video, e.onset + first, e.apex + first, e.offset + first, _au_code(e), "", e.emotion]
                    )
            for t, frame in enumerate(render_long_video(plan)):
                write(frame, t + first)
            plans[f"{layout}/{subject}/{video}"] = plan
            if progress:
                progress(1)
    if layout == "casme2_long":
        _write_casme2_workbook(root / "CAS(ME)^2code_final(Updated).xlsx", rows["code"], subjects)
    elif layout == "samm_lv":
        preamble = [["SAMM Long Videos"], ["Micro and macro-movements"]] + [[] for _ in range(7)]
        write_xlsx(
            root / "SAMM_LongVideos_V3_Release.xlsx",
            [
                "Subject",
                "Filename",
                "Inducement Code",
                "Onset",
                "Apex",
                "Offset",
                "Duration",
                "Type",
                "Action Units",
                "Notes",
            ],
            rows["code"],
            preamble,
        )
    else:
        header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
        write_xlsx(root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", header, rows["micro"])
        write_xlsx(root / "cas(me)3_part_A_MaE_label_JpgIndex_v2.xlsx", header, rows["macro"])
    atomic_write_text(root / TRUTH_FILE, json.dumps({k: plan_to_json(p) for k, p in plans.items()}, indent=1))
    atomic_write_text(root / MARKER, json.dumps({"layout": layout, "seed": seed, "difficulty": difficulty}))
    return SyntheticLongDataset(root, layout, plans)


def _au_code(event: Event) -> str:
    return "+".join(str(a) for a in event.aus)


def _write_casme2_workbook(path: Path, code_rows: list, subjects: int) -> None:
    """CAS(ME)^2's three sheets, without header rows as released."""
    book = Workbook()
    sheet = book.active
    sheet.title = "CASMEcode_final"
    for row in code_rows:
        sheet.append(row)
    rule1 = book.create_sheet("naming rule1")
    for s in range(1, subjects + 1):
        rule1.append([14 + s, f"casme_{14 + s:03d}", s])
    rule2 = book.create_sheet("naming rule2")
    for code, name in CASME2_VIDEOS:
        rule2.append([f"{code:04d}", name])
    buffer = io.BytesIO()
    book.save(buffer)
    atomic_write_bytes(path, buffer.getvalue())


def plan_to_json(plan: LongVideoPlan) -> dict:
    return dataclasses.asdict(plan)


def plan_from_json(data: dict) -> LongVideoPlan:
    events = tuple(Event(**{**e, "aus": tuple(e["aus"])}) for e in data["events"])
    return LongVideoPlan(
        data["fps"],
        data["n_frames"],
        tuple(data["size"]),
        events,
        data["seed"],
        data.get("sway", 0.0),
        data.get("noise", 1.0),
    )


def read_truth(root: str | Path) -> dict[str, LongVideoPlan]:
    """The plans a synthetic long-video dataset was written from, by video key."""
    return {k: plan_from_json(v) for k, v in json.loads((Path(root) / TRUTH_FILE).read_text()).items()}
