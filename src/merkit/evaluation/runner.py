"""Run a method under a protocol and write a run directory.

Layout of a run directory::

    config.json        the resolved configuration (what is compared when a run resumes)
    folds/NNN_<name>.csv  each fold's predictions (and, for one class per clip, each class's
                       probability ``p_<class>``, as a bundle gives it), written atomically when
                       the fold finishes
    models/NNN_<name>/ each fold's fitted network (safetensors), for ``merkit explain``; the SVM
                       methods keep none (a fold's SVM refits in seconds and weighs megabytes)
    predictions.csv    all folds' predictions, with their probabilities
    metrics.json       pooled, per-fold and per-dataset figures
    report.md          the figures for a person, with the recipe and the caveats
    confusion.png      the pooled confusion matrix

Running the same configuration again into the same directory resumes: finished folds are read
back, not recomputed. Each fold's seed derives from the run's seed and the fold's index, so the
figures do not depend on ``jobs`` or on interruptions.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from merkit import __version__
from merkit.datasets.base import Clip, ClipDataset
from merkit.errors import MerkitError
from merkit.evaluation.metrics import au_scores, scores
from merkit.evaluation.protocols import Fold, make_protocol, shared_subjects
from merkit.evaluation.reports import write_report
from merkit.executors import Executor, LocalExecutor
from merkit.io.atomic import atomic_write_bytes, atomic_write_text
from merkit.io.paths import safe_name as _safe
from merkit.methods.base import probability_columns
from merkit.methods.registry import create_method, method_class
from merkit.preprocess.cache import Cache


@dataclass
class RunResult:
    out: Path
    metrics: dict
    predictions: pd.DataFrame
    computed_folds: list[str]


def fold_seed(seed: int, fold_index: int) -> int:
    """The seed of one fold: independent of the order and the process the fold runs in."""
    return int(np.random.SeedSequence([seed, fold_index]).generate_state(1)[0])


def _fold_file(out: Path, fold: Fold) -> Path:
    return out / "folds" / f"{fold.index:03d}_{_safe(fold.name)}.csv"


def model_folder(out: Path, fold: Fold) -> Path:
    """Where the state fitted on ``fold``'s training part is kept."""
    return out / "models" / _fold_file(out, fold).stem


def saved_model(out: Path, fold_name: str) -> Path | None:
    """The folder of the state a finished run kept for the fold named ``fold_name``, or None."""
    models = Path(out) / "models"
    return (
        next((p for p in models.iterdir() if p.is_dir() and p.name.split("_", 1)[1] == _safe(fold_name)), None)
        if models.is_dir()
        else None
    )


def run_folds(
    method_cls: type, params: dict, dataset: ClipDataset, folds: list[Fold], seeds: list[int], cache: str | Cache
) -> list[tuple[pd.DataFrame, dict[str, bytes]]]:
    """Fit on each fold's training clips (several at once where the method trains them so: a
    network's folds on a GPU) and predict its test clips. Per fold: one row per test clip (its
    prediction and, for one class per clip, ``p_<class>`` per class), and the fitted state's
    files (name -> bytes; none for methods that keep no fold models), which the caller writes
    where it runs, whichever machine fitted them."""
    cache = cache if isinstance(cache, Cache) else Cache(cache)  # a folder, or representations shipped by the driver
    method = method_cls(**params)  # the class travels to the worker, so methods registered outside merkit run anywhere
    fitted = method.fit_folds([dataset.subset(fold.train) for fold in folds], seeds=seeds, cache=cache)
    results = []
    for fold, method in zip(folds, fitted):
        test = dataset.subset(fold.test)
        frame = test.metadata[["dataset", "subject", "clip", "label"]].copy()
        frame.insert(0, "fold", fold.name)
        frame["prediction"] = np.asarray(method.predict(test, cache=cache), dtype=object)
        if not dataset.multilabel:
            frame[probability_columns(method.classes_)] = method.predict_proba(test, cache=cache)
        results.append((frame, _state_files(method) if method.keep_fold_models else {}))
    return results


def _state_files(method) -> dict[str, bytes]:
    """The files ``method.save`` writes, as bytes (to travel back from a worker to the driver)."""
    with tempfile.TemporaryDirectory(prefix="merkit-fold-") as folder:
        return {name: (Path(folder) / name).read_bytes() for name in method.save(Path(folder))}


