"""Is one method really better? Runs side by side, with intervals and paired tests over subjects.

Micro-expression datasets are small and their clips cluster by subject, so both the interval and
the test resample *subjects*, not clips:

- a 95% interval per figure by the percentile bootstrap: draw as many subjects as the run has,
  with replacement, pool their predictions, compute the figure; repeat ``n_boot`` times;
- a paired permutation test of the UF1 difference between two runs on the same clips: under the
  null hypothesis that the two methods are exchangeable, swapping the two runs' predictions for
  any subject leaves the distribution unchanged; each permutation swaps each subject with
  probability 1/2, and the p-value is (1 + #|d*| >= |d|) / (1 + n_perm).

Every figure is a function of the pooled confusion matrix (for action units, of the per-AU true
and false positive and false negative counts), so resampling sums per-subject counts:
``n_boot`` resamples cost one matrix product.

Runs that wrote each clip's probabilities (``p_<class>``) are also scored by their log loss (its
interval from the same subject resamples as the other figures) and drawn in a reliability
diagram; ``ensemble=True`` adds the average of the runs' probabilities as one more run, scored
and tested beside them (nothing is fitted: weights are equal and fixed in advance).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from merkit.datasets.labels import is_multilabel
from merkit.errors import MerkitError
from merkit.evaluation.metrics import au_counts, au_figures, confusion_figures, confusion_matrix
from merkit.evaluation.runner import read_config
from merkit.io.atomic import atomic_write_text
from merkit.methods.base import probability_columns

EPS = 1e-15  # probabilities are clipped to [EPS, 1 - EPS] in the log loss, as scikit-learn's


@dataclass
class Run:
    """A finished run: its name, configuration and per-clip predictions."""

    name: str
    path: Path
    config: dict
    predictions: pd.DataFrame

    @property
    def classes(self) -> list[str]:
        return list(self.config["dataset"]["classes"])

    def keys(self) -> pd.Series:
        """(n_clips,) each prediction's clip as ``dataset/subject/clip``."""
        p = self.predictions
        return p["dataset"] + "/" + p["subject"] + "/" + p["clip"]

    def clips(self) -> set[str]:
        return set(self.keys())

    def probabilities(self) -> np.ndarray | None:
        """(n_clips, n_classes) each clip's ``p_<class>``, rows as ``predictions``; None if the
        run has none (action units, or a run written before merkit kept them)."""
        columns = probability_columns(self.classes)
        if not set(columns) <= set(self.predictions.columns):
            return None
        values = self.predictions[columns].astype(float).to_numpy()
        return None if np.isnan(values).any() else values


def read_run(path: str | os.PathLike, name: str | None = None) -> Run:
    """The run in the folder ``path`` (a ``merkit evaluate --out``)."""
    path = Path(path)
    config = read_config(path)
    if not (path / "predictions.csv").is_file():
        raise MerkitError(f"{path} has no predictions.csv: the run has not finished; run merkit evaluate there again.")
    predictions = pd.read_csv(path / "predictions.csv", dtype=str)
    return Run(name or path.name, path, config, predictions)


