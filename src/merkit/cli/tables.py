"""The tables commands print: results of runs, per AU, per dataset."""

from __future__ import annotations

from rich.table import Table


def results_table(rows: list[tuple[str, dict]], title: str) -> Table:
    from merkit.evaluation.reports import chance_levels

    if rows and rows[0][1].metrics.get("multilabel"):
        return au_table(rows, title)
    table = Table(title=title)
    for column in ("method", "accuracy", "UF1", "UAR", "chance UAR", "run directory"):
        table.add_column(column, justify="left" if column in ("method", "run directory") else "right")
    for name, result in rows:
        overall = result.metrics["overall"]
        table.add_row(
            name,
            f"{overall['accuracy']:.3f}",
            f"{overall['uf1']:.3f}",
            f"{overall['uar']:.3f}",
            f"{chance_levels(result.metrics)['uar']:.3f}",
            str(result.out),
        )
    return table


def au_table(rows: list[tuple[str, dict]], title: str) -> Table:
    """Action units: F1 per AU (pooled over folds) and their mean, one row per method."""
    classes = rows[0][1].metrics["classes"]
    table = Table(title=title)
    for column in ("method", "mean F1", *classes):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, result in rows:
        overall = result.metrics["overall"]
        table.add_row(
            name,
            f"{overall['mean_f1']:.3f}",
            *["-" if overall["per_au_f1"][c] is None else f"{overall['per_au_f1'][c]:.2f}" for c in classes],
        )
    return table


def per_dataset_table(metrics: dict) -> Table:
    table = Table(title="per dataset (pooled over the folds)")
    for column in ("dataset", "clips", "accuracy", "UF1", "UAR"):
        table.add_column(column, justify="left" if column == "dataset" else "right")
    for name, s in [("composite", metrics["overall"]), *metrics["per_dataset"].items()]:
        table.add_row(name, str(s["n"]), f"{s['accuracy']:.3f}", f"{s['uf1']:.3f}", f"{s['uar']:.3f}")
    return table
