"""Commands that measure methods: evaluate, compare, reproduce, explain, spot-evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.table import Table

from merkit.cli.common import (
    AddressOption,
    ApexOption,
    CacheOption,
    DatasetOption,
    DeviceOption,
    ExecutorOption,
    LabelsOption,
    MethodOption,
    ReaderOptions,
    RootOption,
    SetOption,
    StorageOption,
    app,
    check_positive,
    console,
    executor_for,
    friendly,
    load_dataset,
    parse_seeds,
    parse_settings,
    resolve_labels,
)
from merkit.cli.tables import per_dataset_table, results_table
from merkit.errors import ConfigError, MerkitError


@app.command()
@friendly
def evaluate(
    dataset: DatasetOption,
    root: RootOption,
    method: MethodOption,
    out: Annotated[Path, typer.Option(help="Run directory; an interrupted run there resumes.")],
    labels: LabelsOption = None,
    option: ReaderOptions = None,
    apex: ApexOption = "annotated",
    protocol: Annotated[str, typer.Option(help="loso, kfold, subject_kfold or lodo.")] = "loso",
    folds: Annotated[int, typer.Option(help="Number of folds for the k-fold protocols.")] = 5,
    jobs: Annotated[int, typer.Option(help="Folds run in this many processes.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the run.")] = 0,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Several seeds, e.g. 0,1,2,3,4: one run each in OUT/seed<k>, and OUT/summary.md with mean ± std."
        ),
    ] = None,
    set_: SetOption = None,
    cache: CacheOption = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a run of another configuration in --out.")] = False,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
    ray_storage: StorageOption = "shared",
):
    """Evaluate a method on a dataset under a protocol and write a run directory."""
    from merkit.evaluation.runner import evaluate_seeds, seed_summary

    if protocol in ("kfold", "subject_kfold") and folds < 2:
        raise ConfigError(f"--folds must be at least 2 for {protocol}; got {folds}.")
    seed_list = parse_seeds(seeds) if seeds is not None else [seed]
    params = parse_settings(set_)
    labels, labels_from = resolve_labels(method, dataset, labels)
    data = load_dataset(dataset, root, labels, option, apex)
    protocol_params = {"n_splits": folds} if protocol in ("kfold", "subject_kfold") else {}
    results = evaluate_seeds(
        data,
        method,
        seeds=seed_list,
        out=out,
        params=params,
        protocol=protocol,
        protocol_params=protocol_params,
        cache=cache,
        overwrite=overwrite,
        executor=executor_for(executor, jobs, address, params, ray_storage),
        single=seeds is None,
        source={"root": str(root.resolve()), "apex": apex, "options": option or [], "labels_from": labels_from},
    )
    result = results[0]
    if len(results) > 1:
        summary = seed_summary(results)
        table = Table(title=f"{method} on {data.name} ({data.labels}), {protocol}: mean ± std over seeds {seeds}")
        for column in ("data", *next(iter(summary.values()))):
            table.add_column(column, justify="left" if column == "data" else "right")
        for part, row in summary.items():
            table.add_row(part, *[f"{mean:.3f} ± {std:.3f}" for mean, std in row.values()])
        console.print(table)
        console.print(f"Summary: {out / 'summary.md'}; each seed's run in {out}/seed<k>/")
        return
    console.print(results_table([(method, result)], f"{data.name} ({data.labels}), {protocol}"))
    if len(result.metrics["per_dataset"]) > 1 and not result.metrics.get("multilabel"):
        console.print(per_dataset_table(result.metrics))
    if result.metrics["leakage"]:
        console.print(
            f"[yellow]warning:[/] subjects shared between train and test in {len(result.metrics['leakage'])} folds (see report)."
        )
    console.print(f"Report: {out / 'report.md'}")


@app.command()
@friendly
def compare(
    runs: Annotated[
        list[Path], typer.Argument(help="Run directories (the --out of merkit evaluate) on the same clips.")
    ],
    out: Annotated[Path | None, typer.Option(help="Folder for compare.md, compare.png and reliability.png.")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples of the subjects.")] = 2000,
    n_perm: Annotated[int, typer.Option(help="Permutations for the paired tests.")] = 5000,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    ensemble: Annotated[
        bool,
        typer.Option(
            "--ensemble",
            help="Also score the mean of the runs' probabilities (equal weights), as one more run (written as a run directory to OUT/ensemble).",
        ),
    ] = False,
):
    """Runs side by side: 95% intervals over subjects, log loss, paired permutation tests of UF1."""
    from merkit.evaluation.compare import LABELS, cell, metrics_of
    from merkit.evaluation.compare import compare as run_compare

    check_positive("--n-boot", n_boot)
    check_positive("--n-perm", n_perm)
    figures, tests = run_compare(runs, out=out, n_boot=n_boot, n_perm=n_perm, seed=seed, ensemble=ensemble)
    names = metrics_of(figures)
    table = Table(title=f"{len(runs)} runs{' and their ensemble' if ensemble else ''}, 95% intervals over subjects")
    for column in ("run", "dataset", *[LABELS[m] for m in names]):
        table.add_column(column, justify="left" if column in ("run", "dataset") else "right")
    for r in figures.itertuples():
        table.add_row(r.run, r.dataset, *[cell(r, m) for m in names])
    console.print(table)
    for t in tests.itertuples():
        console.print(
            f"{t.run_a} - {t.run_b} ({t.dataset}): {LABELS[t.metric]} {t.difference:+.3f}, permutation p = {t.p_value:.4f}"
        )
    if out is not None:
        drawn = " and reliability.png" if (out / "reliability.png").is_file() else ""
        console.print(f"Wrote {out / 'compare.md'}, compare.png{drawn}")


@app.command()
@friendly
def reproduce(
    paper: Annotated[str, typer.Argument(help="mer_rcnn, stanet or ststnet.")],
    out: Annotated[Path, typer.Option(help="Folder for the runs and report.md.")],
    casme: Annotated[Path | None, typer.Option(help="Your CASME (I) folder.")] = None,
    casme2: Annotated[Path | None, typer.Option(help="Your CASME II folder.")] = None,
    smic: Annotated[Path | None, typer.Option(help="Your SMIC folder (HS is used).")] = None,
    samm: Annotated[Path | None, typer.Option(help="Your SAMM folder.")] = None,
    megc: Annotated[Path | None, typer.Option(help="Your MEGC 2019 composite folder.")] = None,
    seeds: Annotated[str, typer.Option(help="Seeds, comma-separated: mean ± std over them.")] = "0,1,2",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a method setting in every experiment (e.g. a CPU size).")
    ] = None,
    jobs: Annotated[int, typer.Option(help="Folds run in this many processes.")] = 1,
    cache: CacheOption = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan and run nothing.")] = False,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
):
    """Run a seed paper's experiments as the paper ran them; report its figure beside merkit's."""
    from merkit.evaluation.reproduce import plan
    from merkit.evaluation.reproduce import reproduce as run

    check_positive("--jobs", jobs)
    seed_list = parse_seeds(seeds)
    roots = {"casme": casme, "casme2": casme2, "smic": smic, "samm": samm, "megc": megc}
    for flag, root in roots.items():
        if root is not None and not root.exists():
            raise ConfigError(f"--{flag} {root} does not exist; pass the folder of your copy of that dataset.")
    params = parse_settings(set_)
    console.print(plan(paper, roots, params=params, seeds=seed_list), highlight=False, soft_wrap=True)
    if dry_run:
        return
    report, outcomes = run(
        paper,
        roots,
        out=out,
        params=params,
        seeds=seed_list,
        cache=cache,
        executor=executor_for(executor, jobs, address, params),
    )
    if not outcomes:
        raise ConfigError(f"None of the datasets {paper} needs was given; pass at least one of the paths above.")
    console.print(Markdown(report.read_text()))
    console.print(f"Report: {report}")


@app.command()
@friendly
def explain(
    run: Annotated[Path, typer.Option(help="A finished run directory of an attention method (stanet).")],
    clip: Annotated[str, typer.Option(help="The clip: its name, or dataset/subject/clip.")],
    cache: CacheOption = None,
):
    """Draw the spatial masks over a clip's frames and its temporal weights (STANet's Figs. 6-7)."""
    from merkit.evaluation.explain import explain as explain_clip
    from merkit.evaluation.explain import write_figures
    from merkit.evaluation.runner import read_config

    source = read_config(run).get("dataset", {})
    if "root" not in source:
        raise MerkitError(
            f"{run / 'config.json'} does not say where the dataset was; run merkit evaluate from the command line."
        )
    data = load_dataset(
        source["name"], Path(source["root"]), source["labels"], source.get("options"), source.get("apex", "annotated")
    )
    explanation = explain_clip(run, clip, dataset=data, cache=cache)
    console.print(
        f"{explanation.clip} (fold {explanation.fold}): {explanation.label}, predicted {explanation.prediction}"
    )
    for path in write_figures(explanation, run / "explain"):
        console.print(f"Wrote {path}", soft_wrap=True)


@app.command("spot-evaluate")
@friendly
def spot_evaluate(
    dataset: Annotated[
        list[str], typer.Option(help="Long-video dataset (casme2_long, samm_lv, casme3_long); repeat for several.")
    ],
    root: Annotated[list[Path], typer.Option(help="Its folder as distributed; one per --dataset, in the same order.")],
    out: Annotated[Path, typer.Option(help="Folder for report.md, scores.json, timelines/ and the tracking cache.")],
    spotter: Annotated[str, typer.Option(help="Spotter (merkit list spotters).")] = "roi_flow",
    model: Annotated[Path | None, typer.Option(help="A model bundle: also score STRS (spot then recognise).")] = None,
    setting: Annotated[list[str] | None, typer.Option("--set", help="Spotter parameter, e.g. --set z=5.")] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            help="Reader option: strict=true refuses workbooks with rows "
            "that cannot become intervals (default: skip and list them).",
        ),
    ] = None,
    device: DeviceOption = None,
    jobs: Annotated[int, typer.Option(help="A learned spotter's folds run in this many processes.")] = 1,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
):
    """Score a spotter on long videos with the MEGC protocol (IoU >= 0.5): micro, macro, overall, per dataset.
    A learned spotter (softnet) is trained leave-one-subject-out; an interrupted run in --out resumes."""
    import warnings

    from merkit.datasets.long_videos import load_long_videos
    from merkit.datasets.registry import _boolean
    from merkit.errors import DatasetWarning
    from merkit.evaluation.spot_evaluate import evaluate_spotting
    from merkit.inference import load_model
    from merkit.spotting import create_spotter

    if len(dataset) != len(root):
        raise ConfigError(f"Give one --root per --dataset ({len(dataset)} datasets, {len(root)} roots).")
    options = parse_settings(option, "--option")
    if set(options) - {"strict"}:
        raise ConfigError(
            f"spot-evaluate's readers take --option strict=true|false only; got {', '.join(sorted(set(options) - {'strict'}))}."
        )
    strict = _boolean("strict", options.get("strict", False))
    spotter_object = create_spotter(spotter, **parse_settings(setting))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DatasetWarning)
        videos = [v for name, folder in zip(dataset, root) for v in load_long_videos(name, folder, strict=strict)]
    skipped = [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]
    for w in caught:
        if issubclass(w.category, DatasetWarning):
            console.print(f"[yellow]{w.message}[/yellow]", highlight=False, soft_wrap=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    bundle = load_model(model, task="classification", device=device) if model is not None else None
    runner_ = executor_for(executor, jobs, address) if spotter_object.learns else None
    scores = evaluate_spotting(videos, spotter_object, out, model=bundle, executor=runner_, skipped=skipped)
    table = Table(title=f"{spotter}: {len(videos)} videos, MEGC protocol (IoU >= 0.5)")
    for column in ("data", "kind", "TP", "spotted", "annotated", "precision", "recall", "F1"):
        table.add_column(column)
    for name, part in [("all", scores["overall"]), *scores["per_dataset"].items()]:
        for kind in ("micro", "macro", "overall"):
            s = part[kind]
            table.add_row(
                name,
                kind,
                str(s["tp"]),
                str(s["spotted"]),
                str(s["annotated"]),
                f"{s['precision']:.3f}",
                f"{s['recall']:.3f}",
                f"{s['f1']:.3f}",
            )
    console.print(table)
    if "strs" in scores:
        console.print(
            f"STRS {scores['strs']['strs']:.3f} (spotting F1 x recognition UF1 {scores['strs']['recognition_uf1']:.3f})"
        )
    console.print(f"Wrote {out / 'report.md'}")
