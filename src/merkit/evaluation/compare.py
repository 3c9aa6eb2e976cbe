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

    def clips(self) -> set[str]:
        p = self.predictions
        return set(p["dataset"] + "/" + p["subject"] + "/" + p["clip"])


def read_run(path: str | os.PathLike, name: str | None = None) -> Run:
    """The run in the folder ``path`` (a ``merkit evaluate --out``)."""
    path = Path(path)
    config = read_config(path)
    if not (path / "predictions.csv").is_file():
        raise MerkitError(f"{path} has no predictions.csv: the run has not finished; run merkit evaluate there again.")
    predictions = pd.read_csv(path / "predictions.csv", dtype=str)
    return Run(name or path.name, path, config, predictions)


def subject_confusions(predictions: pd.DataFrame, classes: list[str], multilabel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(S,) subject ids ``dataset/subject`` and each subject's counts: (S, C, C) confusion
    matrices, or for action units (S, C, 3) true positives, false positives and false negatives."""
    groups = (predictions["dataset"] + "/" + predictions["subject"]).to_numpy()
    subjects = np.unique(groups)
    count = au_counts if multilabel else confusion_matrix
    return subjects, np.stack([count(predictions["label"][groups == s], predictions["prediction"][groups == s], classes)
                               for s in subjects])


def figures_of(counts: np.ndarray, multilabel: bool = False) -> dict[str, np.ndarray]:
    """The figures of summed counts: (..., C, C) confusions, or (..., C, 3) AU counts (mean F1)."""
    return {"mean_f1": au_figures(counts)["mean_f1"]} if multilabel else confusion_figures(counts)


def bootstrap(matrices: np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95,
              multilabel: bool = False) -> dict[str, tuple[float, float, float]]:
    """{metric: (value, low, high)}: the pooled figure and its percentile interval over subject resamples."""
    rng = np.random.default_rng(seed)
    s = len(matrices)
    counts = rng.multinomial(s, np.full(s, 1 / s), size=n_boot)  # (B, S): how often each subject is drawn
    resampled = (counts @ matrices.reshape(s, -1)).reshape(n_boot, *matrices.shape[1:])
    value, samples = figures_of(matrices.sum(0), multilabel), figures_of(resampled, multilabel)
    tail = (1 - level) / 2 * 100
    return {m: (float(value[m]), *map(float, np.nanpercentile(samples[m], [tail, 100 - tail]))) for m in samples}


def permutation_test(a: np.ndarray, b: np.ndarray, *, metric: str = "uf1", n_perm: int = 5000, seed: int = 0,
                     multilabel: bool = False) -> tuple[float, float]:
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
            raise MerkitError(f"{run.path} uses the label scheme {run.config['dataset'].get('labels')} ({', '.join(run.classes)}) "
                              f"but {first.path} uses {first.config['dataset'].get('labels')} ({', '.join(first.classes)}); "
                              "compare runs of one label scheme.")
        if run.clips() != first.clips():
            only = len(run.clips() - first.clips()), len(first.clips() - run.clips())
            raise MerkitError(f"{run.path} and {first.path} predicted different clips ({only[0]} only in the first, "
                              f"{only[1]} only in the second); compare runs on the same data.")


def compare(paths: list[str | os.PathLike], *, out: str | os.PathLike | None = None, n_boot: int = 2000,
            n_perm: int = 5000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Figures with intervals per run and dataset, and paired tests per pair of runs.

    Returns (figures, tests) tables; with ``out``, also writes ``compare.md`` and ``compare.png``.
    """
    if len(paths) < 1:
        raise MerkitError("Name at least one run directory to compare.")
    names = [Path(p).name for p in paths]
    runs = [read_run(p, name=n if names.count(n) == 1 else str(p)) for p, n in zip(paths, names)]
    check_comparable(runs)
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
        for part, mask in parts.items():
            figures = bootstrap(matrices[mask], n_boot=n_boot, seed=seed, multilabel=multilabel)
            rows.append({"run": run.name, "dataset": part, "subjects": int(mask.sum()), "clips": int(matrices[mask].sum()),
                         **{f"{m}{suffix}": v for m, triple in figures.items() for suffix, v in zip(("", "_low", "_high"), triple)}})
    tests = []
    for a, b in combinations(runs, 2):
        for part, mask in parts.items():
            difference, p = permutation_test(confusions[a.name][1][mask], confusions[b.name][1][mask], metric=headline,
                                             n_perm=n_perm, seed=seed, multilabel=multilabel)
            tests.append({"run_a": a.name, "run_b": b.name, "dataset": part, "metric": headline, "difference": difference,
                          "p_value": p})
    figures, tests = pd.DataFrame(rows), pd.DataFrame(tests)
    if out is not None:
        out = Path(out)
        atomic_write_text(out / "compare.md", markdown(figures, tests, runs, n_boot, n_perm))
        plot(figures, out / "compare.png")
    return figures, tests


LABELS = {"accuracy": "accuracy", "uf1": "UF1", "uar": "UAR", "mean_f1": "mean AU F1"}


def metrics_of(figures: pd.DataFrame) -> list[str]:
    """The figures a comparison holds: accuracy, UF1, UAR, or the mean AU F1 of action units."""
    return [m for m in LABELS if m in figures.columns]


def markdown(figures: pd.DataFrame, tests: pd.DataFrame, runs: list[Run], n_boot: int, n_perm: int) -> str:
    def cell(row, m):
        return f"{getattr(row, m):.3f} [{getattr(row, m + '_low'):.3f}, {getattr(row, m + '_high'):.3f}]"

    names = metrics_of(figures)
    lines = ["# Runs compared", "", f"{len(runs)} runs on the same {runs[0].config['dataset'].get('n_clips', '?')} clips, "
             f"label scheme `{runs[0].config['dataset'].get('labels')}`. Intervals: 95% percentile bootstrap over "
             f"subjects ({n_boot} resamples).", "",
             "| run | dataset | subjects | clips | " + " | ".join(LABELS[m] for m in names) + " |",
             "| --- | --- | ---: | ---: |" + " --- |" * len(names)]
    lines += [f"| {r.run} | {r.dataset} | {r.subjects} | {r.clips} | " + " | ".join(cell(r, m) for m in names) + " |"
              for r in figures.itertuples()]
    if len(tests):
        headline = LABELS[tests["metric"].iloc[0]]
        lines += ["", f"Paired permutation tests of the {headline} difference, swapping whole subjects ({n_perm} permutations); "
                  "a p-value above 0.05 means the difference is within what chance gives on these subjects.", "",
                  f"| run A | run B | dataset | {headline} A - B | p |", "| --- | --- | --- | ---: | ---: |"]
        lines += [f"| {t.run_a} | {t.run_b} | {t.dataset} | {t.difference:+.3f} | {t.p_value:.4f} |" for t in tests.itertuples()]
    lines += ["", "![figures with their intervals](compare.png)", "",
              *[f"- `{r.name}`: {r.config['method']['name']} at `{r.path}`" for r in runs], ""]
    return "\n".join(lines)


def plot(figures: pd.DataFrame, path: Path) -> None:
    """PNG: each run's figures (all data) with their 95% intervals."""
    from merkit.evaluation.reports import plt, save_figure

    overall = figures[figures["dataset"] == "all"].reset_index(drop=True)
    names = metrics_of(figures)
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
