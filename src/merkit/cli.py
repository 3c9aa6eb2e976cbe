"""The ``merkit`` command: parses arguments, calls the library, renders progress and tables."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from merkit.errors import ConfigError, MerkitError
from merkit.progress import progress_bar, show_progress

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Spontaneous facial micro-expression recognition.")
console = Console()


def _print_version(asked: bool) -> None:
    if asked:
        from merkit import __version__

        console.print(f"merkit {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                   help="Print merkit's version and exit.")] = False) -> None:
    """Spontaneous facial micro-expression recognition."""


def friendly(command):
    """The one boundary for errors. Bad input (a MerkitError) prints one message and exits 2,
    without a traceback; anything else is a bug: its traceback, a request to report it, exit 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        show_progress(True)
        previous = stop_on_sigterm()
        try:
            return command(*args, **kwargs)
        except MerkitError as error:
            console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            console.print("Interrupted; run the same command again to resume where it stopped.")
            raise typer.Exit(130) from None
        except Exception:
            console.print_exception()
            import platform

            from merkit import __version__

            console.print(f"[bold red]merkit failed unexpectedly.[/] This is a bug: please report it to merkit's "
                          "maintainers, wherever you got merkit from, with the command you ran, this traceback and "
                          f"these versions: merkit {__version__}, Python {platform.python_version()}, {platform.platform()}.",
                          highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        finally:
            if previous is not None:
                import signal

                signal.signal(signal.SIGTERM, previous)

    return wrapper


def stop_on_sigterm():
    """SIGTERM (``kill``, a scheduler cancelling the job) stops a command as Ctrl-C does: its
    workers end, what is written stays, exit 130. Returns the handler it replaced (None off the
    main thread, where signals cannot be handled)."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGTERM, interrupt)
    return None


def parse_settings(settings: list[str] | None, flag: str = "--set") -> dict:
    """``["C=10", "radius=1,1,4"]`` -> ``{"C": "10", "radius": "1,1,4"}`` (typed by their user)."""
    parsed = {}
    for item in settings or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} takes NAME=VALUE; got {item!r}.")
        parsed[key.strip()] = value.strip()
    return parsed


def check_positive(flag: str, value: float) -> float:
    """``value`` if it is above zero, else a ConfigError naming ``flag``."""
    if not value > 0:
        raise ConfigError(f"{flag} must be positive; got {value}.")
    return value


def check_writable_file(path: Path, suffixes: tuple[str, ...]) -> Path:
    """Check, before any work, that ``path`` has one of ``suffixes`` and that its folder can be written."""
    if path.suffix.lower() not in suffixes:
        raise ConfigError(f"{path}: name the output file with {' or '.join(suffixes)}.")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; name a file to write.")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"Cannot create the folder {folder} for {path.name} ({error.strerror}); choose another output path.") from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"Cannot write into {folder} (permission denied); choose another output path.")
    return path


DatasetOption = Annotated[str, typer.Option(help="Dataset name (merkit list datasets).")]
RootOption = Annotated[Path, typer.Option(help="The dataset's folder as distributed (for a manifest, its .csv).")]
LabelsOption = Annotated[str | None, typer.Option(help="Label scheme (merkit list labels); default: the method's paper's for this dataset, else the dataset's usual one.")]
ReaderOptions = Annotated[list[str] | None, typer.Option("--option", help="Reader option NAME=VALUE, e.g. variant=cropped, smic_root=PATH.")]
MethodOption = Annotated[str, typer.Option(help="Method name (merkit list methods).")]
ApexOption = Annotated[str, typer.Option(help="Missing apexes: annotated (leave empty), middle, or motion.")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="Method hyper-parameter NAME=VALUE (repeatable).")]
CacheOption = Annotated[Path | None, typer.Option(help="Preprocessing cache folder.")]
ExecutorOption = Annotated[str, typer.Option(help="Where folds and clips run: local (processes here) or ray.")]
AddressOption = Annotated[str | None, typer.Option(help="Ray cluster to use: auto or HOST:PORT of its head (default: start one here).")]
DeviceOption = Annotated[str | None, typer.Option(help="Where a network model runs: cpu, cuda or cuda:N (default: a GPU if PyTorch sees one, else the CPU), whatever device it was trained on.")]
StorageOption = Annotated[str, typer.Option(help="With ray: shared (every node sees the data and --cache at the same paths) or driver (only this machine does; representations travel through Ray's object store).")]


def executor_for(executor: str, jobs: int, address: str | None, params: dict | None = None, storage: str = "shared"):
    """The executor the command line asks for; ``--address`` only with ray. A network method on
    ``device=cuda`` asks Ray for a GPU per fold."""
    from merkit.executors import make_executor

    check_positive("--jobs", jobs)
    if address and executor != "ray":
        raise ConfigError("--address names a Ray cluster; pass --executor ray with it.")
    gpus = 1 if str((params or {}).get("device", "cpu")).startswith("cuda") else 0
    return make_executor(executor, jobs=jobs, address=address, num_gpus=gpus, storage=storage)


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; a ConfigError for anything else."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds takes whole numbers separated by commas (0,1,2); got {text!r}.") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds must name one or more distinct seeds, e.g. 0,1,2; got {text!r}.")
    return seeds


def results_table(rows: list[tuple[str, dict]], title: str) -> Table:
    from merkit.evaluation.reports import chance_levels

    if rows and rows[0][1].metrics.get("multilabel"):
        return au_table(rows, title)
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
    out: Annotated[Path, typer.Option(help="Folder to write the synthetic dataset into.")],
    layout: Annotated[str, typer.Option(help="Dataset layout: casme2, casme, smic_hs, smic_vis, smic_nir, samm, casme3, mmew, "
                                              "4dme, dfme, megc2019, or long videos: casme2_long, samm_lv, casme3_long.")] = "casme2",
    subjects: Annotated[int, typer.Option(help="Number of subjects (per dataset for megc2019).")] = 16,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    amplitude: Annotated[tuple[float, float], typer.Option(help="Peak displacement range in pixels.")] = (0.3, 1.0),
    jobs: Annotated[int, typer.Option(help="Processes.")] = 2,
    videos: Annotated[int, typer.Option(help="Long videos per subject (long-video layouts).")] = 2,
    seconds: Annotated[float, typer.Option(help="Length of each long video in seconds (long-video layouts).")] = 30.0,
    errata: Annotated[bool, typer.Option(help="Spoil a few annotation rows as real releases have them (an offset of 0 or before "
                                              "the onset, an apex outside onset..offset, a repeated row, a missing clip folder).")] = False,
):
    """Write a synthetic micro-expression dataset in a real dataset's on-disk layout."""
    from merkit.errors import check_choice
    from merkit.synthetic import LAYOUTS, SynthConfig, write_dataset, write_megc2019
    from merkit.synthetic.long_videos import LONG_LAYOUTS, write_long_dataset

    check_choice("layout", layout, [*LAYOUTS, "megc2019", *LONG_LAYOUTS])
    check_positive("--subjects", subjects)
    check_positive("--jobs", jobs)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder to write the synthetic dataset into.")
    if errata and layout not in LAYOUTS:
        raise ConfigError(f"--errata is for the clip layouts ({', '.join(LAYOUTS)}); {layout} has none.")
    if layout in LONG_LAYOUTS:
        check_positive("--videos", videos)
        with progress_bar("synthesising long videos", subjects * videos) as advance:
            written = write_long_dataset(layout, out, subjects=subjects, videos=videos, seconds=seconds, seed=seed, progress=advance)
        console.print(f"Wrote {len(written.plans)} long videos in the {layout} layout to {out}")
        return
    with progress_bar("synthesising subjects", subjects * (3 if layout == "megc2019" else 1)) as advance:
        if layout == "megc2019":
            written = write_megc2019(out, SynthConfig(n_subjects=subjects, seed=seed, amplitude=amplitude), jobs=jobs, progress=advance)
            n_clips = sum(len(d.clips) for d in written.values())
        else:
            _, fps, emotions, _ = LAYOUTS[layout]
            config = SynthConfig(n_subjects=subjects, seed=seed, amplitude=amplitude, fps=fps, emotions=emotions)
            written = write_dataset(layout, out, config, jobs=jobs, progress=advance, errata=errata)
            n_clips = len(written.clips)
    console.print(f"Wrote {n_clips} clips in the {layout} layout to {out}")
    for erratum in [] if layout == "megc2019" else written.errata:
        console.print(f"erratum {erratum.kind}: {erratum.file}" + (f" row {erratum.row}" if erratum.row else "")
                      + f" ({erratum.subject}/{erratum.clip})", highlight=False, soft_wrap=True)


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
    seeds: Annotated[str | None, typer.Option(help="Several seeds, e.g. 0,1,2,3,4: one run each in OUT/seed<k>, and OUT/summary.md with mean ± std.")] = None,
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
    results = evaluate_seeds(data, method, seeds=seed_list, out=out, params=params, protocol=protocol,
                             protocol_params=protocol_params, cache=cache, overwrite=overwrite,
                             executor=executor_for(executor, jobs, address, params, ray_storage), single=seeds is None,
                             source={"root": str(root.resolve()), "apex": apex, "options": option or [], "labels_from": labels_from})
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
        console.print(f"[yellow]warning:[/] subjects shared between train and test in {len(result.metrics['leakage'])} folds (see report).")
    console.print(f"Report: {out / 'report.md'}")


@app.command()
@friendly
def train(
    dataset: DatasetOption,
    root: RootOption,
    out: Annotated[Path, typer.Option(help="Folder of the model bundle to write.")],
    method: Annotated[str, typer.Option(help="Method name (merkit list methods); for --task classification.")] = "",
    task: Annotated[str, typer.Option(help="classification (a method on clips) or spotting (a learned spotter on long videos).")] = "classification",
    spotter: Annotated[str, typer.Option(help="For --task spotting: a learned spotter (softnet).")] = "softnet",
    labels: LabelsOption = None,
    option: ReaderOptions = None,
    apex: ApexOption = "annotated",
    seed: Annotated[int, typer.Option(help="Seed of the training.")] = 0,
    set_: SetOption = None,
    evaluate_: Annotated[str, typer.Option("--evaluate", help="none, or loso: run a LOSO first (into OUT-loso) and put its figures in the model card.")] = "none",
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
        result = run(data, method, out=loso_out, params=params, protocol="loso", seed=seed, cache=cache,
                     source=source, overwrite=overwrite, executor=where)
        console.print(results_table([(method, result)], f"LOSO before training: {data.name} ({data.labels})"))
        evaluation = {**result.metrics, "protocol": "loso"}
    path = fit_bundle(data, method, out=out, params=params, seed=seed, cache=cache, apex=apex, source=source,
                      evaluation=evaluation, overwrite=overwrite, executor=where)
    console.print(f"Wrote the model bundle {path} ({method} on {len(data)} clips of {data.name}, classes "
                  f"{', '.join(data.classes)}); its card: {path / 'README.md'}", soft_wrap=True)


def _train_spotter(dataset: str, root: Path, spotter: str, out: Path, settings, cache: Path | None, overwrite: bool) -> None:
    from merkit.datasets.long_videos import load_long_videos
    from merkit.inference.bundle import check_bundle_out, train_spotter
    from merkit.spotting import create_spotter

    learner = create_spotter(spotter, **parse_settings(settings))
    if not learner.learns:
        raise ConfigError(f"{spotter} is hand-crafted and needs no training; --task spotting trains a learned spotter (softnet).")
    check_bundle_out(out, overwrite)
    videos = load_long_videos(dataset, root)
    path = train_spotter(videos, learner, out, cache=cache or out.with_name(out.name + "-tracking"), overwrite=overwrite)
    console.print(f"Wrote the spotting bundle {path} ({spotter} on {len(videos)} long videos of {dataset}); its card: "
                  f"{path / 'README.md'}", soft_wrap=True)


@app.command()
@friendly
def predict(
    inputs: Annotated[list[Path], typer.Argument(help="Video files or folders of frames, one expression each.")],
    model: Annotated[Path, typer.Option(help="A model bundle (the --out of merkit train).")],
    onset: Annotated[str | None, typer.Option(help="Onset: a frame (12) or a time (0.4s); default the first frame.")] = None,
    apex: Annotated[str | None, typer.Option(help="Apex: a frame or a time; default found by motion where the method needs one.")] = None,
    offset: Annotated[str | None, typer.Option(help="Offset: a frame or a time; default the last frame.")] = None,
    fps: Annotated[float | None, typer.Option(help="Frame rate of frame folders (a video's own by default).")] = None,
    out: Annotated[Path | None, typer.Option(help="CSV to write: input, prediction, p_<class> per class.")] = None,
    cache: Annotated[Path | None, typer.Option(help="Keep preprocessing results in this cache folder (default: none).")] = None,
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
            rows.append({"input": str(item), "prediction": label,
                         **dict(zip(probability_columns(bundle.classes), map(float, p)))})
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


def resolve_labels(method: str, dataset: str, labels: str | None) -> tuple[str | None, str]:
    """The label scheme to use and where it comes from: ``--labels``, else the scheme the method's
    paper used on this dataset, else the dataset's default (None)."""
    from merkit.methods import method_class

    if labels:
        return labels, "--labels"
    paper = method_class(method).paper_labels.get(dataset)
    return (paper, f"{method}'s paper") if paper else (None, "the dataset's default")


def load_dataset(dataset: str, root: Path, labels: str | None, option: list[str] | None, apex: str = "annotated"):
    """The dataset as the command line describes it, missing apexes filled as ``--apex`` says."""
    from merkit.datasets import load
    from merkit.preprocess.apex import fill_apex

    return fill_apex(load(dataset, root=root, labels=labels, **parse_settings(option, "--option")), apex)


def au_table(rows: list[tuple[str, dict]], title: str) -> Table:
    """Action units: F1 per AU (pooled over folds) and their mean, one row per method."""
    classes = rows[0][1].metrics["classes"]
    table = Table(title=title)
    for column in ("method", "mean F1", *classes):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, result in rows:
        overall = result.metrics["overall"]
        table.add_row(name, f"{overall['mean_f1']:.3f}", *["-" if overall["per_au_f1"][c] is None else f"{overall['per_au_f1'][c]:.2f}"
                                                           for c in classes])
    return table


def per_dataset_table(metrics: dict) -> Table:
    table = Table(title="per dataset (pooled over the folds)")
    for column in ("dataset", "clips", "accuracy", "UF1", "UAR"):
        table.add_column(column, justify="left" if column == "dataset" else "right")
    for name, s in [("composite", metrics["overall"]), *metrics["per_dataset"].items()]:
        table.add_row(name, str(s["n"]), f"{s['accuracy']:.3f}", f"{s['uf1']:.3f}", f"{s['uar']:.3f}")
    return table


@app.command()
@friendly
def prepare(
    dataset: DatasetOption,
    root: RootOption,
    method: Annotated[str, typer.Option(help="Prepare what this method reads (merkit list methods).")],
    labels: LabelsOption = None,
    option: ReaderOptions = None,
    apex: ApexOption = "annotated",
    set_: SetOption = None,
    jobs: Annotated[int, typer.Option(help="Processes.")] = 1,
    cache: CacheOption = None,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
):
    """Compute and cache a method's representation of every clip; resumable, parallel."""
    from merkit.evaluation.runner import prepare as run_prepare
    from merkit.methods import create_method
    from merkit.preprocess.cache import Cache

    params = create_method(method, **parse_settings(set_)).params()
    where = executor_for(executor, jobs, address)
    data = load_dataset(dataset, root, resolve_labels(method, dataset, labels)[0], option, apex)
    summary = run_prepare(method, params, data, Cache(cache), executor=where)
    console.print(f"{method} on {len(data)} clips of {dataset}: {summary} (cache {Cache(cache).root}).", soft_wrap=True)
    for key, message in summary.failed.items():
        console.print(f"[red]failed:[/] {key}: {message}", highlight=False, soft_wrap=True)
    if summary.failed:
        raise typer.Exit(1)


@app.command()
@friendly
def magnify(
    input: Annotated[Path, typer.Argument(help="A video file or a folder of frames.")],
    output: Annotated[Path, typer.Argument(help="The side-by-side video to write (.mp4 or lossless .mkv).")],
    alpha: Annotated[float, typer.Option(help="Amplification.")] = 10.0,
    lambda_c: Annotated[float, typer.Option(help="Spatial wavelength bound (pixels).")] = 16.0,
    r1: Annotated[float, typer.Option(help="Fast IIR coefficient.")] = 0.4,
    r2: Annotated[float, typer.Option(help="Slow IIR coefficient.")] = 0.05,
    fps: Annotated[float | None, typer.Option(help="Frame rate of a frame folder (a video's own by default).")] = None,
):
    """Magnify a clip's motion (Eulerian, IIR) and write it beside the original."""
    import numpy as np

    from merkit.errors import DatasetError
    from merkit.io.frames import list_frames, read_frames
    from merkit.io.video import VIDEO_CODECS, read_video, video_fps, write_video
    from merkit.preprocess.magnify import magnify_eulerian

    check_writable_file(output, tuple(VIDEO_CODECS))
    if fps is not None:
        check_positive("--fps", fps)
    if input.is_dir():
        paths = list_frames(input)
        if not paths:
            raise DatasetError(f"Folder {input} holds no frames.")
        if fps is None:
            raise ConfigError(f"{input} is a folder of frames, which has no frame rate; pass --fps (CASME II: 200).")
        frames, rate = read_frames(paths), fps
    elif input.is_file():
        frames, rate = read_video(input), fps or video_fps(input)
        if not rate > 0:
            raise DatasetError(f"Video {input} does not say its frame rate; pass --fps.")
    else:
        raise DatasetError(f"{input} is neither a video file nor a folder of frames.")
    with progress_bar("magnifying", 1) as advance:
        magnified = magnify_eulerian(frames, alpha=alpha, lambda_c=lambda_c, r1=r1, r2=r2)
        advance()
    side_by_side = np.concatenate([frames, np.rint(magnified * 255).astype(np.uint8)], axis=2)
    write_video(output, side_by_side, rate)
    console.print(f"Wrote {output}: {len(frames)} frames at {rate:g} fps, original left, magnified (alpha {alpha:g}) right.")


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
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a method setting in every experiment (e.g. a CPU size).")] = None,
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
    report, outcomes = run(paper, roots, out=out, params=params, seeds=seed_list, cache=cache,
                           executor=executor_for(executor, jobs, address, params))
    if not outcomes:
        raise ConfigError(f"None of the datasets {paper} needs was given; pass at least one of the paths above.")
    console.print(Markdown(report.read_text()))
    console.print(f"Report: {report}")


@app.command()
@friendly
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run directories (the --out of merkit evaluate) on the same clips.")],
    out: Annotated[Path | None, typer.Option(help="Folder for compare.md, compare.png and reliability.png.")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples of the subjects.")] = 2000,
    n_perm: Annotated[int, typer.Option(help="Permutations for the paired tests.")] = 5000,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    ensemble: Annotated[bool, typer.Option("--ensemble", help="Also score the mean of the runs' probabilities (equal weights), as one more run (written as a run directory to OUT/ensemble).")] = False,
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
        console.print(f"{t.run_a} - {t.run_b} ({t.dataset}): {LABELS[t.metric]} {t.difference:+.3f}, permutation p = {t.p_value:.4f}")
    if out is not None:
        drawn = " and reliability.png" if (out / "reliability.png").is_file() else ""
        console.print(f"Wrote {out / 'compare.md'}, compare.png{drawn}")


datasets_app = typer.Typer(no_args_is_help=True, help="Inspect datasets.")
app.add_typer(datasets_app, name="datasets")


@datasets_app.command("check")
@friendly
def datasets_check(
    dataset: DatasetOption,
    root: RootOption,
    labels: LabelsOption = None,
    option: ReaderOptions = None,
):
    """Count clips per class and subject and list every problem; exit 1 if any clip is unusable.

    The annotation rows listed are those a load skips (or refuses with --option strict=true)."""
    from merkit.datasets.registry import read
    from merkit.errors import DatasetError

    options = parse_settings(option, "--option")
    options.pop("strict", None)  # the check lists every problem either way
    data = read(dataset, root=root, labels=labels, **options)
    problems = [str(p) for p in data.problems]
    with progress_bar("reading every frame", len(data)) as advance:
        for clip in data:
            try:
                clip.read_flow() if clip.kind == "flow_image" else clip.read(grey=True)
            except DatasetError as error:
                problems.append(f"{clip.subject}/{clip.clip}: {error}")
            advance()
    counts = data.metadata.pivot_table(index="subject", columns="label", values="clip", aggfunc="count", fill_value=0)
    table = Table(title=f"{dataset} at {root}: {len(data)} usable clips, labels {data.labels}")
    table.add_column("subject")
    for label in data.classes:
        table.add_column(label, justify="right")
    table.add_column("all", justify="right")
    for subject, row in counts.iterrows():
        table.add_row(str(subject), *[str(int(row.get(c, 0))) for c in data.classes], str(int(row.sum())))
    table.add_row("all", *[str(int(counts[c].sum())) if c in counts else "0" for c in data.classes], str(len(data)), style="bold")
    console.print(table)
    if len(data.dropped):
        console.print(f"The scheme {data.labels} drops {len(data.dropped)} clips: "
                      + ", ".join(f"{w} ({n})" for w, n in data.dropped["emotion"].value_counts().items()))
    for orphan in data.orphans:
        console.print(f"[yellow]note:[/] folder without an annotation row: {orphan}", highlight=False)
    for problem in problems:
        console.print(f"[red]problem:[/] {problem}", highlight=False, soft_wrap=True)
    if data.problems and len(data) == 0:
        console.print("A load refuses this dataset: no annotation row can become a clip.")
    elif data.problems:
        rows = data.skipped.drop_duplicates(["dataset", "file", "row"])
        where = "; ".join(f"{(d + ': ') if d else ''}{f}" + (f" rows {', '.join(map(str, g['row']))}" if g["row"].all() else "")
                          for (d, f), g in rows.groupby(["dataset", "file"], sort=False))
        console.print(f"A load skips {len(rows)} annotation rows ({where}) and keeps {len(data)} clips; "
                      "with --option strict=true it refuses the dataset.", highlight=False, soft_wrap=True)
    if problems:
        console.print(f"{len(problems)} problems: the clips above cannot be used until they are fixed.")
        raise typer.Exit(1)
    console.print("No problem found.")


@app.command()
@friendly
def analyze(
    video: Annotated[Path, typer.Argument(help="A video file (anything PyAV reads) or a folder of frames (with --fps).")],
    out: Annotated[Path, typer.Option(help="Folder for frames.csv, intervals.csv/.json, annotated.mp4 and report.html.")],
    model: Annotated[Path | None, typer.Option(help="A model bundle (merkit train) to recognise each spotted interval.")] = None,
    spotter: Annotated[str, typer.Option(help="Spotter (merkit list spotters).")] = "roi_flow",
    fps: Annotated[float | None, typer.Option(help="Frame rate of a frame folder (a video's own by default).")] = None,
    setting: Annotated[list[str] | None, typer.Option("--set", help="Spotter parameter, e.g. --set z=5.")] = None,
    device: DeviceOption = None,
    spotter_model: Annotated[Path | None, typer.Option(help="A spotting bundle (a trained learned spotter, e.g. softnet) instead of --spotter.")] = None,
):
    """Spot the micro- and macro-expressions of a long recording, recognise them, and report.

    Interrupted, it resumes where it stopped when run again with the same --out.
    """
    from merkit.inference import load_model
    from merkit.inference.analyze import analyze as run_analysis
    from merkit.spotting import create_spotter

    if fps is not None:
        check_positive("--fps", fps)
    if spotter_model is not None:
        from merkit.inference.bundle import load_spotter

        if setting:
            raise ConfigError("--set changes a spotter's parameters; a --spotter-model keeps those it was trained with.")
        spotter_object = load_spotter(spotter_model)
    else:
        spotter_object = create_spotter(spotter, **parse_settings(setting))
    bundle = load_model(model, task="classification", device=device) if model is not None else None
    summary = run_analysis(video, out, model=bundle, spotter=spotter_object, fps=fps)
    rows = summary["intervals"]
    table = Table(title=f"{video}: {summary['frames']} frames, a face in {summary['face_frames']}")
    for column in ("kind", "onset_s", "apex_s", "offset_s", "score", *(["prediction"] if bundle else [])):
        table.add_column(column)
    for row in rows:
        table.add_row(row["kind"], f"{row['onset_s']:.2f}", f"{row['apex_s']:.2f}", f"{row['offset_s']:.2f}",
                      f"{row['score']:.2f}", *([row["prediction"]] if bundle else []))
    console.print(table)
    if summary["note"]:
        console.print(f"[yellow]note:[/] {summary['note']}", highlight=False, soft_wrap=True)
    console.print(f"Wrote {out / 'report.html'}, {out / 'intervals.csv'}, {out / 'frames.csv'} and {out / 'annotated.mp4'}")


@app.command("spot-evaluate")
@friendly
def spot_evaluate(
    dataset: Annotated[list[str], typer.Option(help="Long-video dataset (casme2_long, samm_lv, casme3_long); repeat for several.")],
    root: Annotated[list[Path], typer.Option(help="Its folder as distributed; one per --dataset, in the same order.")],
    out: Annotated[Path, typer.Option(help="Folder for report.md, scores.json, timelines/ and the tracking cache.")],
    spotter: Annotated[str, typer.Option(help="Spotter (merkit list spotters).")] = "roi_flow",
    model: Annotated[Path | None, typer.Option(help="A model bundle: also score STRS (spot then recognise).")] = None,
    setting: Annotated[list[str] | None, typer.Option("--set", help="Spotter parameter, e.g. --set z=5.")] = None,
    device: DeviceOption = None,
    jobs: Annotated[int, typer.Option(help="A learned spotter's folds run in this many processes.")] = 1,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
):
    """Score a spotter on long videos with the MEGC protocol (IoU >= 0.5): micro, macro, overall, per dataset.
    A learned spotter (softnet) is trained leave-one-subject-out; an interrupted run in --out resumes."""
    from merkit.datasets.long_videos import load_long_videos
    from merkit.evaluation.spot_evaluate import evaluate_spotting
    from merkit.inference import load_model
    from merkit.spotting import create_spotter

    if len(dataset) != len(root):
        raise ConfigError(f"Give one --root per --dataset ({len(dataset)} datasets, {len(root)} roots).")
    spotter_object = create_spotter(spotter, **parse_settings(setting))
    videos = [v for name, folder in zip(dataset, root) for v in load_long_videos(name, folder)]
    bundle = load_model(model, task="classification", device=device) if model is not None else None
    runner_ = executor_for(executor, jobs, address) if spotter_object.learns else None
    scores = evaluate_spotting(videos, spotter_object, out, model=bundle, executor=runner_)
    table = Table(title=f"{spotter}: {len(videos)} videos, MEGC protocol (IoU >= 0.5)")
    for column in ("data", "kind", "TP", "spotted", "annotated", "precision", "recall", "F1"):
        table.add_column(column)
    for name, part in [("all", scores["overall"]), *scores["per_dataset"].items()]:
        for kind in ("micro", "macro", "overall"):
            s = part[kind]
            table.add_row(name, kind, str(s["tp"]), str(s["spotted"]), str(s["annotated"]), f"{s['precision']:.3f}",
                          f"{s['recall']:.3f}", f"{s['f1']:.3f}")
    console.print(table)
    if "strs" in scores:
        console.print(f"STRS {scores['strs']['strs']:.3f} (spotting F1 x recognition UF1 {scores['strs']['recognition_uf1']:.3f})")
    console.print(f"Wrote {out / 'report.md'}")


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
    from merkit.preprocess.apex import fill_apex
    from merkit.synthetic import SynthConfig, is_written, write_casme2

    check_positive("--jobs", jobs)
    started = time.perf_counter()
    data_root = out / "data" / "CASME2"
    config = SynthConfig(seed=seed)
    if is_written(data_root, config):
        console.print(f"Reusing the synthetic CASME II in {data_root}")
    else:
        with progress_bar("synthesising subjects", config.n_subjects) as advance:
            write_casme2(data_root, config, jobs=jobs, progress=advance)
    data = fill_apex(load("casme2", root=data_root, labels="seed4"), "motion")
    rows = []
    for cls in list_methods():
        if cls.quick:
            result = run(data, cls.name, out=out / "runs" / cls.name, seed=seed, jobs=jobs, cache=out / "cache",
                         source={"root": str(data_root.resolve())}, overwrite=True)
            rows.append((cls.name, result))
    console.print(results_table(rows, f"LOSO on synthetic CASME II: {len(data)} clips, {len(set(data.groups))} subjects, seed4 labels"))
    console.print(f"Reports: {out / 'runs'}/<method>/report.md")
    bundle, video, row = demo_apply(data, out, seed)
    console.print(f"Trained apex_flow_svm on every subject but {row['subject']} into the bundle {bundle}, and predicted "
                  f"its clip {row['clip']} from the video {video}: [bold]{row['prediction']}[/] (true class "
                  f"{row['label']}; p = {row['p']:.2f}).", soft_wrap=True)
    report, found, expressions, spotted = demo_analyze(bundle, out)
    console.print(f"Analysed a 20 s synthetic recording (blinks and a head turn among its {expressions} expressions) with "
                  f"that bundle: {spotted} intervals spotted, {found} of them matching an expression (IoU >= 0.5); open {report}.", soft_wrap=True)
    console.print(f"Done in {time.perf_counter() - started:.0f} s. Try: merkit predict --model {bundle} {video}", soft_wrap=True)


def demo_analyze(bundle: Path, out: Path) -> tuple[Path, int, int, int]:
    """Write a 20 s, 640x480 synthetic recording and analyse it with ``bundle``."""
    from merkit.datasets.intervals import Interval
    from merkit.evaluation.spotting import matched_pairs
    from merkit.inference import load_model
    from merkit.inference.analyze import analyze as run_analysis
    from merkit.io.video import video_writer
    from merkit.synthetic.long_videos import plan_long_video, render_long_video

    plan = plan_long_video(20, 30.0, micro=3, macro=2, distractors={"blink": 2, "head_turn": 1}, seed=1)
    video = out / "analyze" / "recording.mp4"
    if not video.exists():
        with video_writer(video, plan.fps, crf=18) as write:
            for frame in render_long_video(plan):
                write(frame)
    summary = run_analysis(video, out / "analyze" / "result", model=load_model(bundle))
    spotted = [Interval(r["onset_frame"], r["offset_frame"], r["kind"], r["score"]) for r in summary["intervals"]]
    truth = [Interval(e.onset, e.offset, e.kind) for e in plan.expressions]
    return out / "analyze" / "result" / "report.html", len(matched_pairs(spotted, truth)), len(truth), len(spotted)


def demo_apply(data, out: Path, seed: int) -> tuple[Path, Path, dict]:
    """Train a bundle without the last subject, write one of its clips as an mp4, predict it."""
    import numpy as np

    from merkit.inference import load_model
    from merkit.inference import train as fit_bundle
    from merkit.io.video import write_video

    held_out = data.groups == data.groups[-1]
    training = data.subset(np.flatnonzero(~held_out))
    bundle = fit_bundle(training, "apex_flow_svm", out=out / "model", seed=seed, cache=out / "cache", apex="motion",
                        overwrite=True)
    clip = data[int(np.flatnonzero(held_out)[0])]
    video = out / "predict" / f"{clip.subject}_{clip.clip}.mp4"
    write_video(video, clip.read()[clip.onset : clip.offset + 1], clip.fps, crf=10)  # x264's default 23 blurs sub-pixel motion
    model = load_model(bundle)
    [label], [p] = model.classify(video, apex=clip.apex - clip.onset)
    return bundle, video, {"subject": clip.subject, "clip": clip.clip, "label": clip.label, "prediction": label,
                           "p": float(p[model.classes.index(label)])}


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
        raise MerkitError(f"{run / 'config.json'} does not say where the dataset was; run merkit evaluate from the command line.")
    data = load_dataset(source["name"], Path(source["root"]), source["labels"], source.get("options"), source.get("apex", "annotated"))
    explanation = explain_clip(run, clip, dataset=data, cache=cache)
    console.print(f"{explanation.clip} (fold {explanation.fold}): {explanation.label}, predicted {explanation.prediction}")
    for path in write_figures(explanation, run / "explain"):
        console.print(f"Wrote {path}", soft_wrap=True)


@app.command("list")
@friendly
def list_(what: Annotated[str, typer.Argument(help="methods, spotters, datasets, labels, protocols or all.")] = "all"):
    """List registered methods, spotters, datasets, label schemes and protocols."""
    from merkit.datasets import SCHEMES, list_datasets
    from merkit.datasets.long_videos import LONG_DATASETS
    from merkit.errors import check_choice
    from merkit.evaluation import PROTOCOLS
    from merkit.methods import list_methods
    from merkit.spotting import list_spotters

    check_choice("list", what, ["all", "methods", "spotters", "datasets", "labels", "protocols"])
    sections = {
        "methods": [(m.name, m.summary) for m in list_methods()],
        "spotters": [(sp.name, sp.summary) for sp in list_spotters()],
        "datasets": [(d.name, d.summary) for d in list_datasets()] + [(name, summary + " (long videos: spot-evaluate)")
                                                                       for name, (_, summary) in LONG_DATASETS.items()],
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
