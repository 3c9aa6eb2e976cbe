"""The ``merkit`` command: parses arguments, calls the library, renders progress and tables."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from merkit.errors import ConfigError, MerkitError
from merkit.progress import progress_bar, show_progress

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Spontaneous facial micro-expression recognition.")
console = Console()


def friendly(command):
    """Print a MerkitError as one clear message and exit with status 2, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        show_progress(True)
        try:
            return command(*args, **kwargs)
        except MerkitError as error:
            console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def parse_settings(settings: list[str]) -> dict:
    """``["C=10", "radius=1,1,4"]`` -> ``{"C": "10", "radius": "1,1,4"}`` (typed by the method)."""
    parsed = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes NAME=VALUE; got {item!r}.")
        parsed[key.strip()] = value.strip()
    return parsed


def results_table(rows: list[tuple[str, dict]], title: str) -> Table:
    from merkit.evaluation.reports import chance_levels

    table = Table(title=title)
    for column in ("method", "accuracy", "UF1", "UAR", "chance UAR", "run directory"):
        table.add_column(column, justify="left" if column in ("method", "run directory") else "right")
    for name, result in rows:
        overall = result.metrics["overall"]
        table.add_row(name, f"{overall['accuracy']:.3f}", f"{overall['uf1']:.3f}", f"{overall['uar']:.3f}",
                      f"{chance_levels(result.metrics)['uar']:.3f}", str(result.out))
    return table


@app.command()
@friendly
def synth(
    out: Annotated[Path, typer.Option(help="Folder to write the synthetic CASME II into.")],
    subjects: Annotated[int, typer.Option(help="Number of subjects.")] = 16,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    amplitude: Annotated[tuple[float, float], typer.Option(help="Peak displacement range in pixels.")] = (0.3, 1.0),
    fps: Annotated[float, typer.Option(help="Frame rate.")] = 200.0,
    jobs: Annotated[int, typer.Option(help="Processes.")] = 2,
):
    """Write a synthetic micro-expression dataset in the on-disk layout of CASME II."""
    from merkit.synthetic import SynthConfig, write_casme2

    config = SynthConfig(n_subjects=subjects, seed=seed, amplitude=amplitude, fps=fps)
    with progress_bar("synthesising subjects", subjects) as advance:
        data = write_casme2(out, config, jobs=jobs, progress=advance)
    console.print(f"Wrote {len(data.clips)} clips of {subjects} subjects to {out}")


@app.command()
@friendly
def evaluate(
    dataset: Annotated[str, typer.Option(help="Dataset name (merkit list datasets).")],
    root: Annotated[Path, typer.Option(help="The dataset's folder, as distributed.")],
    method: Annotated[str, typer.Option(help="Method name (merkit list methods).")],
    out: Annotated[Path, typer.Option(help="Run directory; an interrupted run there resumes.")],
    labels: Annotated[str, typer.Option(help="Label scheme (merkit list labels).")] = "seed4",
    protocol: Annotated[str, typer.Option(help="loso, kfold, subject_kfold or lodo.")] = "loso",
    folds: Annotated[int, typer.Option(help="Number of folds for the k-fold protocols.")] = 5,
    jobs: Annotated[int, typer.Option(help="Folds run in this many processes.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the run.")] = 0,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Method hyper-parameter NAME=VALUE (repeatable).")] = None,
    cache: Annotated[Path | None, typer.Option(help="Preprocessing cache folder.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a run of another configuration in --out.")] = False,
):
    """Evaluate a method on a dataset under a protocol and write a run directory."""
    from merkit.datasets import load
    from merkit.evaluation import evaluate as run

    data = load(dataset, root=root, labels=labels)
    protocol_params = {"n_splits": folds} if protocol in ("kfold", "subject_kfold") else {}
    result = run(data, method, out=out, params=parse_settings(set_ or []), protocol=protocol, protocol_params=protocol_params,
                 seed=seed, jobs=jobs, cache=cache, source={"root": str(root.resolve())}, overwrite=overwrite)
    console.print(results_table([(method, result)], f"{data.name} ({labels}), {protocol}"))
    if result.metrics["leakage"]:
        console.print(f"[yellow]warning:[/] subjects shared between train and test in {len(result.metrics['leakage'])} folds (see report).")
    console.print(f"Report: {out / 'report.md'}")


@app.command()
@friendly
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the synthetic data and the runs.")] = Path("merkit-demo"),
    jobs: Annotated[int, typer.Option(help="Processes.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the data and the runs.")] = 0,
):
    """Synthesise a CASME II-layout set and run LOSO with every quick method."""
    from merkit.datasets import load
    from merkit.evaluation import evaluate as run
    from merkit.methods import list_methods
    from merkit.synthetic import SynthConfig, is_written, write_casme2

    started = time.perf_counter()
    data_root = out / "data" / "CASME2"
    config = SynthConfig(seed=seed)
    if is_written(data_root, config):
        console.print(f"Reusing the synthetic CASME II in {data_root}")
    else:
        with progress_bar("synthesising subjects", config.n_subjects) as advance:
            write_casme2(data_root, config, jobs=jobs, progress=advance)
    data = load("casme2", root=data_root, labels="seed4")
    rows = []
    for cls in list_methods():
        if cls.quick:
            result = run(data, cls.name, out=out / "runs" / cls.name, seed=seed, jobs=jobs, cache=out / "cache",
                         source={"root": str(data_root.resolve())}, overwrite=True)
            rows.append((cls.name, result))
    console.print(results_table(rows, f"LOSO on synthetic CASME II: {len(data)} clips, {len(set(data.groups))} subjects, seed4 labels"))
    console.print(f"Done in {time.perf_counter() - started:.0f} s. Reports: {out / 'runs'}/<method>/report.md")


@app.command("list")
@friendly
def list_(what: Annotated[str, typer.Argument(help="methods, datasets, labels, protocols or all.")] = "all"):
    """List registered methods, datasets, label schemes and protocols."""
    from merkit.datasets import SCHEMES, list_datasets
    from merkit.errors import check_choice
    from merkit.evaluation import PROTOCOLS
    from merkit.methods import list_methods

    check_choice("list", what, ["all", "methods", "datasets", "labels", "protocols"])
    sections = {
        "methods": [(m.name, m.summary) for m in list_methods()],
        "datasets": [(d.name, d.summary) for d in list_datasets()],
        "labels": [(s.name, s.description + (f": {', '.join(s.classes)}" if s.classes else "")) for s in SCHEMES.values()],
        "protocols": [(name, text) for name, (_, text) in PROTOCOLS.items()],
    }
    for section, rows in sections.items():
        if what in ("all", section):
            table = Table(title=section)
            table.add_column("name")
            table.add_column("description")
            for row in rows:
                table.add_row(*row)
            console.print(table)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
