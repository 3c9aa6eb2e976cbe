"""What an attention network looked at, for one clip of a finished run (STANet's Figs. 6-7).

The clip is explained by the model of the fold that held it out, so the pictures show what the
network attends to on a clip it never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from merkit.errors import MerkitError
from merkit.evaluation.reports import plt, save_figure  # pyplot on the Agg backend, set once there
from merkit.evaluation.runner import read_config, saved_model
from merkit.methods.registry import create_method
from merkit.preprocess.cache import Cache
from merkit.preprocess.pipeline import Representation


@dataclass
class Explanation:
    clip: str
    fold: str
    label: str
    prediction: str
    frames: np.ndarray  # (F, H, W) uint8: the frames the flows were computed on (F = T + 1 or T)
    masks: np.ndarray | None  # (T, h, w) spatial masks (mean over mask channels), or None
    weights: np.ndarray | None  # (T,) temporal weights, or None
    apex_position: float | None  # the apex on the frames' time axis, if annotated
    reference: str = "adjacent"  # flows between adjacent frames, or from the first frame (STANet's ``reference``)

    @property
    def flow_times(self) -> np.ndarray:
        """(T,) each flow's place on the frames' time axis: t + 0.5 between t and t + 1, t from frame 0."""
        n = len(self.weights if self.weights is not None else self.masks)
        return np.arange(n) + (0.5 if self.reference == "adjacent" else 0.0)


def explain(run: str | Path, clip_id: str, *, dataset, cache: str | Path | None = None) -> Explanation:
    """Explain ``clip_id`` (a clip name, or ``dataset/subject/clip``) of the run directory ``run``.

    ``dataset`` is the run's dataset, loaded as the run loaded it.
    """
    run = Path(run)
    config = read_config(run)
    method = create_method(config["method"]["name"], **config["method"]["params"])
    if not hasattr(method, "attend"):
        raise MerkitError(f"{method.name} has no attention to show; explain a run of stanet.")
    predictions = pd.read_csv(run / "predictions.csv", dtype=str)
    keys = predictions["dataset"] + "/" + predictions["subject"] + "/" + predictions["clip"]
    rows = predictions[(keys == clip_id) | (predictions["clip"] == clip_id)]
    if len(rows) != 1:
        known = ", ".join(keys.head(5))
        raise MerkitError(
            f"Run {run} has {'no' if rows.empty else len(rows)} clip(s) named {clip_id!r}; "
            f"give dataset/subject/clip (e.g. {known})."
        )
    row = rows.iloc[0]
    model = saved_model(run, row["fold"])
    if model is None:
        raise MerkitError(
            f"Run {run} kept no model for fold {row['fold']!r}; run merkit evaluate again into a new --out."
        )
    method.load(model)
    key = f"{row['dataset']}/{row['subject']}/{row['clip']}"
    if key not in dataset.keys:
        raise MerkitError(f"The dataset given has no clip {key}; load it as the run did (see {run / 'config.json'}).")
    index = list(dataset.keys).index(key)
    clip_data = dataset.subset([index])
    cache = Cache(cache)
    _, [(masks, weights)] = method.attend(clip_data, cache=cache)
    frames = Representation(*method.representation().steps[:-1]).get(clip_data[0], cache)[0]
    clip = clip_data[0]
    apex = None
    if clip.apex is not None and clip.offset > clip.onset:
        apex = (clip.apex - clip.onset) / (clip.offset - clip.onset) * (len(frames) - 1)
    return Explanation(
        key,
        row["fold"],
        row["label"],
        row["prediction"],
        frames,
        None if masks is None else masks.mean(axis=1),
        weights,
        apex,
        getattr(method, "reference", "adjacent"),
    )


def plot_spatial(explanation: Explanation, path: Path, columns: int = 5) -> None:
    """PNG grid: each flow's spatial mask (upsampled) over frame t of flow t (t -> t + 1, or 0 -> t)."""
    if explanation.masks is None:
        raise MerkitError("This model has no spatial attention branch (variant baseline); nothing to draw.")
    t = len(explanation.masks)
    rows = -(-t // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.3 * rows), squeeze=False)
    size = explanation.frames.shape[1:3]
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= t:
            continue
        mask = cv2.resize(explanation.masks[i].astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        ax.imshow(explanation.frames[i], cmap="gray")
        ax.imshow(mask, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        weight = "" if explanation.weights is None else f"  w={explanation.weights[i]:.3f}"
        ax.set_title(f"flow {i}{weight}", fontsize=8)
    fig.suptitle(
        f"{explanation.clip}: {explanation.label}, predicted {explanation.prediction} (spatial mask, 0 blue to 1 red)",
        fontsize=9,
    )
    save_figure(fig, path)


def plot_temporal(explanation: Explanation, path: Path) -> None:
    """PNG plot: the temporal weights over the clip, the uniform level and the annotated apex."""
    if explanation.weights is None:
        raise MerkitError("This model has no temporal attention branch; nothing to draw.")
    w = explanation.weights
    fig, ax = plt.subplots(figsize=(6, 3))
    what = "t -> t+1" if explanation.reference == "adjacent" else "0 -> t"
    ax.plot(explanation.flow_times, w, marker="o", label=f"temporal weight of flow {what}")
    ax.axhline(1 / len(w), color="grey", linestyle="--", label="uniform")
    if explanation.apex_position is not None:
        ax.axvline(explanation.apex_position, color="red", linestyle=":", label="annotated apex")
    ax.set_xlabel("frame (after interpolation)")
    ax.set_ylabel("weight")
    ax.set_title(f"{explanation.clip}: {explanation.label}, predicted {explanation.prediction}", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def write_figures(explanation: Explanation, folder: Path) -> list[Path]:
    """Write ``<clip>_spatial.png`` and ``<clip>_temporal.png`` (those the model has) into ``folder``."""
    stem = explanation.clip.replace("/", "__")
    written = []
    for kind, attention, plot in (
        ("spatial", explanation.masks, plot_spatial),
        ("temporal", explanation.weights, plot_temporal),
    ):
        if attention is not None:
            written.append(folder / f"{stem}_{kind}.png")
            plot(explanation, written[-1])
    return written
