"""The live command: a camera, a stream or a file analysed as it happens, with a dashboard."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from merkit.cli.common import DeviceOption, app, check_positive, console, friendly, spotter_from


@app.command()
@friendly
def live(
    source: Annotated[
        str,
        typer.Argument(
            help="A camera (0, /dev/video0), a stream (rtsp://, udp://, tcp://, http://...) or a video file."
        ),
    ],
    out: Annotated[
        Path, typer.Option(help="Folder for frames.csv, intervals.csv/.json, report.html (and annotated.mp4).")
    ],
    model: Annotated[
        Path | None, typer.Option(help="A model bundle (merkit train) to recognise each interval as it is spotted.")
    ] = None,
    spotter: Annotated[str, typer.Option(help="Spotter that can run live (roi_flow).")] = "roi_flow",
    setting: Annotated[list[str] | None, typer.Option("--set", help="Spotter parameter, e.g. --set z=5.")] = None,
    spotter_model: Annotated[Path | None, typer.Option(help="A spotting bundle instead of --spotter.")] = None,
    realtime: Annotated[
        bool,
        typer.Option(
            help="Play a file at its own frame rate, as a camera would send it (frames are dropped when behind)."
        ),
    ] = False,
    serve: Annotated[
        bool, typer.Option(help="Show the session on a local web page (a free port on 127.0.0.1, printed).")
    ] = True,
    host: Annotated[
        str, typer.Option(help="Address the page listens on; anything but 127.0.0.1 shows the camera to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the page (0: a free one).")] = 0,
    annotate: Annotated[
        bool, typer.Option(help="Also write annotated.mp4 (the frames with the face and the intervals).")
    ] = False,
    queue_seconds: Annotated[
        float, typer.Option(help="Seconds of frames the reader may hold before it drops frames.")
    ] = 2.0,
    stall: Annotated[float, typer.Option(help="Seconds without a frame reported as a stall.")] = 5.0,
    reconnects: Annotated[int, typer.Option(help="Times a broken stream is reopened.")] = 3,
    device: DeviceOption = None,
):
    """Spot (and with --model recognise) micro- and macro-expressions as they happen; Ctrl-C ends
    the session and keeps its outputs."""
    from merkit.inference import load_model
    from merkit.inference.dashboard import Dashboard
    from merkit.inference.live import live as run_live
    from merkit.inference.live import live_source

    for flag, value in (("--queue-seconds", queue_seconds), ("--stall", stall)):
        check_positive(flag, value)
    where = live_source(source)
    spotter_object = spotter_from(spotter, setting, spotter_model)
    bundle = load_model(model, task="classification", device=device) if model is not None else None
    dashboard = None
    if serve:
        dashboard = Dashboard(host, port, title=f"merkit live: {where.name}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            url = dashboard.start()
        for warning in caught:
            console.print(f"[bold yellow]warning:[/] {warning.message}", highlight=False, soft_wrap=True)
        console.print(f"Dashboard: {url}", highlight=False, soft_wrap=True)
    try:
        summary = run_live(
            where.url,
            out,
            model=bundle,
            spotter=spotter_object,
            realtime=realtime,
            annotate_video=annotate,
            dashboard=dashboard,
            queue_seconds=queue_seconds,
            stall=stall,
            reconnects=reconnects,
            log=lambda note: console.print(note, highlight=False, soft_wrap=True),
        )
    finally:
        if dashboard is not None:
            dashboard.close()
    table = Table(
        title=f"{where.name}: {summary['frames']} frames, a face in {summary['face_frames']}, "
        f"{summary['dropped']} dropped ({summary['ended']})"
    )
    for column in ("kind", "onset_s", "apex_s", "offset_s", "decided_s", "score", *(["prediction"] if bundle else [])):
        table.add_column(column)
    for row in summary["intervals"]:
        table.add_row(
            row["kind"],
            f"{row['onset_s']:.2f}",
            f"{row['apex_s']:.2f}",
            f"{row['offset_s']:.2f}",
            f"{row['decided_s']:.2f}",
            f"{row['score']:.2f}",
            *([row["prediction"]] if bundle else []),
        )
    console.print(table)
    console.print(
        f"Wrote {out / 'report.html'}, {out / 'intervals.csv'} and {out / 'frames.csv'}"
        + (f" and {out / 'annotated.mp4'}" if annotate else "")
    )
