"""Commands that make and apply models: train, predict, analyze."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from merkit.cli.common import (
    AddressOption,
    ApexOption,
    CacheOption,
    DatasetOption,
    DeviceOption,
    ExecutorOption,
    LabelsOption,
    ReaderOptions,
    RootOption,
    SetOption,
    app,
    check_positive,
    check_writable_file,
    console,
    executor_for,
    friendly,
    load_dataset,
    parse_settings,
    resolve_labels,
    spotter_from,
)
from merkit.cli.tables import results_table
from merkit.errors import ConfigError
from merkit.progress import progress_bar


@app.command()
@friendly
def train(
    dataset: DatasetOption,
    root: RootOption,
    out: Annotated[Path, typer.Option(help="Folder of the model bundle to write.")],
    method: Annotated[str, typer.Option(help="Method name (merkit list methods); for --task classification.")] = "",
    task: Annotated[
        str, typer.Option(help="classification (a method on clips) or spotting (a learned spotter on long videos).")
    ] = "classification",
    spotter: Annotated[str, typer.Option(help="For --task spotting: a learned spotter (softnet).")] = "softnet",
    labels: LabelsOption = None,
    option: ReaderOptions = None,
    apex: ApexOption = "annotated",
    seed: Annotated[int, typer.Option(help="Seed of the training.")] = 0,
    set_: SetOption = None,
    evaluate_: Annotated[
        str,
        typer.Option(
            "--evaluate", help="none, or loso: run a LOSO first (into OUT-loso) and put its figures in the model card."
        ),
    ] = "none",
    jobs: Annotated[int, typer.Option(help="Processes for the --evaluate folds.")] = 1,
    cache: CacheOption = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a bundle already in --out.")] = False,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
):
    """Fit a method on every clip of a dataset and write a model bundle (for merkit predict)."""
    from merkit.errors import check_choice
    from merkit.evaluation import evaluate as run
    from merkit.inference import train as fit_bundle
    from merkit.inference.bundle import check_bundle_out
    from merkit.methods import create_method

    check_choice("--evaluate", evaluate_, ("none", "loso"))
    check_choice("--task", task, ("classification", "spotting"))
    if task == "spotting":
        _train_spotter(dataset, root, spotter, out, set_, cache, overwrite)
        return
    if not method:
        raise ConfigError("--task classification needs --method (merkit list methods).")
    params = create_method(method, **parse_settings(set_)).params()
    where = executor_for(executor, jobs, address, params)
    check_bundle_out(out, overwrite)
    labels, labels_from = resolve_labels(method, dataset, labels)
    data = load_dataset(dataset, root, labels, option, apex)
    source = {"root": str(root.resolve()), "apex": apex, "options": option or [], "labels_from": labels_from}
    evaluation = None
    if evaluate_ == "loso":
        loso_out = out.with_name(out.name + "-loso")
        result = run(
            data,
            method,
            out=loso_out,
            params=params,
            protocol="loso",
            seed=seed,
            cache=cache,
            source=source,
            overwrite=overwrite,
            executor=where,
        )
        console.print(results_table([(method, result)], f"LOSO before training: {data.name} ({data.labels})"))
        evaluation = {**result.metrics, "protocol": "loso"}
    path = fit_bundle(
        data,
        method,
        out=out,
        params=params,
        seed=seed,
        cache=cache,
        apex=apex,
        source=source,
        evaluation=evaluation,
        overwrite=overwrite,
        executor=where,
    )
    console.print(
        f"Wrote the model bundle {path} ({method} on {len(data)} clips of {data.name}, classes "
        f"{', '.join(data.classes)}); its card: {path / 'README.md'}",
        soft_wrap=True,
    )


def _train_spotter(
    dataset: str, root: Path, spotter: str, out: Path, settings, cache: Path | None, overwrite: bool
) -> None:
    from merkit.datasets.long_videos import load_long_videos
    from merkit.inference.bundle import check_bundle_out, train_spotter
    from merkit.spotting import create_spotter

    learner = create_spotter(spotter, **parse_settings(settings))
    if not learner.learns:
        raise ConfigError(
            f"{spotter} is hand-crafted and needs no training; --task spotting trains a learned spotter (softnet)."
        )
    check_bundle_out(out, overwrite)
    videos = load_long_videos(dataset, root)
    path = train_spotter(
        videos, learner, out, cache=cache or out.with_name(out.name + "-tracking"), overwrite=overwrite
    )
    console.print(
        f"Wrote the spotting bundle {path} ({spotter} on {len(videos)} long videos of {dataset}); its card: "
        f"{path / 'README.md'}",
        soft_wrap=True,
    )


@app.command()
@friendly
def predict(
    inputs: Annotated[list[Path], typer.Argument(help="Video files or folders of frames, one expression each.")],
    model: Annotated[Path, typer.Option(help="A model bundle (the --out of merkit train).")],
    onset: Annotated[
        str | None, typer.Option(help="Onset: a frame (12) or a time (0.4s); default the first frame.")
    ] = None,
    apex: Annotated[
        str | None, typer.Option(help="Apex: a frame or a time; default found by motion where the method needs one.")
    ] = None,
    offset: Annotated[str | None, typer.Option(help="Offset: a frame or a time; default the last frame.")] = None,
    fps: Annotated[float | None, typer.Option(help="Frame rate of frame folders (a video's own by default).")] = None,
    out: Annotated[Path | None, typer.Option(help="CSV to write: input, prediction, p_<class> per class.")] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Keep preprocessing results in this cache folder (default: none).")
    ] = None,
    device: DeviceOption = None,
):
    """Predict the class of each input with a trained model bundle; print a table, write a CSV."""
    import pandas as pd

    from merkit.inference import load_model
    from merkit.io.atomic import atomic_write_text
    from merkit.methods.base import probability_columns

    if fps is not None:
        check_positive("--fps", fps)
    if out is not None:
        check_writable_file(out, (".csv",))
    bundle = load_model(model, task="classification", device=device)
    rows = []
    with progress_bar("predicting", len(inputs)) as advance:
        for item in inputs:
            [label], [p] = bundle.classify(item, onset=onset, apex=apex, offset=offset, fps=fps, cache=cache)
            rows.append(
                {
                    "input": str(item),
                    "prediction": label,
                    **dict(zip(probability_columns(bundle.classes), map(float, p))),
                }
            )
            advance()
    table = Table(title=f"{model} ({bundle.method.name})")
    for column in rows[0]:
        table.add_column(column, justify="left" if column in ("input", "prediction") else "right")
    for row in rows:
        table.add_row(*[f"{v:.3f}" if isinstance(v, float) else v for v in row.values()])
    console.print(table)
    if out is not None:
        atomic_write_text(out, pd.DataFrame(rows).to_csv(index=False))
        console.print(f"Wrote {out}")


@app.command()
@friendly
def analyze(
    video: Annotated[
        Path, typer.Argument(help="A video file (anything PyAV reads) or a folder of frames (with --fps).")
    ],
    out: Annotated[
        Path, typer.Option(help="Folder for frames.csv, intervals.csv/.json, annotated.mp4 and report.html.")
    ],
    model: Annotated[
        Path | None, typer.Option(help="A model bundle (merkit train) to recognise each spotted interval.")
    ] = None,
    spotter: Annotated[str, typer.Option(help="Spotter (merkit list spotters).")] = "roi_flow",
    fps: Annotated[float | None, typer.Option(help="Frame rate of a frame folder (a video's own by default).")] = None,
    setting: Annotated[list[str] | None, typer.Option("--set", help="Spotter parameter, e.g. --set z=5.")] = None,
    device: DeviceOption = None,
    spotter_model: Annotated[
        Path | None,
        typer.Option(help="A spotting bundle (a trained learned spotter, e.g. softnet) instead of --spotter."),
    ] = None,
):
    """Spot the micro- and macro-expressions of a long recording, recognise them, and report.

    Interrupted, it resumes where it stopped when run again with the same --out.
    """
    from merkit.inference import load_model
    from merkit.inference.analyze import analyze as run_analysis

    if fps is not None:
        check_positive("--fps", fps)
    spotter_object = spotter_from(spotter, setting, spotter_model)
    bundle = load_model(model, task="classification", device=device) if model is not None else None
    summary = run_analysis(video, out, model=bundle, spotter=spotter_object, fps=fps)
    rows = summary["intervals"]
    table = Table(title=f"{video}: {summary['frames']} frames, a face in {summary['face_frames']}")
    for column in ("kind", "onset_s", "apex_s", "offset_s", "score", *(["prediction"] if bundle else [])):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["kind"],
            f"{row['onset_s']:.2f}",
            f"{row['apex_s']:.2f}",
            f"{row['offset_s']:.2f}",
            f"{row['score']:.2f}",
            *([row["prediction"]] if bundle else []),
        )
    console.print(table)
    if summary["note"]:
        console.print(f"[yellow]note:[/] {summary['note']}", highlight=False, soft_wrap=True)
    console.print(
        f"Wrote {out / 'report.html'}, {out / 'intervals.csv'}, {out / 'frames.csv'} and {out / 'annotated.mp4'}"
    )
