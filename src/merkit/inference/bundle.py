"""Model bundles: one folder that holds everything needed to predict, and nothing that runs code.

Layout of a bundle::

    bundle.json          what the model is: merkit's version, the task, the method and its
                         parameters, the classes and label scheme, the preprocessing chain, the
                         apex rule, the training data's fingerprint, and the SHA-256 of each state file
    network.safetensors  a network's weights (and fitted input scaling), or
    classifier.skops     a calibrated scikit-learn classifier (skops, only trusted types)
    README.md            the model card: what it was trained on, its intended use and its limits

Loading checks ``bundle.json`` field by field (types and ranges), the version, the task and the
classes; then that ``files`` names exactly the state files the method writes, by plain names
inside the folder, each a regular file with its checksum: nothing outside the folder is opened.
A state file may hold only the names its method declares, and nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from merkit import __version__
from merkit.datasets.base import ClipDataset
from merkit.errors import MerkitError, configured
from merkit.executors import Executor, LocalExecutor
from merkit.io.atomic import atomic_write_text, current_umask
from merkit.methods.base import Method
from merkit.methods.registry import create_method, method_class
from merkit.preprocess.cache import Cache

FORMAT = "merkit-bundle"
FORMAT_VERSION = 1
TASK = "classification"
DESCRIPTION_FILE = "bundle.json"
CARD_FILE = "README.md"


class BundleError(MerkitError):
    """A model bundle that cannot be used: missing, altered, newer, or of another task."""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def training_fingerprint(dataset: ClipDataset) -> dict:
    """What a model was trained on: dataset, label scheme, clip digest, clips per class and subject."""
    meta = dataset.metadata
    return {
        "dataset": dataset.name,
        "labels": dataset.labels,
        "n_clips": len(dataset),
        "clips": dataset.digest(),
        "per_class": {c: int((meta["label"] == c).sum()) for c in dataset.classes},
        "per_subject": {str(k): int(v) for k, v in zip(*np.unique(dataset.groups, return_counts=True))},
    }


def _fit(method_cls: type, params: dict, dataset: ClipDataset, seed: int, cache_root: str) -> Method:
    return method_cls(**params).fit(dataset, seed=seed, cache=Cache(cache_root))


def train(
    dataset: ClipDataset,
    method: str,
    *,
    out: str | os.PathLike,
    params: dict | None = None,
    seed: int = 0,
    cache: str | os.PathLike | None = None,
    apex: str = "motion",
    source: dict | None = None,
    evaluation: dict | None = None,
    overwrite: bool = False,
    executor: Executor | None = None,
) -> Path:
    """Fit ``method`` on every clip of ``dataset`` and write a bundle to ``out``.

    Parameters
    ----------
    dataset : ClipDataset
        The training clips (all of them are used).
    method : str
        A registered method; ``params`` its hyper-parameters (defaults otherwise).
    out : path
        The bundle's folder; an existing one is replaced only with ``overwrite``.
    apex : str
        How the training clips' missing apexes were filled; recorded in the bundle.
    source : dict, optional
        Where the data came from (``root``, reader options), recorded in the bundle.
    evaluation : dict, optional
        A LOSO's metrics (``merkit train --evaluate loso``), shown in the model card.
    executor : Executor, optional
        Where the fit runs (``merkit.executors``; default: here). The bundle is written here.
    """
    out = check_bundle_out(Path(out), overwrite)
    if dataset.multilabel:
        raise BundleError(
            f"merkit train makes single-label models; --labels {dataset.labels} (action units) is for "
            "evaluation only so far: pass an emotion scheme (merkit list labels)."
        )
    if len(dataset.classes) < 2 or len(dataset) < 2:
        raise MerkitError(
            f"{dataset.name} has {len(dataset)} clips in {len(dataset.classes)} classes under {dataset.labels}; "
            "a classifier needs clips of at least two classes."
        )
    params = create_method(method, **(params or {})).params()
    call = {"fit": (_fit, method_class(method), params, dataset, seed, str(Cache(cache).root))}
    [(_, fitted)] = (executor or LocalExecutor(1)).map(call, f"{method}: training on all {len(dataset)} clips")
    training = {**training_fingerprint(dataset), "seed": seed, "apex": apex, **({"source": source} if source else {})}
    return save(fitted, out, training=training, evaluation=evaluation, overwrite=overwrite)


def save(
    method: Method,
    out: str | os.PathLike,
    *,
    training: dict | None = None,
    evaluation: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the fitted ``method`` as a bundle at ``out`` (built in a temporary folder beside it,
    then moved into place, so a bundle is either whole or absent)."""
    out = check_bundle_out(Path(out), overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _building(out) as building:
        names = method.save(building)
        representation = method.representation()
        description = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "merkit": __version__,
            "task": TASK,
            "method": {"name": method.name, "params": method.params()},
            "classes": list(method.classes_),
            "labels": (training or {}).get("labels"),
            "preprocessing": {
                "representation": [s.describe() for s in representation.steps] if representation else [],
                "apex": (training or {}).get("apex", "motion"),
                "missing_apex": "motion",
            },
            "training": training or {},
            "evaluation": _evaluation_summary(evaluation),
            "files": {name: _sha256(building / name) for name in names},
        }
        _finish(building, description, model_card(description, evaluation))
    return out


