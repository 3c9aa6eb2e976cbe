"""A run's report for a person: ``report.md`` and ``confusion.png``."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from merkit.io.atomic import atomic_write_bytes, atomic_write_text  # noqa: E402


def _f(value) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def chance_levels(metrics: dict) -> dict:
    """UAR of a constant guess (1 / classes present) and accuracy of always guessing the largest class."""
    support = np.array(list(metrics["overall"]["support"].values()))
    present = support[support > 0]
    return {"uar": 1.0 / len(present), "accuracy": float(present.max() / present.sum())}


def verdict(metrics: dict) -> str:
    """One sentence placing the pooled figures against chance."""
    overall, chance = metrics["overall"], chance_levels(metrics)
    margin = overall["uar"] - chance["uar"]
    if overall["uar"] >= 0.99:
        word = "perfect, which on real data would suggest a leak or a trivial task"
    elif margin > 0.1:
        word = "well above chance"
    elif margin > 0.03:
        word = "somewhat above chance"
    else:
        word = "at chance"
    return (
        f"UAR {overall['uar']:.3f} against {chance['uar']:.3f} for a constant guess, accuracy "
        f"{overall['accuracy']:.3f} against {chance['accuracy']:.3f} for the largest class: {word}."
    )


def plot_confusion(matrix, classes, path: Path, title: str) -> None:
    """Confusion matrix as a PNG: colour the row-normalised share, text the counts."""
    matrix = np.asarray(matrix)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2.5, 1.1 * len(classes) + 2))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{matrix[i, j]}", ha="center", va="center", color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """Write a matplotlib figure to ``path`` as a PNG, atomically, and close it."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def write_report(out: Path, config: dict, metrics: dict, dataset, *, elapsed: float, computed: int, total: int) -> None:
    """Write ``report.md`` and ``confusion.png`` (``au_f1.png`` for action units) into the run directory ``out``."""
    classes = metrics["classes"]
    method, protocol = config["method"], config["protocol"]
    title = f"{method['name']} on {config['dataset']['name']} ({config['dataset']['labels']}), {protocol['name']}"
    parts = [f"# {title}", ""]
    parts += (
        _action_unit_figures(out, metrics, title) if metrics.get("multilabel") else _class_figures(out, metrics, title)
    )
    parts += ["## Honesty checks", ""]
    if metrics["leakage"]:
        parts.append(
            f"**Identity leakage:** in {len(metrics['leakage'])} of {total} folds some subjects have clips in "
            "both the training and the test part, so these figures overstate performance on new people. "
            "Use `--protocol loso` or `subject_kfold` for figures without leakage."
        )
        parts += ["", _table(["fold", "shared subjects"], [[k, ", ".join(v)] for k, v in metrics["leakage"].items()])]
    else:
        parts.append("No subject has clips in both the training and the test part of any fold.")
    parts += [
        "",
        "Hyper-parameters are fixed in advance (below); nothing is chosen on a test fold. "
        "Augmentation, feature scaling and every fitted step see only a fold's training clips.",
        "",
    ]
    dropped = dataset.dropped
    origin = config["dataset"].get("labels_from")
    parts += [
        "## Data",
        "",
        f"{len(dataset)} clips of {len(set(dataset.groups))} subjects; "
        f"label scheme `{dataset.labels}` ({', '.join(classes)})" + (f", from {origin}." if origin else "."),
    ]
    if len(dropped):
        counts = dropped["emotion"].value_counts()
        parts.append(
            f"The scheme dropped {len(dropped)} clips: " + ", ".join(f"{w} ({n})" for w, n in counts.items()) + "."
        )
        parts += [
            "",
            "<details><summary>Dropped clips</summary>",
            "",
            _table(
                ["dataset", "subject", "clip", "emotion"],
                dropped[["dataset", "subject", "clip", "emotion"]].values.tolist(),
            ),
            "",
            "</details>",
        ]
    else:
        parts.append("The scheme dropped no clip.")
    skipped = dataset.skipped
    if len(skipped):
        rows = skipped.drop_duplicates(["dataset", "file", "row"])
        parts.append(
            f"The reader skipped {len(rows)} annotation rows that cannot become clips (errata of the release or "
            "clip folders missing from this copy; `--option strict=true` refuses them instead):"
        )
        parts += [
            "",
            _table(
                ["dataset", "file", "row", "subject", "clip", "reason"],
                [
                    [d or config["dataset"]["name"], f, r or "", s, c, why]
                    for d, f, r, s, c, why in skipped.values.tolist()
                ],
            ),
        ]
    else:
        parts.append("The reader skipped no annotation row.")
    if "apex_source" in dataset.metadata:
        sources = dataset.metadata["apex_source"].replace("", "none").value_counts()
        parts.append(
            "Apex: "
            + ", ".join(
                f"{n} clips {'annotated' if s == 'annotation' else s if s == 'none' else 'estimated by ' + s}"
                for s, n in sources.items()
            )
            + "."
        )
    parts += [
        "",
        "## Recipe",
        "",
        f"- method `{method['name']}`: " + ", ".join(f"{k}={v}" for k, v in method["params"].items()),
        f"- protocol `{protocol['name']}` {protocol['params'] or ''}, {total} folds, seed {config['seed']}",
        f"- dataset `{config['dataset']['name']}`"
        + (f" from `{config['dataset']['root']}`" if "root" in config["dataset"] else ""),
        f"- merkit {config['merkit']}",
        "",
        f"Time: {elapsed:.1f} s for this invocation ({computed} of {total} folds computed, the rest resumed).",
        "",
    ]
    atomic_write_text(out / "report.md", "\n".join(parts))