def subject_confusions(
    predictions: pd.DataFrame, classes: list[str], multilabel: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(S,) subject ids ``dataset/subject`` and each subject's counts: (S, C, C) confusion
    matrices, or for action units (S, C, 3) true positives, false positives and false negatives."""
    groups = (predictions["dataset"] + "/" + predictions["subject"]).to_numpy()
    subjects = np.unique(groups)
    count = au_counts if multilabel else confusion_matrix
    return subjects, np.stack(
        [count(predictions["label"][groups == s], predictions["prediction"][groups == s], classes) for s in subjects]
    )


def figures_of(counts: np.ndarray, multilabel: bool = False) -> dict[str, np.ndarray]:
    """The figures of summed counts: (..., C, C) confusions, or (..., C, 3) AU counts (mean F1)."""
    return {"mean_f1": au_figures(counts)["mean_f1"]} if multilabel else confusion_figures(counts)


def subject_draws(s: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, s) how often each of ``s`` subjects is drawn in each resample (the same for a
    given seed, so every figure of a run is resampled on the same subjects)."""
    return np.random.default_rng(seed).multinomial(s, np.full(s, 1 / s), size=n_boot)


def bootstrap(
    matrices: np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95, multilabel: bool = False
) -> dict[str, tuple[float, float, float]]:
    """{metric: (value, low, high)}: the pooled figure and its percentile interval over subject resamples."""
    s = len(matrices)
    counts = subject_draws(s, n_boot, seed)
    resampled = (counts @ matrices.reshape(s, -1)).reshape(n_boot, *matrices.shape[1:])
    value, samples = figures_of(matrices.sum(0), multilabel), figures_of(resampled, multilabel)
    tail = (1 - level) / 2 * 100
    return {m: (float(value[m]), *map(float, np.nanpercentile(samples[m], [tail, 100 - tail]))) for m in samples}


def subject_log_losses(run: Run) -> np.ndarray | None:
    """(S, 2) per subject (in :func:`subject_confusions`' order): the sum over its clips of
    -log p(true class), and its number of clips; None if the run has no probabilities."""
    probabilities = run.probabilities()
    if probabilities is None:
        return None
    truth = np.array([run.classes.index(label) for label in run.predictions["label"]])
    losses = -np.log(np.clip(probabilities[np.arange(len(truth)), truth], EPS, 1 - EPS))
    groups = (run.predictions["dataset"] + "/" + run.predictions["subject"]).to_numpy()
    subjects, index = np.unique(groups, return_inverse=True)
    return np.stack([np.bincount(index, losses, len(subjects)), np.bincount(index, minlength=len(subjects))], axis=1)


def log_loss_interval(
    per_subject: np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """(log loss, low, high): the mean -log p(true class) over the clips and its percentile
    interval over the subject resamples of :func:`bootstrap` (the same draws for one ``seed``)."""
    resampled = subject_draws(len(per_subject), n_boot, seed) @ per_subject
    with np.errstate(invalid="ignore", divide="ignore"):
        samples = resampled[:, 0] / resampled[:, 1]
    tail = (1 - level) / 2 * 100
    return float(per_subject[:, 0].sum() / per_subject[:, 1].sum()), *map(
        float, np.nanpercentile(samples, [tail, 100 - tail])
    )


def reliability(run: Run, bins: int = 10) -> dict[str, np.ndarray | float] | None:
    """The reliability diagram of a run's top-class probabilities, or None without probabilities.

    Clips are binned by the probability of their most probable class (``bins`` equal bins of
    [0, 1]); per bin ``confidence`` (its mean), ``accuracy`` (how often that class is the label)
    and ``count``, each (bins,), NaN for empty bins; ``ece`` the expected calibration error, the
    clip-weighted mean of |accuracy - confidence|.
    """
    probabilities = run.probabilities()
    if probabilities is None:
        return None
    confidence = probabilities.max(axis=1)
    correct = np.asarray(run.classes, dtype=object)[probabilities.argmax(axis=1)] == run.predictions["label"].to_numpy()
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, bins) / count
        accuracy = np.bincount(index, correct.astype(float), bins) / count
    ece = float(np.nansum(count * np.abs(accuracy - mean_confidence)) / count.sum())
    return {"confidence": mean_confidence, "accuracy": accuracy, "count": count, "ece": ece}


def ensemble_run(runs: list[Run]) -> Run:
    """The mean of ``runs``' probabilities on the same clips, as one more run: each clip's
    prediction is its most probable class. Refuses runs without probabilities, naming them."""
    lacking = [str(r.path) for r in runs if r.probabilities() is None]
    if lacking:
        raise MerkitError(
            f"{', '.join(lacking)} hold no p_<class> columns in predictions.csv, so they cannot be averaged; "
            "run merkit evaluate again into a new --out (runs written before merkit kept probabilities have none)."
        )
    first = runs[0]
    order = first.keys().to_numpy()
    mean = np.mean([pd.DataFrame(r.probabilities(), index=r.keys()).loc[order].to_numpy() for r in runs], axis=0)
    predictions = first.predictions[["fold", "dataset", "subject", "clip", "label"]].copy()
    predictions["prediction"] = np.asarray(first.classes, dtype=object)[mean.argmax(axis=1)]
    predictions[probability_columns(first.classes)] = mean
    config = {**first.config, "method": {"name": "ensemble", "params": {"runs": [str(r.path) for r in runs]}}}
    return Run("ensemble(" + "+".join(r.name for r in runs) + ")", first.path, config, predictions)


def permutation_test(
    a: np.ndarray, b: np.ndarray, *, metric: str = "uf1", n_perm: int = 5000, seed: int = 0, multilabel: bool = False
) -> tuple[float, float]:
    """(figure of a - figure of b, two-sided p-value), swapping whole subjects between the two runs.

    ``a`` and ``b`` are per-subject counts of two runs on the same clips (:func:`subject_confusions`).
    """
    rng = np.random.default_rng(seed)
    s = len(a)
    observed = float(figures_of(a.sum(0), multilabel)[metric] - figures_of(b.sum(0), multilabel)[metric])
    swap = (rng.random((n_perm, s)) < 0.5).astype(np.float64)
    flat_a, flat_b = a.reshape(s, -1), b.reshape(s, -1)
    first = ((1 - swap) @ flat_a + swap @ flat_b).reshape(n_perm, *a.shape[1:])
    second = (swap @ flat_a + (1 - swap) @ flat_b).reshape(n_perm, *a.shape[1:])
    differences = figures_of(first, multilabel)[metric] - figures_of(second, multilabel)[metric]
    p = (1 + np.sum(np.abs(differences) >= abs(observed) - 1e-12)) / (1 + n_perm)
    return observed, float(p)


def check_comparable(runs: list[Run]) -> None:
    """Refuse runs on other clips or another label scheme, saying which and how they differ."""
    first = runs[0]
    for run in runs[1:]:
        if run.config["dataset"].get("labels") != first.config["dataset"].get("labels") or run.classes != first.classes:
            raise MerkitError(
                f"{run.path} uses the label scheme {run.config['dataset'].get('labels')} ({', '.join(run.classes)}) "
                f"but {first.path} uses {first.config['dataset'].get('labels')} ({', '.join(first.classes)}); "
                "compare runs of one label scheme."
            )
        if run.clips() != first.clips():
            only = sorted(run.clips() - first.clips()), sorted(first.clips() - run.clips())
            examples = ", ".join((only[0] + only[1])[:3])
            raise MerkitError(
                f"{run.path} and {first.path} predicted different clips ({len(only[0])} only in the first, "
                f"{len(only[1])} only in the second, e.g. {examples}); compare runs on the same data."
            )


def compare(
    paths: list[str | os.PathLike],
    *,
    out: str | os.PathLike | None = None,
    n_boot: int = 2000,
    n_perm: int = 5000,
    seed: int = 0,
    ensemble: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Figures with intervals per run and dataset, and paired tests per pair of runs.

    With ``ensemble``, the mean of the runs' probabilities is one more run (:func:`ensemble_run`).
    Returns (figures, tests) tables (``log_loss`` NaN for runs without probabilities); with
    ``out``, also writes ``compare.md``, ``compare.png`` and ``reliability.png``, and with
    ``ensemble`` the ensemble as a run directory, ``out/ensemble``.
    """
    if len(paths) < (2 if ensemble else 1):
        raise MerkitError(
            "Name at least two run directories to average with --ensemble."
            if ensemble
            else "Name at least one run directory to compare."
        )
    names = [Path(p).name for p in paths]
    runs = [read_run(p, name=n if names.count(n) == 1 else str(p)) for p, n in zip(paths, names)]
    check_comparable(runs)
    if ensemble:
        runs.append(ensemble_run(runs))
    classes = runs[0].classes
    multilabel = is_multilabel(runs[0].config["dataset"].get("labels", ""))
    headline = "mean_f1" if multilabel else "uf1"
    confusions = {r.name: subject_confusions(r.predictions, classes, multilabel) for r in runs}
    subjects = confusions[runs[0].name][0]
    parts = {"all": np.ones(len(subjects), bool)}
    datasets = sorted({s.split("/")[0] for s in subjects})
    if len(datasets) > 1:
        parts.update({d: np.array([s.split("/")[0] == d for s in subjects]) for d in datasets})
    rows = []
    for run in runs:
        matrices = confusions[run.name][1]
        losses = None if multilabel else subject_log_losses(run)
        for part, mask in parts.items():
            figures = bootstrap(matrices[mask], n_boot=n_boot, seed=seed, multilabel=multilabel)
            if not multilabel:
                figures["log_loss"] = (
                    (np.nan,) * 3 if losses is None else log_loss_interval(losses[mask], n_boot=n_boot, seed=seed)
                )
            rows.append(
                {
                    "run": run.name,
                    "dataset": part,
                    "subjects": int(mask.sum()),
                    "clips": int(matrices[mask].sum()),
                    **{
                        f"{m}{suffix}": v
                        for m, triple in figures.items()
                        for suffix, v in zip(("", "_low", "_high"), triple)
                    },
                }
            )
    tests = []
    for a, b in combinations(runs, 2):
        for part, mask in parts.items():
            difference, p = permutation_test(
                confusions[a.name][1][mask],
                confusions[b.name][1][mask],
                metric=headline,
                n_perm=n_perm,
                seed=seed,
                multilabel=multilabel,
            )
            tests.append(
                {
                    "run_a": a.name,
                    "run_b": b.name,
                    "dataset": part,
                    "metric": headline,
                    "difference": difference,
                    "p_value": p,
                }
            )
    figures, tests = pd.DataFrame(rows), pd.DataFrame(tests)
    if out is not None:
        out = Path(out)
        curves = {} if multilabel else {r.name: c for r in runs if (c := reliability(r)) is not None}
        atomic_write_text(out / "compare.md", markdown(figures, tests, runs, n_boot, n_perm, curves))
        plot(figures, out / "compare.png")
        if curves:
            plot_reliability(curves, out / "reliability.png")
        if ensemble:
            write_run(runs[-1], out / "ensemble")
    return figures, tests


def write_run(run: Run, folder: Path) -> None:
    """Write ``run`` as a run directory (``config.json``, ``predictions.csv``) that
    :func:`compare` reads like any other: an ensemble of runs can then be compared with others."""
    import json

    atomic_write_text(folder / "config.json", json.dumps(run.config, indent=2, sort_keys=True, default=str))
    atomic_write_text(folder / "predictions.csv", run.predictions.to_csv(index=False))


LABELS = {"accuracy": "accuracy", "uf1": "UF1", "uar": "UAR", "mean_f1": "mean AU F1", "log_loss": "log loss"}


def metrics_of(figures: pd.DataFrame) -> list[str]:
    """The figures a comparison holds: accuracy, UF1, UAR and log loss, or the mean AU F1 of action units."""
    return [m for m in LABELS if m in figures.columns]


def cell(row, m: str) -> str:
    """``value [low, high]`` of figure ``m`` in a row of the figures table (``-`` where it is NaN)."""
    value = getattr(row, m)
    return "-" if np.isnan(value) else f"{value:.3f} [{getattr(row, m + '_low'):.3f}, {getattr(row, m + '_high'):.3f}]"


def markdown(
    figures: pd.DataFrame, tests: pd.DataFrame, runs: list[Run], n_boot: int, n_perm: int, curves: dict | None = None
) -> str:
    names = metrics_of(figures)
    lines = [
        "# Runs compared",
        "",
        f"{len(runs)} runs on the same {runs[0].config['dataset'].get('n_clips', '?')} clips, "
        f"label scheme `{runs[0].config['dataset'].get('labels')}`. Intervals: 95% percentile bootstrap over "
        f"subjects ({n_boot} resamples).",
        "",
        "| run | dataset | subjects | clips | " + " | ".join(LABELS[m] for m in names) + " |",
        "| --- | --- | ---: | ---: |" + " --- |" * len(names),
    ]
    lines += [
        f"| {r.run} | {r.dataset} | {r.subjects} | {r.clips} | " + " | ".join(cell(r, m) for m in names) + " |"
        for r in figures.itertuples()
    ]
    if len(tests):
        headline = LABELS[tests["metric"].iloc[0]]
        lines += [
            "",
            f"Paired permutation tests of the {headline} difference, swapping whole subjects ({n_perm} permutations); "
            "a p-value above 0.05 means the difference is within what chance gives on these subjects.",
            "",
            f"| run A | run B | dataset | {headline} A - B | p |",
            "| --- | --- | --- | ---: | ---: |",
        ]
        lines += [
            f"| {t.run_a} | {t.run_b} | {t.dataset} | {t.difference:+.3f} | {t.p_value:.4f} |"
            for t in tests.itertuples()
        ]
    lines += ["", "![figures with their intervals](compare.png)", ""]
    if curves:
        lines += [
            "Log loss: the mean of -log p(true class) over the clips (lower is better). Reliability of the "
            "top-class probability (10 bins); expected calibration error (ECE): "
            + ", ".join(f"{name} {curve['ece']:.3f}" for name, curve in curves.items())
            + ".",
            "",
            "![reliability diagram](reliability.png)",
            "",
        ]
    lines += [*[f"- `{r.name}`: {described(r)}" for r in runs], ""]
    return "\n".join(lines)


def described(run: Run) -> str:
    """What a run is, for a person: its method and folder, or the runs an ensemble averages."""
    averaged = run.config["method"]["params"].get("runs")
    return (
        f"the mean of the probabilities of {', '.join(averaged)}"
        if averaged
        else f"{run.config['method']['name']} at `{run.path}`"
    )


def plot(figures: pd.DataFrame, path: Path) -> None:
    """PNG: each run's figures (all data) with their 95% intervals."""
    from merkit.evaluation.reports import plt, save_figure

    overall = figures[figures["dataset"] == "all"].reset_index(drop=True)
    names = [m for m in metrics_of(figures) if m != "log_loss"]  # the figures in [0, 1]
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(overall), 3.4))
    width = 0.8 / len(names)
    for k, metric in enumerate(names):
        x = np.arange(len(overall)) + (k - (len(names) - 1) / 2) * width
        low, high = overall[metric] - overall[metric + "_low"], overall[metric + "_high"] - overall[metric]
        ax.errorbar(x, overall[metric], yerr=[low, high], fmt="o", capsize=4, label=LABELS[metric])
    ax.set_xticks(np.arange(len(overall)), overall["run"], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("figure (95% interval over subjects)")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_reliability(curves: dict[str, dict], path: Path) -> None:
    """PNG: each run's reliability diagram (accuracy against mean confidence per bin), the diagonal
    being perfect calibration; marker areas follow the clips per bin."""
    from merkit.evaluation.reports import plt, save_figure

    fig, ax = plt.subplots(figsize=(5.2, 4.6 + 0.2 * len(curves)))
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
    for name, curve in curves.items():
        shown = curve["count"] > 0
        (line,) = ax.plot(
            curve["confidence"][shown], curve["accuracy"][shown], linewidth=1, label=f"{name} (ECE {curve['ece']:.3f})"
        )
        ax.scatter(
            curve["confidence"][shown],
            curve["accuracy"][shown],
            s=8 + 120 * curve["count"][shown] / curve["count"].sum(),
            color=line.get_color(),
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("probability of the most probable class")
    ax.set_ylabel("how often it is the label")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.14))  # under the axes: run names can be long
    save_figure(fig, path)