@contextlib.contextmanager
def _building(out: Path):
    """A temporary folder beside ``out`` to build a bundle in, with the user's permissions; it is
    moved into place by the block (``_finish``) or removed if the block fails, so a bundle is
    either whole or absent."""
    building = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        os.chmod(building, 0o777 & ~current_umask())
        yield building
        if out.exists():
            shutil.rmtree(out)
        os.replace(building, out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise


def _finish(building: Path, description: dict, card: str) -> None:
    """Write a bundle's description and model card into the folder being built."""
    atomic_write_text(building / DESCRIPTION_FILE, json.dumps(description, indent=2, default=str))
    atomic_write_text(building / CARD_FILE, card)


SPOTTING_TASK = "spotting"
SPOTTER_FILE = "spotter.safetensors"


def save_spotter(
    spotter,
    out: str | os.PathLike,
    *,
    training: dict | None = None,
    evaluation: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a fitted learned spotter as a spotting bundle at ``out``: the same folder, checks and
    model card as a recognition bundle, its state in ``spotter.safetensors`` (no pickle)."""
    from merkit.io.state import write_arrays

    out = check_bundle_out(Path(out), overwrite)
    spotter.check_fitted()
    with _building(out) as building:
        arrays, learned = spotter.state()
        write_arrays(building / SPOTTER_FILE, arrays, learned)
        description = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "merkit": __version__,
            "task": SPOTTING_TASK,
            "method": {"name": spotter.name, "params": dataclasses.asdict(spotter)},
            "classes": ["micro", "macro"],
            "labels": None,
            "preprocessing": {"representation": [{"step": "track_cache faces (128 x 128 grey)"}]},
            "training": training or {},
            "evaluation": evaluation,
            "files": {SPOTTER_FILE: _sha256(building / SPOTTER_FILE)},
        }
        _finish(building, description, spotter_card(description))
    return out


def train_spotter(
    videos, spotter, out: str | os.PathLike, *, cache: str | os.PathLike, overwrite: bool = False
) -> Path:
    """Track every long video of ``videos`` into ``cache`` (resumable), fit the learned ``spotter``
    on all of them, and write a spotting bundle at ``out``."""
    from merkit.io.paths import safe_name
    from merkit.preprocess.track_cache import FrameSource, TrackCache, track_video
    from merkit.spotting import training_video

    out = check_bundle_out(Path(out), overwrite)
    items = []
    for video in videos:
        folder = Path(cache) / safe_name(video.key)
        track_video(FrameSource(video.frame_paths[0].parent, video.fps, video.n_frames), TrackCache(folder))
        items.append(training_video(video, folder))
    spotter.fit(items)
    training = {
        "dataset": ", ".join(sorted({v.dataset for v in videos})),
        "videos": len(videos),
        "subjects": len({item.subject for item in items}),
        **{kind: sum(i.kind == kind for v in videos for i in v.intervals) for kind in ("micro", "macro")},
    }
    return save_spotter(spotter, out, training=training, overwrite=overwrite)


def spotter_card(description: dict) -> str:
    """A spotting bundle's README.md: what it was trained on, its intended use and its limits."""
    spotter, training = description["method"], description["training"]
    lines = [
        f"# {spotter['name']} spotter trained on {training.get('dataset', 'unknown data')}",
        "",
        f"A merkit {description['merkit']} spotting bundle: `merkit analyze VIDEO --spotter-model <this folder>`.",
        "",
        "## What it was trained on",
        "",
        f"- {training.get('videos', '?')} long videos of {training.get('subjects', '?')} subjects "
        f"({training.get('micro', '?')} micro- and {training.get('macro', '?')} macro-expressions annotated)",
        f"- spotter parameters: `{json.dumps(spotter['params'], default=str)}`",
        "",
        "## Intended use",
        "",
        "Finding the intervals of micro- and macro-expressions in a long recording of one frontal face, recorded as "
        "the training videos were (frame rate, light, distance).",
        "",
        "## Limits",
        "",
        "- Learned spotters reach an overall F1 of about 0.2-0.4 on real long videos (MEGC protocol); most spotted "
        "intervals are not expressions.",
        "- It has seen only the training subjects: expect lower figures on people and cameras unlike theirs.",
        "- It does not say which emotion an interval shows; give a recognition `--model` for that.",
    ]
    if description.get("evaluation"):
        lines += [
            "",
            "## Evaluation before training (leave-one-subject-out)",
            "",
            "```",
            json.dumps(description["evaluation"], indent=1),
            "```",
        ]
    return "\n".join(lines) + "\n"


def load_spotter(path: str | os.PathLike):
    """The fitted learned spotter of the spotting bundle at ``path``, after every check."""
    from merkit.io.state import read_arrays
    from merkit.spotting import LearnedSpotter, create_spotter

    path = Path(path)
    description = read_description(path)
    if description["task"] != SPOTTING_TASK:
        raise BundleError(
            f"{path} is a {description['task']} model, not a spotting model; pass it as --model, "
            "or a bundle of merkit train --task spotting as --spotter-model."
        )
    try:
        spotter = create_spotter(description["method"]["name"], **description["method"]["params"])
    except MerkitError as error:
        raise BundleError(f"{path / DESCRIPTION_FILE}: field method: {error}") from None
    if not isinstance(spotter, LearnedSpotter):
        raise BundleError(f"{path / DESCRIPTION_FILE}: {spotter.name} does not learn; it needs no bundle.")
    check_state_files(path, description, spotter.name, {SPOTTER_FILE})
    arrays, learned = read_arrays(path / SPOTTER_FILE)
    try:
        return spotter.load_state(arrays, learned)
    except MerkitError as error:
        raise BundleError(f"{path / SPOTTER_FILE}: {error}") from None


def check_bundle_out(out: Path, overwrite: bool) -> Path:
    """``out`` if a bundle can be written there (checked before any work): not a file, not a
    folder of other files, a bundle only with ``overwrite``, and its folder can be written."""
    if out.exists() and not out.is_dir():
        raise BundleError(f"--out {out} is a file; pass a folder for the model bundle.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BundleError(
            f"Cannot create the folder {out.parent} for the bundle {out.name} ({error.strerror}); choose another --out."
        ) from None
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise BundleError(f"Cannot write into {out.parent} (permission denied); choose another --out.")
    if out.is_dir() and any(out.iterdir()):
        if not (out / DESCRIPTION_FILE).is_file():
            raise BundleError(f"{out} holds files that are not a model bundle; pass a new or empty folder as --out.")
        if not overwrite:
            raise BundleError(f"{out} already holds a model bundle; pass --overwrite to replace it, or another --out.")
    return out


def _evaluation_summary(evaluation: dict | None) -> dict | None:
    if not evaluation:
        return None
    overall = evaluation["overall"]
    return {
        "protocol": evaluation.get("protocol", "loso"),
        "n_clips": overall["n"],
        "accuracy": overall["accuracy"],
        "uf1": overall["uf1"],
        "uar": overall["uar"],
        "classes": evaluation["classes"],
        "confusion": np.asarray(overall["confusion"]).tolist(),
    }


def model_card(description: dict, evaluation: dict | None = None) -> str:
    """The bundle's README.md: what it was trained on, its intended use and its limits."""
    method, training = description["method"], description["training"]
    classes = ", ".join(description["classes"])
    lines = [
        f"# {method['name']} on {training.get('dataset', 'unknown data')} ({description.get('labels')})",
        "",
        f"A merkit {description['merkit']} model bundle: `merkit predict --model <this folder> VIDEO_OR_FRAMES`, "
        "or `merkit.load_model(path).predict_proba(x)` in Python.",
        "",
        "## What it was trained on",
        "",
        f"- dataset: {training.get('dataset')}, label scheme {description.get('labels')}, "
        f"{training.get('n_clips')} clips (digest `{training.get('clips')}`), "
        f"{len(training.get('per_subject', {}))} subjects, seed {training.get('seed')}",
        "- clips per class: " + ", ".join(f"{c} {n}" for c, n in training.get("per_class", {}).items()),
        f"- missing apexes in training: {training.get('apex')}; in prediction, estimated by motion when not given",
        f"- method parameters: `{json.dumps(method['params'], default=str)}`",
        "- preprocessing: " + " -> ".join(s["step"] for s in description["preprocessing"]["representation"]),
        "",
        "## Intended use",
        "",
        f"Classifying one spontaneous facial micro-expression per input into {classes}: a clip from its onset to "
        "its offset (give `--onset/--apex/--offset`, or the whole input is taken as the expression), recorded "
        "as the training data were (frontal face, steady light, a comparable frame rate).",
        "",
        "## Limits",
        "",
        "- It classifies; it does not find expressions. In a long recording, spot the intervals first.",
        "- Every input gets one of the classes above, whether or not it holds a micro-expression at all.",
        "- Micro-expression datasets are small and their subjects few and alike: expect lower figures on people, "
        "cameras and lighting unlike the training data's.",
        "- Probabilities are softmax outputs (networks) or calibrated on the training data only (SVMs); "
        "they are not guaranteed to be calibrated on new data.",
        "- An emotion label is an annotator's reading of a facial movement, not a measurement of what a person felt.",
    ]
    summary = description.get("evaluation")
    if summary:
        lines += [
            "",
            "## Evaluation before training",
            "",
            f"{summary['protocol'].upper()} on the same data ({summary['n_clips']} clips, pooled over folds): "
            f"accuracy {summary['accuracy']:.3f}, UF1 {summary['uf1']:.3f}, UAR {summary['uar']:.3f}.",
            "",
            "Confusion matrix (rows: true class, columns: predicted):",
            "",
            "| true \\ predicted | " + " | ".join(summary["classes"]) + " |",
            "| --- |" + " ---: |" * len(summary["classes"]),
        ]
        lines += [
            f"| {c} | " + " | ".join(str(int(v)) for v in row) + " |"
            for c, row in zip(summary["classes"], summary["confusion"])
        ]
    return "\n".join(lines) + "\n"


def _is_version(value) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"\d+(\.\d+){0,3}[0-9A-Za-z.+-]*", value))