def _class_figures(out: Path, metrics: dict, title: str) -> list[str]:
    """Single-label figures: pooled, per class, confusion matrix (and its PNG), per dataset and fold."""
    classes, overall = metrics["classes"], metrics["overall"]
    plot_confusion(overall["confusion"], classes, out / "confusion.png", title)
    chance = chance_levels(metrics)
    parts = [verdict(metrics), ""]
    parts += [
        "## Pooled over all folds",
        "",
        _table(
            ["", "accuracy", "UF1", "UAR", "clips"],
            [
                ["this run", _f(overall["accuracy"]), _f(overall["uf1"]), _f(overall["uar"]), overall["n"]],
                ["chance", _f(chance["accuracy"]), "-", _f(chance["uar"]), ""],
            ],
        ),
        "",
    ]
    parts += [
        "### Per class",
        "",
        _table(
            ["class", "clips", "recall", "F1"],
            [
                [c, overall["support"][c], _f(overall["per_class_recall"][c]), _f(overall["per_class_f1"][c])]
                for c in classes
            ],
        ),
        "",
    ]
    parts += [
        "### Confusion matrix (rows true, columns predicted)",
        "",
        _table(
            ["true \\ predicted", *classes],
            [[c, *row] for c, row in zip(classes, overall["confusion"])],
        ),
        "",
        "![confusion matrix](confusion.png)",
        "",
    ]
    parts += [
        "## Per dataset",
        "",
        _table(
            ["dataset", "clips", "accuracy", "UF1", "UAR"],
            [
                [name, s["n"], _f(s["accuracy"]), _f(s["uf1"]), _f(s["uar"])]
                for name, s in metrics["per_dataset"].items()
            ],
        ),
        "",
    ]
    parts += [
        "## Per fold",
        "",
        "Per-fold UF1 and UAR use only the classes present in the fold; the pooled figures above are the ones to compare.",
        "",
        _table(
            ["fold", "clips", "accuracy", "UF1", "UAR"],
            [[name, s["n"], _f(s["accuracy"]), _f(s["uf1"]), _f(s["uar"])] for name, s in metrics["per_fold"].items()],
        ),
        "",
    ]
    return parts


def _action_unit_figures(out: Path, metrics: dict, title: str) -> list[str]:
    """Multi-label figures: F1 per action unit (binary, pooled) and their mean, overall and per
    dataset, as a table and a heat map (``au_f1.png``), and per fold."""
    classes, overall = metrics["classes"], metrics["overall"]
    parts_by = {"all": overall, **(metrics["per_dataset"] if len(metrics["per_dataset"]) > 1 else {})}
    plot_au_heatmap(parts_by, classes, out / "au_f1.png", title)
    parts = [
        f"Mean F1 over the action units {_f(overall['mean_f1'])} on {overall['n']} clips (pooled over folds). "
        "An AU no clip shows and no prediction names has no F1 (-) and is left out of the mean.",
        "",
        "## F1 per action unit and dataset",
        "",
        _table(
            ["AU", "clips with it", *parts_by],
            [[c, overall["support"][c], *[_f(p["per_au_f1"][c]) for p in parts_by.values()]] for c in classes]
            + [["mean", "", *[_f(p["mean_f1"]) for p in parts_by.values()]]],
        ),
        "",
        "![F1 per AU and dataset](au_f1.png)",
        "",
    ]
    parts += [
        "## Per fold",
        "",
        _table(
            ["fold", "clips", "mean F1"], [[name, f["n"], _f(f["mean_f1"])] for name, f in metrics["per_fold"].items()]
        ),
        "",
    ]
    return parts


def plot_au_heatmap(parts: dict, classes, path: Path, title: str) -> None:
    """PNG heat map: F1 per action unit (rows) and dataset (columns); blank where undefined."""
    values = np.array(
        [[np.nan if p["per_au_f1"][c] is None else p["per_au_f1"][c] for p in parts.values()] for c in classes]
    )
    fig, ax = plt.subplots(figsize=(1.3 * len(parts) + 2.5, 0.38 * len(classes) + 1.6))
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(parts)), list(parts), rotation=20, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    for (i, j), v in np.ndenumerate(values):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    fig.colorbar(image, ax=ax, label="F1")
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)