def _prepare_clip(method_cls: type, params: dict, clip: Clip, cache_root: str) -> tuple[str, str]:
    """('computed' | 'reused' | 'failed', the message of the error that stopped the clip)."""
    try:
        computed = method_cls(**params).prepare(clip, Cache(cache_root))
        return ("computed" if computed else "reused"), ""
    except MerkitError as error:
        return "failed", str(error)


@dataclass
class PrepareSummary:
    computed: int
    reused: int
    failed: dict[str, str]

    def __str__(self) -> str:
        return f"{self.computed} computed, {self.reused} reused from the cache, {len(self.failed)} failed"


def prepare(
    method: str, params: dict, dataset: ClipDataset, cache: Cache, jobs: int = 1, executor: Executor | None = None
) -> PrepareSummary:
    """Compute every clip's fold-independent representation once, through ``executor`` (default:
    ``jobs`` local processes).

    A clip that fails does not stop the others; the summary names each failure. Results are
    cached as they finish, so an interrupted preparation resumes where it stopped.
    """
    executor = executor or LocalExecutor(jobs)
    cls = method_class(method)
    calls = {clip.key: (_prepare_clip, cls, params, clip, str(cache.root)) for clip in dataset}
    outcomes = dict(executor.map(calls, f"{method}: preparing clips"))
    statuses = [status for status, _ in outcomes.values()]
    failed = {key: message for key, (status, message) in outcomes.items() if status == "failed"}
    return PrepareSummary(statuses.count("computed"), statuses.count("reused"), failed)


def evaluate(
    dataset: ClipDataset,
    method: str,
    *,
    out: str | os.PathLike,
    params: dict | None = None,
    protocol: str = "loso",
    protocol_params: dict | None = None,
    seed: int = 0,
    jobs: int = 1,
    cache: str | os.PathLike | None = None,
    source: dict | None = None,
    overwrite: bool = False,
    executor: Executor | None = None,
) -> RunResult:
    """Evaluate ``method`` on ``dataset`` under ``protocol``; write and return the results.

    Parameters
    ----------
    dataset : ClipDataset
    method : str
        A registered method (``merkit list methods``); ``params`` its hyper-parameters.
    out : path
        The run directory; an existing run of the same configuration is resumed.
    protocol : str
        ``loso``, ``kfold``, ``subject_kfold`` or ``lodo``; ``protocol_params`` e.g. ``n_splits``.
    seed : int
        Seeds every fold; the same seed gives the same figures.
    jobs : int
        Folds (and clip preparation) run in this many local processes, unless ``executor`` is given.
    cache : path, optional
        Preprocessing cache (default ``$MERKIT_CACHE`` or ``~/.cache/merkit``).
    source : dict, optional
        Where the dataset came from (``root``), recorded in the configuration.
    overwrite : bool
        If ``out`` holds a run of another configuration, delete it and start over
        (otherwise that is an error, so that nobody's results are lost by a typo).
    executor : Executor, optional
        Where folds and clips run (``merkit.executors``): local processes or a Ray cluster. A run
        resumes whichever executor started it.
    """
    return evaluate_seeds(
        dataset,
        method,
        seeds=[seed],
        out=out,
        params=params,
        protocol=protocol,
        protocol_params=protocol_params,
        jobs=jobs,
        cache=cache,
        source=source,
        overwrite=overwrite,
        executor=executor,
        single=True,
    )[0]


