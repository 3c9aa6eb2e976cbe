"""Commands on data: synth, prepare, magnify, datasets check, list."""

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
)
from merkit.errors import ConfigError
from merkit.progress import progress_bar


@app.command()
@friendly
def synth(
    out: Annotated[Path, typer.Option(help="Folder to write the synthetic dataset into.")],
    layout: Annotated[
        str,
        typer.Option(
            help="Dataset layout: casme2, casme, smic_hs, smic_vis, smic_nir, samm, casme3, mmew, "
            "4dme, dfme, megc2019, or long videos: casme2_long, samm_lv, casme3_long."
        ),
    ] = "casme2",
    subjects: Annotated[int, typer.Option(help="Number of subjects (per dataset for megc2019).")] = 16,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    amplitude: Annotated[tuple[float, float], typer.Option(help="Peak displacement range in pixels.")] = (0.3, 1.0),
    jobs: Annotated[int, typer.Option(help="Processes.")] = 2,
    videos: Annotated[int, typer.Option(help="Long videos per subject (long-video layouts).")] = 2,
    seconds: Annotated[float, typer.Option(help="Length of each long video in seconds (long-video layouts).")] = 30.0,
    difficulty: Annotated[
        str,
        typer.Option(
            help="Long videos: easy, or hard (subtler expressions, more talking and head "
            "motion, more noise, JPEG at 60)."
        ),
    ] = "easy",
    errata: Annotated[
        bool,
        typer.Option(
            help="Spoil a few annotation rows as real releases have them (an offset of 0 or before "
            "the onset, an apex outside onset..offset, a repeated row, a missing clip folder)."
        ),
    ] = False,
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
    if difficulty != "easy" and layout not in LONG_LAYOUTS:
        raise ConfigError(
            f"--difficulty is for the long-video layouts ({', '.join(LONG_LAYOUTS)}); for {layout} set --amplitude."
        )
    if errata and layout not in LAYOUTS:
        raise ConfigError(f"--errata is for the clip layouts ({', '.join(LAYOUTS)}); {layout} has none.")
    if layout in LONG_LAYOUTS:
        check_positive("--videos", videos)
        with progress_bar("synthesising long videos", subjects * videos) as advance:
            written = write_long_dataset(
                layout,
                out,
                subjects=subjects,
                videos=videos,
                seconds=seconds,
                seed=seed,
                difficulty=difficulty,
                progress=advance,
            )
        console.print(f"Wrote {len(written.plans)} {difficulty} long videos in the {layout} layout to {out}")
        return
    with progress_bar("synthesising subjects", subjects * (3 if layout == "megc2019" else 1)) as advance:
        if layout == "megc2019":
            written = write_megc2019(
                out, SynthConfig(n_subjects=subjects, seed=seed, amplitude=amplitude), jobs=jobs, progress=advance
            )
            n_clips = sum(len(d.clips) for d in written.values())
        else:
            _, fps, emotions, _ = LAYOUTS[layout]
            config = SynthConfig(n_subjects=subjects, seed=seed, amplitude=amplitude, fps=fps, emotions=emotions)
            written = write_dataset(layout, out, config, jobs=jobs, progress=advance, errata=errata)
            n_clips = len(written.clips)
    console.print(f"Wrote {n_clips} clips in the {layout} layout to {out}")
    for erratum in [] if layout == "megc2019" else written.errata:
        console.print(
            f"erratum {erratum.kind}: {erratum.file}"
            + (f" row {erratum.row}" if erratum.row else "")
            + f" ({erratum.subject}/{erratum.clip})",
            highlight=False,
            soft_wrap=True,
        )


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
    console.print(
        f"Wrote {output}: {len(frames)} frames at {rate:g} fps, original left, magnified (alpha {alpha:g}) right."
    )


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
    table.add_row(
        "all", *[str(int(counts[c].sum())) if c in counts else "0" for c in data.classes], str(len(data)), style="bold"
    )
    console.print(table)
    if len(data.dropped):
        console.print(
            f"The scheme {data.labels} drops {len(data.dropped)} clips: "
            + ", ".join(f"{w} ({n})" for w, n in data.dropped["emotion"].value_counts().items())
        )
    for orphan in data.orphans:
        console.print(f"[yellow]note:[/] folder without an annotation row: {orphan}", highlight=False)
    for problem in problems:
        console.print(f"[red]problem:[/] {problem}", highlight=False, soft_wrap=True)
    if data.problems and len(data) == 0:
        console.print("A load refuses this dataset: no annotation row can become a clip.")
    elif data.problems:
        rows = data.skipped.drop_duplicates(["dataset", "file", "row"])
        where = "; ".join(
            f"{(d + ': ') if d else ''}{f}" + (f" rows {', '.join(map(str, g['row']))}" if g["row"].all() else "")
            for (d, f), g in rows.groupby(["dataset", "file"], sort=False)
        )
        console.print(
            f"A load skips {len(rows)} annotation rows ({where}) and keeps {len(data)} clips; "
            "with --option strict=true it refuses the dataset.",
            highlight=False,
            soft_wrap=True,
        )
    if problems:
        console.print(f"{len(problems)} problems: the clips above cannot be used until they are fixed.")
        raise typer.Exit(1)
    console.print("No problem found.")


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
        "datasets": [(d.name, d.summary) for d in list_datasets()]
        + [(name, summary + " (long videos: spot-evaluate)") for name, (_, summary) in LONG_DATASETS.items()],
        "labels": [
            (s.name, s.description + (f": {', '.join(s.classes)}" if s.classes else "")) for s in SCHEMES.values()
        ],
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