def _is_names(value) -> bool:
    return (
        isinstance(value, list)
        and len(value) >= 2
        and len(set(map(str, value))) == len(value)
        and all(isinstance(c, str) and c for c in value)
    )


def _is_files(value) -> bool:
    return isinstance(value, dict) and all(
        isinstance(d, str) and re.fullmatch(r"[0-9a-f]{64}", d) for d in value.values()
    )


# bundle.json's fields: (the check, what the field must be), in the order they are checked
FIELDS = {
    "format_version": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a whole number from 1"),
    "merkit": (_is_version, "the version of merkit that wrote it, e.g. 0.3.0"),
    "task": (lambda v: isinstance(v, str) and v != "", "a task, e.g. classification"),
    "method": (
        lambda v: isinstance(v, dict) and isinstance(v.get("name"), str) and isinstance(v.get("params"), dict),
        'an object {"name": a method, "params": {...}}',
    ),
    "classes": (_is_names, "a list of two or more distinct class names"),
    "labels": (lambda v: v is None or isinstance(v, str), "a label scheme's name, or null"),
    "preprocessing": (lambda v: isinstance(v, dict), "an object"),
    "training": (lambda v: isinstance(v, dict), "an object"),
    "evaluation": (lambda v: v is None or isinstance(v, dict), "an object, or null"),
    "files": (_is_files, "an object of state file name -> SHA-256 (64 hexadecimal digits)"),
}