def evaluate_seeds(
    dataset: ClipDataset,
    method: str,
    *,
    seeds: list[int],
    out: str | os.PathLike,
    params: dict | None = None,
    protocol: str = "loso",
    protocol_params: dict | None = None,
    jobs: int = 1,
    cache: str | os.PathLike | None = None,
    source: dict | None = None,
    overwrite: bool = False,
    executor: Executor | None = None,
    single: bool = False,
) -> list[RunResult]:
    """:func:`evaluate` for several seeds at once: one run per seed in ``out/seed<k>`` (``out``
    itself when ``single``), every seed's folds submitted together, and with more than one seed
    ``out/summary.md`` and ``summary.json`` with the mean ± std over seeds."""
    started = time.perf_counter()
    out = Path(out)
    executor = executor or LocalExecutor(jobs)
    cls = method_class(method)
    configured = create_method(method, **(params or {}))
    params = configured.params()
    splitter = make_protocol(protocol, **(protocol_params or {}))
    folds = splitter.folds(dataset)
    if not folds:
        raise MerkitError(f"Protocol {protocol!r} gives no folds on {dataset.name} ({len(dataset)} clips).")
    if dataset.multilabel and not cls.multilabel:
        raise MerkitError(
            f"{method} classifies each clip into one class; for action units (--labels {dataset.labels}) use "
            "a method that predicts several (merkit list methods; e.g. apex_flow_svm, ststnet, au_prevalence)."
        )
    if isinstance(executor, LocalExecutor):  # a cluster's workers may have the GPU this machine lacks
        configured.check_machine()
    if len(set(seeds)) != len(seeds) or not seeds:
        raise MerkitError(f"--seeds must name distinct seeds; got {seeds}.")
    cache = Cache(cache)
    runs = {seed: out if single else out / f"seed{seed}" for seed in seeds}
    if not single and out.exists() and not out.is_dir():
        raise MerkitError(f"--out {out} is a file; pass a folder for the runs of every seed.")
    configs = {}
    for seed, run in runs.items():
        configs[seed] = {
            "merkit": __version__,
            "dataset": {
                "name": dataset.name,
                "labels": dataset.labels,
                "classes": list(dataset.classes),
                "n_clips": len(dataset),
                "clips": dataset.digest(),
                **(source or {}),
            },
            "method": {"name": method, "params": params},
            "protocol": {"name": protocol, "params": protocol_params or {}},
            "seed": seed,
        }
        _claim(run, configs[seed], overwrite)

    pending = {(seed, f.index): f for seed, run in runs.items() for f in folds if not _fold_file(run, f).is_file()}
    fold_cache: str | Cache = str(cache.root)
    if pending:
        ship = executor.ships_representations  # workers see neither the data nor the cache: prepare here
        summary = prepare(method, params, dataset, cache, executor=LocalExecutor(jobs) if ship else executor)
        if summary.failed:
            raise MerkitError(
                f"{len(summary.failed)} clips could not be prepared for {method}:\n"
                + "\n".join(f"  - {k}: {v}" for k, v in list(summary.failed.items())[:20])
            )
        if ship and (representation := configured.representation()) is not None:
            fold_cache = representation.shipped(dataset, cache)
    computed = {seed: [] for seed in seeds}
    together = configured.folds_together() or len(pending)
    keys = list(pending)
    groups = [tuple(keys[start : start + together]) for start in range(0, len(keys), together)]
    calls = {
        group: (
            run_folds,
            cls,
            params,
            dataset,
            [pending[key] for key in group],
            [fold_seed(seed, index) for seed, index in group],
            fold_cache,
        )
        for group in groups
    }
    what = (
        f"{method}: {protocol} folds"
        + (f", {len(seeds)} seeds" if len(seeds) > 1 else "")
        + (f", {together} at once" if together > 1 else "")
    )
    for group, results in executor.map(calls, what):
        for (seed, index), (frame, state) in zip(group, results):
            for name, data in state.items():  # the fold's network, written here: a worker's disk may not be ours
                atomic_write_bytes(model_folder(runs[seed], folds[index]) / name, data)
            _save_fold(
                runs[seed], folds[index], frame
            )  # each fold's predictions land as they arrive (the fold is done)
            computed[seed].append(folds[index].name)

    results = []
    for seed, run in runs.items():
        predictions = pd.concat([pd.read_csv(_fold_file(run, f), dtype=str) for f in folds], ignore_index=True)
        metrics = summarize(predictions, dataset.classes, dataset.multilabel)
        metrics["leakage"] = {f.name: s for f in folds if (s := shared_subjects(dataset, f))}
        atomic_write_text(run / "predictions.csv", predictions.to_csv(index=False))
        atomic_write_text(run / "metrics.json", json.dumps(metrics, indent=2))
        write_report(
            run,
            configs[seed],
            metrics,
            dataset,
            elapsed=time.perf_counter() - started,
            computed=len(computed[seed]),
            total=len(folds),
        )
        results.append(RunResult(run, metrics, predictions, computed[seed]))
    if not single and len(seeds) > 1:
        write_seed_summary(out, results, seeds, configs[seeds[0]])
    return results


def seed_summary(results: list[RunResult]) -> dict:
    """{part: {metric: (mean, std)}} over seeds, for ``overall`` and each dataset (std with ddof 1)."""
    parts = ["overall", *sorted(results[0].metrics["per_dataset"])]
    names = ("mean_f1",) if results[0].metrics.get("multilabel") else ("accuracy", "uf1", "uar")
    table = {}
    for part in parts:
        values = {
            m: [r.metrics["overall"][m] if part == "overall" else r.metrics["per_dataset"][part][m] for r in results]
            for m in names
        }
        table[part] = {
            m: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0) for m, v in values.items()
        }
    return table


