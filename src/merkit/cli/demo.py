"""merkit demo: the main job on built-in synthetic data, start to finish."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from merkit.cli.common import app, check_positive, console, friendly
from merkit.cli.tables import results_table
from merkit.progress import progress_bar


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
            result = run(
                data,
                cls.name,
                out=out / "runs" / cls.name,
                seed=seed,
                jobs=jobs,
                cache=out / "cache",
                source={"root": str(data_root.resolve())},
                overwrite=True,
            )
            rows.append((cls.name, result))
    console.print(
        results_table(
            rows, f"LOSO on synthetic CASME II: {len(data)} clips, {len(set(data.groups))} subjects, seed4 labels"
        )
    )
    console.print(f"Reports: {out / 'runs'}/<method>/report.md")
    bundle, video, row = demo_apply(data, out, seed)
    console.print(
        f"Trained apex_flow_svm on every subject but {row['subject']} into the bundle {bundle}, and predicted "
        f"its clip {row['clip']} from the video {video}: [bold]{row['prediction']}[/] (true class "
        f"{row['label']}; p = {row['p']:.2f}).",
        soft_wrap=True,
    )
    report, found, expressions, spotted = demo_analyze(bundle, out)
    console.print(
        f"Analysed a 20 s synthetic recording (blinks and a head turn among its {expressions} expressions) with "
        f"that bundle: {spotted} intervals spotted, {found} of them matching an expression (IoU >= 0.5); open {report}.",
        soft_wrap=True,
    )
    console.print(
        f"Done in {time.perf_counter() - started:.0f} s. Try: merkit predict --model {bundle} {video}", soft_wrap=True
    )


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
    bundle = fit_bundle(
        training, "apex_flow_svm", out=out / "model", seed=seed, cache=out / "cache", apex="motion", overwrite=True
    )
    clip = data[int(np.flatnonzero(held_out)[0])]
    video = out / "predict" / f"{clip.subject}_{clip.clip}.mp4"
    write_video(
        video, clip.read()[clip.onset : clip.offset + 1], clip.fps, crf=10
    )  # x264's default 23 blurs sub-pixel motion
    model = load_model(bundle)
    [label], [p] = model.classify(video, apex=clip.apex - clip.onset)
    return (
        bundle,
        video,
        {
            "subject": clip.subject,
            "clip": clip.clip,
            "label": clip.label,
            "prediction": label,
            "p": float(p[model.classes.index(label)]),
        },
    )