def _field_error(described: Path, field: str, must: str, value) -> BundleError:
    shown = json.dumps(value, default=str)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return BundleError(
        f"{described}: field {field} must be {must}; got {shown}. The bundle was altered or not written "
        "by merkit: copy it again or train it again."
    )


def read_description(path: str | os.PathLike) -> dict:
    """``bundle.json`` of the bundle at ``path``, checked field by field (types and ranges): a
    BundleError names the first field that is wrong."""
    path = Path(path)
    described = path / DESCRIPTION_FILE
    if not described.is_file():
        raise BundleError(f"{path} is not a model bundle (no {DESCRIPTION_FILE}); pass the --out of merkit train.")
    try:
        description = json.loads(described.read_text())
        if not isinstance(description, dict) or description.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} description")
    except (ValueError, UnicodeDecodeError) as error:
        raise BundleError(f"{described} is damaged ({error}); copy the bundle again or train it again.") from None
    for field in ("format_version", "merkit"):
        check, must = FIELDS[field]
        if not check(description.get(field)):
            raise _field_error(described, field, must, description.get(field))
    if description["format_version"] > FORMAT_VERSION or _version(description["merkit"]) > _version(__version__):
        raise BundleError(
            f"{path} was written by merkit {description['merkit']} (bundle format "
            f"{description['format_version']}), newer than this merkit {__version__}; upgrade merkit to use it."
        )
    for field, (check, must) in FIELDS.items():
        if not check(description.get(field)):
            raise _field_error(described, field, must, description.get(field))
    return description


