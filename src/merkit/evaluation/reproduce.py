"""Each seed paper's experiments, run as the paper ran them, with the paper's figure beside merkit's.

An :class:`Experiment` is one cell of a paper's results table: the dataset, the paper's classes,
protocol and method settings, and the figure it reports. ``reproduce`` runs every experiment
whose dataset the user holds, over several seeds, through the ordinary runner (so each run
resumes and lands in its own run directory), and writes ``report.md`` with the paper's figure,
merkit's mean ± standard deviation and the difference.

Papers:

- ``mer_rcnn``: Xia et al., IPTA 2018, Table 2 (accuracy, random 5-fold over clips, 4 classes on
  CASME and CASME II, 3 on SMIC), and the ablations the paper describes (magnification and
  temporal jittering switched off), for which it prints no figure;
- ``stanet``: STANet, Table 1 (accuracy, LOSO; CASME I 4 classes, CASME II 5, SMIC-HS 3) and
  Table 2 (CASME I: baseline, + SAB, + SAB + l1, + SAB + TAB + l1);
- ``ststnet``: Liong et al., FG 2019 (MEGC 2019 composite, 3 classes, LOSO, UF1 and UAR overall
  and per dataset).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from merkit.datasets import get_scheme, load
from merkit.errors import check_choice
from merkit.evaluation.runner import RunResult, evaluate_seeds, seed_summary
from merkit.executors import Executor
from merkit.io.atomic import atomic_write_text
from merkit.preprocess.apex import fill_apex

LEAKAGE = (
    "random k-fold over clips, as the paper: a subject's clips fall in both parts (identity leakage), "
    "which flatters every figure; merkit's report lists the shared subjects per fold"
)


@dataclass(frozen=True)
class Experiment:
    """One cell of a paper's results table.

    ``holder`` names the dataset the user must hold (a ``--casme2``-style option of
    ``merkit reproduce``); ``reported`` maps a metric (``accuracy``, ``uf1``, ``uar``, or
    ``<dataset>/<metric>`` for a composite's parts) to the paper's figure (None: no figure printed).
    """

    paper: str
    table: str
    name: str
    holder: str
    dataset: str
    labels: str
    method: str
    params: dict = field(default_factory=dict)
    protocol: str = "loso"
    protocol_params: dict = field(default_factory=dict)
    apex: str = "annotated"
    reported: dict = field(default_factory=dict)
    note: str = ""

    def classes(self) -> tuple[str, ...] | None:
        return get_scheme(self.labels).classes


def _mer_rcnn() -> list[Experiment]:
    kfold = {"protocol": "kfold", "protocol_params": {"n_splits": 5}, "note": LEAKAGE}
    cells = [("smic", "smic_hs", 0.571), ("casme", "casme", 0.632), ("casme2", "casme2", 0.658)]
    experiments = [
        Experiment(
            "mer_rcnn", "Table 2", holder, holder, dataset, "seed4", "mer_rcnn", reported={"accuracy": figure}, **kfold
        )
        for holder, dataset, figure in cells
    ]
    ablations = {
        "no magnification": {"magnify": False},
        "no jittering": {"jitter": False},
        "neither": {"magnify": False, "jitter": False},
    }
    experiments += [
        Experiment(
            "mer_rcnn",
            "ablation (no figure in the paper)",
            f"casme2/{name}",
            "casme2",
            "casme2",
            "seed4",
            "mer_rcnn",
            params,
            reported={"accuracy": None},
            **kfold,
        )
        for name, params in ablations.items()
    ]
    return experiments


def _stanet() -> list[Experiment]:
    table1 = [
        ("casme", "casme", "stanet_casme1", 0.7661),
        ("casme2", "casme2", "casme2_5", 0.6911),
        ("smic", "smic_hs", "megc3", 0.6890),
    ]
    experiments = [
        Experiment(
            "stanet",
            "Table 1" + (" (Table 2's full model)" if holder == "casme" else ""),
            holder,
            holder,
            dataset,
            labels,
            "stanet",
            reported={"accuracy": figure},
        )
        for holder, dataset, labels, figure in table1
    ]
    table2 = [("baseline", 0.7135), ("sab", 0.7310), ("sab_l1", 0.7485)]  # sab_tab_l1 is Table 1's CASME I cell
    experiments += [
        Experiment(
            "stanet",
            "Table 2",
            f"casme/{variant}",
            "casme",
            "casme",
            "stanet_casme1",
            "stanet",
            {"variant": variant},
            reported={"accuracy": figure},
        )
        for variant, figure in table2
    ]
    return experiments


def _ststnet() -> list[Experiment]:
    reported = {
        "uf1": 0.7353,
        "uar": 0.7605,
        "smic_hs/uf1": 0.6801,
        "smic_hs/uar": 0.7013,
        "casme2/uf1": 0.8382,
        "casme2/uar": 0.8686,
        "samm/uf1": 0.6588,
        "samm/uar": 0.6810,
    }
    return [
        Experiment(
            "ststnet",
            "Table (MEGC 2019 composite)",
            "megc2019",
            "megc",
            "megc2019",
            "megc3",
            "ststnet",
            apex="motion",
            reported=reported,
            note="SMIC has no apex: estimated by motion",
        )
    ]


PAPERS = {"mer_rcnn": _mer_rcnn, "stanet": _stanet, "ststnet": _ststnet}


def experiments(paper: str) -> list[Experiment]:
    """Every experiment of ``paper`` (``mer_rcnn``, ``stanet`` or ``ststnet``)."""
    return PAPERS[check_choice("paper", paper, PAPERS)]()


def plan(
    paper: str,
    roots: dict[str, str | os.PathLike | None],
    *,
    params: dict | None = None,
    seeds: Iterable[int] = (0, 1, 2),
) -> str:
    """The plan as text (``--dry-run``): per experiment, its data, classes, protocol, settings,
    the paper's figure, and whether it runs or is skipped."""
    lines = [f"merkit reproduce {paper}: seeds {', '.join(map(str, seeds))}"]
    for e in experiments(paper):
        root = roots.get(e.holder)
        status = f"from {root}" if root else f"skipped: pass --{e.holder} PATH to run it"
        classes = e.classes()
        protocol = e.protocol + (f" ({e.protocol_params['n_splits']} folds)" if "n_splits" in e.protocol_params else "")
        settings = {**e.params, **(params or {})}
        figures = ", ".join(f"{k} {'not given' if v is None else f'{v:.4f}'}" for k, v in e.reported.items())
        lines += [
            f"- {e.table} / {e.name}: {e.dataset} {status}",
            f"    classes ({e.labels}): {', '.join(classes) if classes else 'the dataset own'}; protocol {protocol}",
            f"    method {e.method}"
            + (f" with {json.dumps(settings, default=str)}" if settings else " with its defaults")
            + f"; apex {e.apex}",
            f"    paper: {figures}",
        ]
        if e.note:
            lines.append(f"    warning: {e.note}")
    return "\n".join(lines)


@dataclass
class Outcome:
    experiment: Experiment
    runs: list[RunResult]

    def mean_std(self, metric: str) -> tuple[float, float]:
        """Mean and standard deviation over seeds of ``metric`` (``uf1``, or ``smic_hs/uf1`` for a part)."""
        part, _, name = metric.rpartition("/")
        return seed_summary(self.runs)[part or "overall"][name]


def reproduce(
    paper: str,
    roots: dict[str, str | os.PathLike | None],
    *,
    out: str | os.PathLike,
    params: dict | None = None,
    seeds: Iterable[int] = (0, 1, 2),
    jobs: int = 1,
    cache: str | os.PathLike | None = None,
    options: dict[str, dict] | None = None,
    executor: Executor | None = None,
) -> tuple[Path, list[Outcome]]:
    """Run every experiment of ``paper`` whose dataset is in ``roots``; write ``out/report.md``.

    ``params`` override every experiment's method settings (e.g. a CPU-sized network); ``options``
    are reader options per holder (``{"casme2": {"variant": "cropped"}}``). Each (experiment,
    seed) is a run directory ``out/<experiment>/seed<k>``, resumed if it is there.
    """
    out, seeds = Path(out), list(seeds)
    outcomes = []
    for e in experiments(paper):
        root = roots.get(e.holder)
        if not root:
            continue
        data = fill_apex(load(e.dataset, root=root, labels=e.labels, **(options or {}).get(e.holder, {})), e.apex)
        runs = evaluate_seeds(
            data,
            e.method,
            seeds=seeds,
            out=out / e.name.replace("/", "-"),
            params={**e.params, **(params or {})},
            protocol=e.protocol,
            protocol_params=e.protocol_params,
            jobs=jobs,
            cache=cache,
            executor=executor,
            source={"root": str(Path(root).resolve()), "apex": e.apex, "labels_from": f"{paper}'s paper"},
        )
        outcomes.append(Outcome(e, runs))
    atomic_write_text(out / "report.md", report(paper, outcomes, roots, seeds, params))
    return out / "report.md", outcomes


def report(paper: str, outcomes: list[Outcome], roots: dict, seeds: list[int], params: dict | None) -> str:
    """``report.md``: the paper's figure beside merkit's mean ± std over seeds, and the difference."""
    lines = [
        f"# merkit reproduce {paper}",
        "",
        f"Seeds {', '.join(map(str, seeds))}; merkit's figures are mean ± standard deviation over them (pooled "
        "predictions of all folds per seed).",
        "",
    ]
    if params:
        lines += [
            f"Every experiment ran with `{json.dumps(params, default=str)}` in place of the paper's settings: "
            "these figures are not the paper's experiment at its size.",
            "",
        ]
    lines += [
        "| table | experiment | dataset | classes | protocol | metric | paper | merkit | difference |",
        "| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for o in outcomes:
        e = o.experiment
        for metric, figure in e.reported.items():
            mean, std = o.mean_std(metric)
            difference = "" if figure is None else f"{mean - figure:+.3f}"
            lines.append(
                f"| {e.table} | {e.name} | {e.dataset} | {e.labels} ({len(o.runs[0].metrics['classes'])}) | "
                f"{e.protocol} | {metric} | {'not given' if figure is None else f'{figure:.3f}'} | "
                f"{mean:.3f} ± {std:.3f} | {difference} |"
            )
    skipped = sorted({e.holder for e in experiments(paper)} - {h for h, r in roots.items() if r})
    notes = sorted({o.experiment.note for o in outcomes if o.experiment.note})
    if skipped:
        lines += ["", "Skipped, for want of the data: " + ", ".join(f"`--{h}`" for h in skipped) + "."]
    if notes:
        lines += ["", "Caveats:", *[f"- {n}" for n in notes]]
    lines += [
        "",
        "Each run directory (`<experiment>/seed<k>/report.md`) has the full figures, confusion matrix and recipe.",
        "",
    ]
    return "\n".join(lines)
