"""``merkit spot-evaluate``: a spotter on long-video datasets under the MEGC protocol.

Each video is tracked once into ``OUT/cache/`` (resumable, :func:`merkit.preprocess.track_cache.track_video`),
spotted, and matched against its annotation (:mod:`merkit.evaluation.spotting`). The report gives
precision, recall and F1 for micro, macro and overall, pooled over all videos and per dataset,
and a timeline plot per video. Spotted intervals of a kind a release does not annotate (CAS(ME)³
without its macro workbook) are left out of the counts, and the report says so.

Hand-crafted spotters are not trained, so nothing is tuned on a test subject: their parameters
are fixed in advance (see each spotter's docstring). A learned spotter (``softnet``) is trained
leave-one-subject-out (:func:`loso_spottings`): each fold fits a fresh spotter on the other
subjects' videos only and spots the held-out subject's; the folds run through an executor, and
each fold's result is written to ``OUT/folds/`` as it arrives, so an interrupted run resumes
(a fold file is reused only when the spotter, its settings and the fold's videos are the same).

With a recognition bundle, STRS (spot then recognise, as MEGC 2023 defines it) is the overall
spotting F1 times the recognition UF1 over the true positives: each matched interval's faces
(as spotted) are classified by the bundle and compared with the annotated emotion under the
bundle's label scheme; intervals whose emotion the scheme drops, or that carry none (SAMM-LV), are
not scored for recognition, and the report gives their number.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from merkit.datasets.intervals import Interval
from merkit.datasets.long_videos import LongVideo
from merkit.errors import ConfigError
from merkit.evaluation import metrics
from merkit.evaluation.spotting import matched_pairs, spotting_scores
from merkit.io.atomic import atomic_write_text
from merkit.io.paths import safe_name as _safe
from merkit.preprocess.track_cache import FrameSource, TrackCache, interval_faces, track_video
from merkit.spotting import KIND_HEX, Spotter, Spotting, TrainingVideo, create_spotter, spot_cached, training_video


def evaluate_spotting(
    videos: list[LongVideo],
    spotter: Spotter,
    out: str | Path,
    *,
    model=None,
    executor=None,
    skipped: Sequence[str] = (),
) -> dict:
    """Spot every video, score it, write ``OUT/report.md``, ``OUT/scores.json`` and
    ``OUT/timelines/*.png``; returns the scores (``overall`` and ``per_dataset``). A learned
    spotter is trained leave-one-subject-out through ``executor`` (local by default). ``skipped``:
    the readers' notes on the annotation rows they left out, listed in the report and the scores."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder for the spotting results.")
    results, per_video, recognition = [], [], {"true": [], "predicted": [], "unscored": 0}
    sources = {v.key: FrameSource(v.frame_paths[0].parent, v.fps, v.n_frames) for v in videos}
    learned = {}
    if spotter.learns:
        from merkit.executors import LocalExecutor

        executor = executor or LocalExecutor()
        calls = {v.key: (track_video, sources[v.key], TrackCache(out / "cache" / _safe(v.key))) for v in videos}
        for _ in executor.map(calls, "tracking the videos"):  # through the executor too: each video in one worker
            pass
        learned = loso_spottings(videos, spotter, out, executor)
    for video in videos:
        source = sources[video.key]
        cache = TrackCache(out / "cache" / _safe(video.key))
        track_video(source, cache)
        spotting = learned[video.key] if spotter.learns else spot_cached(cache, spotter, video.fps)[0]
        spotted = [i for i in spotting.intervals if i.kind in video.kinds]
        pairs = matched_pairs(spotted, video.intervals)
        results.append((video, spotted))
        per_video.append({**_video_row(video, spotted, pairs), "note": spotting.note})
        plot_timeline(out / "timelines" / f"{_safe(video.key)}.png", video, spotting, spotted, pairs)
        if model is not None:
            _recognise_matches(model, video, source, cache, pairs, recognition)
    scores = {"overall": spotting_scores([(v.intervals, s) for v, s in results])}
    scores["per_dataset"] = {
        name: spotting_scores([(v.intervals, s) for v, s in results if v.dataset == name])
        for name in sorted({v.dataset for v, _ in results})
    }
    if model is not None:
        scores["strs"] = _strs(scores["overall"]["overall"]["f1"], recognition, tuple(model.classes))
    scores["videos"] = per_video
    scores["skipped"] = list(skipped)
    atomic_write_text(out / "scores.json", json.dumps(scores, indent=1))
    atomic_write_text(out / "report.md", _report(scores, spotter, videos))
    return scores


def _fit_and_spot(name: str, params: dict, train: list[TrainingVideo], test: list[TrainingVideo]) -> dict:
    """A fold: a fresh spotter ``name`` fitted on ``train``, then each video of ``test`` spotted:
    {video key: the spotting as JSON-able dict}."""
    spotter = create_spotter(name, **params).fit(train)
    found = {}
    for video in test:
        spotting = spotter.spotting(np.asarray(video.signals(spotter)), video.fps)
        found[video.key] = {
            "scores": {k: v.tolist() for k, v in spotting.scores.items()},
            "thresholds": spotting.thresholds,
            "note": spotting.note,
            "intervals": [dataclasses.asdict(i) for i in spotting.intervals],
        }
    return found


def _spotting(data: dict) -> Spotting:
    return Spotting(
        {k: np.asarray(v) for k, v in data["scores"].items()},
        data["thresholds"],
        [Interval(**i) for i in data["intervals"]],
        data["note"],
    )


def loso_spottings(videos: list[LongVideo], spotter: Spotter, out: Path, executor=None) -> dict[str, Spotting]:
    """{video key: its spotting} by a learned spotter trained leave-one-subject-out: each fold
    fits ``type(spotter)`` with the same settings on the other subjects' videos and spots the held-out
    subject's. Fold results are written to ``out/folds/`` as they arrive and reused on a rerun."""
    from merkit import __version__
    from merkit.executors import LocalExecutor

    items = {v.key: training_video(v, out / "cache" / _safe(v.key)) for v in videos}
    subjects = sorted({item.subject for item in items.values()})
    if len(subjects) < 2:
        raise ConfigError(
            f"{spotter.name} learns from annotated videos and is tested on subjects it has not seen: "
            f"give videos of at least two subjects (got {len(subjects)})."
        )
    params = dataclasses.asdict(spotter)
    found, calls, stamps = {}, {}, {}
    for subject in subjects:
        test = [item for item in items.values() if item.subject == subject]
        train = [item for item in items.values() if item.subject != subject]
        stamps[subject] = {
            "spotter": spotter.name,
            "params": params,
            "merkit": __version__,
            "train": [v.key for v in train],
            "test": [v.key for v in test],
        }
        path = out / "folds" / f"{_safe(subject)}.json"
        saved = _read_fold(path)
        if saved is not None and saved.get("stamp") == stamps[subject]:
            found.update(saved["videos"])
        else:
            calls[subject] = (_fit_and_spot, spotter.name, params, train, test)
    executor = executor or LocalExecutor()
    _cache_fold_signals(spotter, [(call[3], call[4]) for call in calls.values()], executor)
    for subject, videos_found in executor.map(calls, f"{spotter.name}: training the folds"):
        atomic_write_text(
            out / "folds" / f"{_safe(subject)}.json", json.dumps({"stamp": stamps[subject], "videos": videos_found})
        )
        found.update(videos_found)
    return {key: _spotting(data) for key, data in found.items()}


def _cache_fold_signals(
    spotter: Spotter, folds: list[tuple[list[TrainingVideo], list[TrainingVideo]]], executor
) -> None:
    """Every signal block the (train, test) ``folds`` will read, computed into the tracking caches
    before any fold trains, one task per video: folds whose settings agree share a block, and
    folds running side by side would otherwise compute it twice."""
    settings = [spotter.signal_settings(train) for train, _ in folds]
    needed: dict[str, tuple] = {}
    for fold, (train, test) in zip(settings, folds):
        for video in [*train, *test]:
            needed.setdefault(video.key, (video.signals, []))[1].append(fold)
    calls = {key: (_signal_blocks, signals, folds) for key, (signals, folds) in needed.items()}
    for _ in executor.map(calls, f"{spotter.name}: the folds' signals"):
        pass


def _signal_blocks(signals, spotters: list[Spotter]) -> None:
    """Compute (and so cache) ``signals`` for each of ``spotters``' settings."""
    for spotter in spotters:
        signals(spotter)


def _read_fold(path: Path) -> dict | None:
    """A fold file's content, or None when there is none or it is damaged (then the fold runs again)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("videos"), dict) else None


def _video_row(video: LongVideo, spotted: list[Interval], pairs: list[tuple[Interval, Interval]]) -> dict:
    """The video's counts per kind, and each spotted interval with whether it matched (``pairs``:
    the (spotted, annotated) true positives)."""
    counts = spotting_scores([(video.intervals, spotted)])
    matched = {id(found) for found, _ in pairs}
    return {
        "video": video.key,
        "frames": video.n_frames,
        **{kind: {k: counts[kind][k] for k in ("tp", "spotted", "annotated")} for kind in ("micro", "macro")},
        "spotted": [
            {
                "onset": i.onset,
                "apex": i.apex,
                "offset": i.offset,
                "kind": i.kind,
                "score": i.score,
                "matched": id(i) in matched,
            }
            for i in spotted
        ],
    }


def _recognise_matches(
    model, video: LongVideo, source: FrameSource, cache: TrackCache, pairs: list[tuple[Interval, Interval]], into: dict
) -> None:
    from merkit.datasets.labels import get_scheme

    scheme = get_scheme(model.description.get("labels") or "original")
    wanted, truths = [], []
    for found, truth in pairs:
        try:
            label = scheme.map(video.dataset, truth.emotion) if truth.emotion else None
        except ConfigError:
            label = None
        if label is None or label not in model.classes:
            into["unscored"] += 1
            continue
        wanted.append(found)
        truths.append(label)
    for i, faces, apex, rate in interval_faces(source, cache, wanted):
        [predicted] = model.predict(faces, onset=0, apex=apex, offset=len(faces) - 1, fps=rate)
        into["true"].append(truths[i])
        into["predicted"].append(str(predicted))


def _strs(spotting_f1: float, recognition: dict, classes: tuple[str, ...]) -> dict:
    true = recognition["true"]
    uf1 = (
        metrics.scores(true, recognition["predicted"], classes)["uf1"] if true else 0.0
    )  # MEGC's UF1, as every run reports it
    return {
        "spotting_f1": spotting_f1,
        "recognition_uf1": uf1,
        "strs": spotting_f1 * uf1,
        "recognised": len(true),
        "unscored": recognition["unscored"],
        "true": list(true),
        "predicted": list(recognition["predicted"]),
    }  # per recognised true positive


def plot_timeline(
    path: Path, video: LongVideo, spotting: Spotting, spotted: list[Interval], pairs: list[tuple[Interval, Interval]]
) -> None:
    """Score over threshold against time, the threshold, the annotated intervals (below) and the
    spotted ones (above; green when they match an annotated interval, red when not)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from merkit.evaluation.reports import save_figure

    t = np.arange(video.n_frames) / video.fps
    matched = {id(found) for found, _ in pairs}
    fig, ax = plt.subplots(figsize=(12, 3))
    relative = spotting.relative
    ax.plot(t[: len(relative)], relative, lw=0.8, color="#1f6fd0", label="score / threshold")
    ax.axhline(1.0, color="#d62728", ls="--", lw=1, label="threshold")
    top = max(2.0, float(np.max(relative, initial=0)) * 1.05)
    for interval in video.intervals:
        ax.axvspan(
            interval.onset / video.fps,
            (interval.offset + 1) / video.fps,
            ymin=0,
            ymax=0.12,
            color=KIND_HEX[interval.kind],
        )
    for interval in spotted:
        ax.axvspan(
            interval.onset / video.fps,
            (interval.offset + 1) / video.fps,
            ymin=0.88,
            ymax=1,
            color="#2ca02c" if id(interval) in matched else "#d62728",
            alpha=0.8,
        )
    ax.set_ylim(0, top)
    ax.set_xlim(0, t[-1] if len(t) else 1)
    ax.set_xlabel("seconds")
    ax.set_title(
        f"{video.key}: annotated below (orange micro, purple macro), spotted above (green matched, red not)", fontsize=9
    )
    ax.legend(loc="upper left", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)


def _report(scores: dict, spotter: Spotter, videos: list[LongVideo]) -> str:
    lines = [
        f"# Spotting: {spotter.name}",
        "",
        f"{len(videos)} videos; MEGC protocol (IoU >= 0.5, each annotated interval "
        "matched once), counts pooled over videos.",
        "",
    ]
    lines += [
        "| data | kind | TP | spotted | annotated | precision | recall | F1 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, part in [("all", scores["overall"]), *scores["per_dataset"].items()]:
        for kind in ("micro", "macro", "overall"):
            s = part[kind]
            lines.append(
                f"| {name} | {kind} | {s['tp']} | {s['spotted']} | {s['annotated']} | {s['precision']:.3f} | "
                f"{s['recall']:.3f} | {s['f1']:.3f} |"
            )
    unannotated = sorted({v.dataset for v in videos if "macro" not in v.kinds})
    if unannotated:
        lines += [
            "",
            f"Macro intervals are not annotated in {', '.join(unannotated)} (no macro workbook): spotted macro "
            "intervals there are left out of the counts.",
        ]
    if "strs" in scores:
        s = scores["strs"]
        lines += [
            "",
            f"STRS = spotting F1 {s['spotting_f1']:.3f} x recognition UF1 {s['recognition_uf1']:.3f} = **{s['strs']:.3f}** "
            f"({s['recognised']} true positives recognised; {s['unscored']} without a class under the bundle's scheme).",
        ]
    if scores["skipped"]:
        lines += [
            "",
            "The readers skipped annotation rows that cannot become intervals (errata of the release; "
            "`--option strict=true` refuses such a workbook instead):",
            "",
            *(f"    {note}" for note in scores["skipped"]),
        ]
    notes = [f"- {v['video']}: {v['note']}" for v in scores["videos"] if v["note"]]
    lines += ["", "Videos where nothing could be spotted:", *notes] if notes else []
    lines += [
        "",
        "Published figures on real long videos are far lower than synthetic ones: overall F1 about 0.1-0.2 on "
        "CAS(ME)² and SAMM-LV (MEGC 2020-2022 baselines and entries).",
        "",
        "## Timelines",
        "",
    ]
    lines += [f"- {v.key}: ![{v.key}](timelines/{_safe(v.key)}.png)" for v in videos]
    return "\n".join(lines) + "\n"