def _plain_name(name: str) -> bool:
    """A name inside the folder: plain parts (no ``..``, no drive, no backslash) joined by ``/``."""
    return (
        not os.path.isabs(name)
        and not any(c in name for c in "\\\0:")
        and all(part not in ("", ".", "..") for part in name.split("/"))
    )


def _configured(path: Path, description: dict, device: str | None) -> Method:
    """The (unfitted) method ``bundle.json`` names, with its parameters, on ``device`` if it has one."""
    described = path / DESCRIPTION_FILE
    try:
        cls = method_class(description["method"]["name"])
    except MerkitError as error:
        raise BundleError(
            f"{described}: field method.name: {error} Upgrade merkit, or install the package that registers it."
        ) from None
    params = dict(description["method"]["params"])
    if "device" in {f.name for f in dataclasses.fields(cls)}:
        from merkit.training.trainer import best_device

        params["device"] = device or best_device()
    try:
        return configured(cls, params, f"method {cls.name!r}")
    except MerkitError as error:
        raise BundleError(f"{described}: field method.params: {error}") from None


def check_files(path: Path, description: dict, method: Method) -> None:
    """Check that ``files`` are exactly the state files ``method`` writes (its ``state_files``),
    by names inside the folder, each a regular file of the bundle with its checksum. Nothing
    outside ``path`` is opened: every name is checked before any file is."""
    check_state_files(path, description, method.name, set(method.state_files))


def check_state_files(path: Path, description: dict, name: str, expected: set[str]) -> None:
    """That ``files`` of a checked description are exactly ``expected`` (the state files ``name``
    writes), by plain names, each a regular file of the bundle with its checksum."""
    described = path / DESCRIPTION_FILE
    files = description["files"]
    for entry in files:
        if not _plain_name(entry):
            raise BundleError(
                f"{described}: files entry {entry!r} is not a plain file name inside the bundle; "
                "a bundle names its own files only. Do not use it: copy it again from its source or train it again."
            )
        if entry not in expected:
            raise BundleError(
                f"{described}: files entry {entry!r} is not a state file of {name} (it writes "
                f"{', '.join(sorted(expected))}); copy the bundle again or train it again."
            )
    missing = sorted(expected - set(files))
    if missing:
        raise BundleError(
            f"{described}: field files does not list {', '.join(missing)}, which {name} needs; "
            "copy the bundle again or train it again."
        )
    for entry, digest in files.items():
        state = path / entry
        inside = state.resolve().is_relative_to(path.resolve())  # no link on the way out of the folder
        if state.is_symlink() or not inside or (state.exists() and not state.is_file()):
            raise BundleError(
                f"{state} is not a regular file of the bundle (a link or a device); copy the bundle "
                "again without links, or train it again."
            )
        if not state.is_file():
            raise BundleError(f"{state} is missing from the bundle; copy the whole folder, or train it again.")
        if _sha256(state) != digest:
            raise BundleError(
                f"{state} was altered since the bundle was written (checksum differs); "
                "copy the bundle again or train it again."
            )


def load(
    path: str | os.PathLike, *, task: str | None = None, classes=None, device: str | None = None
) -> tuple[Method, dict]:
    """The fitted method of the bundle at ``path`` and its description, after every check.

    ``task`` and ``classes``, when given, are what the caller needs: a bundle of another task or
    with other classes is refused. A network runs on ``device`` (default: a GPU if PyTorch sees
    one, else the CPU), whatever device it was trained on; methods without one ignore it.
    """
    path = Path(path)
    description = read_description(path)
    if task is not None and description["task"] != task:
        raise BundleError(f"{path} is a {description['task']} model, not a {task} model.")
    if classes is not None and list(classes) != description["classes"]:
        raise BundleError(f"{path} predicts {description['classes']}, not the classes asked for ({list(classes)}).")
    method = _configured(path, description, device)
    check_files(path, description, method)
    method.check_machine()
    method = method.load(path)
    if list(method.classes_) != description["classes"]:
        raise BundleError(
            f"{path}: the state holds classes {list(method.classes_)} but {DESCRIPTION_FILE} says "
            f"{description['classes']}; the bundle is inconsistent, train it again."
        )
    return method, description