def write_seed_summary(out: Path, results: list[RunResult], seeds: list[int], config: dict) -> None:
    """``summary.md`` (the mean ± std table, then each seed's row) and ``summary.json``."""
    table = seed_summary(results)
    names = list(next(iter(table.values())))
    lines = [
        f"# {config['method']['name']} on {config['dataset']['name']} ({config['dataset']['labels']}), "
        f"{config['protocol']['name']}, {len(seeds)} seeds",
        "",
        f"Mean ± standard deviation over seeds {', '.join(map(str, seeds))} (each seed's figures pooled over its folds).",
        "",
        "| data | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    lines += [
        f"| {part} | " + " | ".join(f"{mean:.3f} ± {std:.3f}" for mean, std in row.values()) + " |"
        for part, row in table.items()
    ]
    lines += ["", "| seed | " + " | ".join(names) + " | run |", "| ---: |" + " ---: |" * len(names) + " --- |"]
    lines += [
        f"| {seed} | "
        + " | ".join(f"{r.metrics['overall'][m]:.3f}" for m in names)
        + f" | [{r.out.name}]({r.out.name}/report.md) |"
        for seed, r in zip(seeds, results)
    ]
    atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
    atomic_write_text(out / "summary.json", json.dumps({"seeds": seeds, "summary": table}, indent=2))


def summarize(predictions: pd.DataFrame, classes, multilabel: bool = False) -> dict:
    """Pooled figures, and per fold and per dataset beside them (per-AU F1 for action units)."""
    measure = au_scores if multilabel else scores

    def figures(frame):
        return measure(frame["label"].tolist(), frame["prediction"].tolist(), classes)

    return {
        "classes": list(classes),
        "multilabel": multilabel,
        "overall": figures(predictions),
        "per_dataset": {name: figures(part) for name, part in predictions.groupby("dataset", sort=True)},
        "per_fold": {name: figures(part) for name, part in predictions.groupby("fold", sort=False)},
    }


class DamagedRun(MerkitError):
    """A run directory whose ``config.json`` cannot be read."""


def read_config(out: Path, *, missing_ok: bool = False) -> dict | None:
    """The configuration of the run in ``out`` (None if there is none and ``missing_ok``);
    a MerkitError naming the file if it is missing or cannot be parsed (:class:`DamagedRun`)."""
    path = Path(out) / "config.json"
    if not path.is_file():
        if missing_ok:
            return None
        raise MerkitError(f"{out} is not a run directory (no config.json); pass the --out of a merkit evaluate.")
    try:
        config = json.loads(path.read_text())
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
        return config
    except (ValueError, UnicodeDecodeError) as error:
        raise DamagedRun(f"{path} is damaged ({error}); run merkit evaluate again into a new --out.") from None


def _claim(out: Path, config: dict, overwrite: bool) -> None:
    """Write ``config.json``, or check that the run already there has the same configuration."""
    path = out / "config.json"
    text = json.dumps(config, indent=2, sort_keys=True, default=str)
    wanted = json.loads(text)  # as it reads back: tuples become lists
    if out.exists() and not out.is_dir():
        raise MerkitError(
            f"--out {out} is a file, not a run directory; pass the path of a folder (new or of an earlier run)."
        )
    try:
        existing = read_config(out, missing_ok=True)
    except DamagedRun:
        if not overwrite:
            raise MerkitError(
                f"{path} is damaged, so the run in {out} cannot be resumed; pass --overwrite to start it "
                "over, or another --out."
            ) from None
        existing = None
    if existing == wanted:
        return
    if existing is not None and not overwrite:
        differs = sorted(k for k in set(existing) | set(wanted) if existing.get(k) != wanted.get(k))
        raise MerkitError(
            f"{out} holds a run with another configuration (differs in: {', '.join(differs)}); "
            "pass another --out, --overwrite, or delete that folder to start over."
        )
    clear_run(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


RUN_OUTPUTS = (
    "config.json",
    "predictions.csv",
    "metrics.json",
    "report.md",
    "confusion.png",
    "folds",
    "models",
    "explain",
)


def clear_run(out: Path) -> None:
    """Delete every output of the run in ``out`` (the configuration last, so that a run
    interrupted while clearing is still recognised as the old one and cleared again)."""
    for name in reversed(RUN_OUTPUTS):
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _save_fold(out: Path, fold: Fold, frame: pd.DataFrame) -> None:
    atomic_write_text(_fold_file(out, fold), frame.to_csv(index=False))
