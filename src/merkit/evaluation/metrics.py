"""Recognition metrics over pooled predictions, as MEGC defines them.

UF1 (unweighted F1) is the mean over classes of F1_c = 2 TP / (2 TP + FP + FN), over the classes
that occur in the truth or the predictions; UAR (unweighted average recall) is the mean over
the classes that occur in the truth of TP / support.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """(C, C) int64 counts, rows the true class and columns the predicted one, in ``classes`` order."""
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(matrix, ([index[t] for t in y_true], [index[p] for p in y_pred]), 1)
    return matrix


def scores(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> dict:
    """Accuracy, UF1, UAR, per-class recall and F1, and the confusion matrix.

    Examples
    --------
    >>> s = scores(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    >>> s["accuracy"], s["uar"], round(s["uf1"], 4)
    (0.75, 0.75, 0.7333)
    """
    matrix = confusion_matrix(y_true, y_pred, classes)
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    denominator = support + predicted  # = 2TP + FP + FN
    occurs = denominator > 0
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=occurs)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    n = int(matrix.sum())
    return {
        "n": n,
        "accuracy": float(tp.sum() / n) if n else float("nan"),
        "uf1": float(f1[occurs].mean()) if occurs.any() else float("nan"),
        "uar": float(recall[support > 0].mean()) if (support > 0).any() else float("nan"),
        "per_class_recall": {c: (float(r) if s else None) for c, r, s in zip(classes, recall, support)},
        "per_class_f1": {c: (float(f) if o else None) for c, f, o in zip(classes, f1, occurs)},
        "support": {c: int(s) for c, s in zip(classes, support)},
        "confusion": matrix.tolist(),
    }


def confusion_figures(matrices: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, UF1 and UAR of a stack of confusion matrices, (..., C, C) -> three (...,) arrays.

    The same definitions as :func:`scores`, vectorised (bootstrap and permutation samples).

    Examples
    --------
    >>> f = confusion_figures(np.array([[[1, 1], [0, 2]]]))
    >>> float(f["accuracy"][0]), float(f["uar"][0]), round(float(f["uf1"][0]), 4)
    (0.75, 0.75, 0.7333)
    """
    m = np.asarray(matrices, dtype=np.float64)
    tp = np.diagonal(m, axis1=-2, axis2=-1)
    support, predicted = m.sum(axis=-1), m.sum(axis=-2)
    denominator = support + predicted
    occurs, present = denominator > 0, support > 0
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=occurs)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=present)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "accuracy": tp.sum(-1) / m.sum((-2, -1)),
            "uf1": f1.sum(-1) / occurs.sum(-1),
            "uar": recall.sum(-1) / present.sum(-1),
        }


def au_counts(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """(C, 3) per action unit: true positives, false positives, false negatives. Labels are
    ``AU1+AU4`` strings (``none``: no AU of the set)."""
    from merkit.datasets.base import multi_hot

    truth, predicted = multi_hot(list(y_true), classes).astype(bool), multi_hot(list(y_pred), classes).astype(bool)
    return np.stack(
        [(truth & predicted).sum(axis=0), (~truth & predicted).sum(axis=0), (truth & ~predicted).sum(axis=0)], axis=1
    )


def au_figures(counts: np.ndarray) -> dict[str, np.ndarray]:
    """F1 per AU (NaN where no clip shows it and no prediction names it) and their mean over the
    AUs that have one, from (..., C, 3) counts (summed over clips, subjects or resamples)."""
    tp, fp, fn = np.moveaxis(np.asarray(counts, dtype=np.float64), -1, 0)
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / denominator, np.nan)
        return {"per_au_f1": f1, "mean_f1": np.nansum(f1, axis=-1) / (denominator > 0).sum(axis=-1)}


def au_scores(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> dict:
    """Multi-label figures: F1 of each action unit as a binary decision on the pooled clips, and
    their mean over the AUs that have one (an AU no clip shows and no prediction names has none).

    Examples
    --------
    >>> s = au_scores(["AU1+AU2", "AU1", "none"], ["AU1", "AU1+AU2", "AU2"], ["AU1", "AU2", "AU4"])
    >>> s["per_au_f1"], s["mean_f1"]
    ({'AU1': 1.0, 'AU2': 0.0, 'AU4': None}, 0.5)
    """
    counts = au_counts(y_true, y_pred, classes)
    figures = au_figures(counts)
    return {
        "n": len(y_true),
        "mean_f1": float(figures["mean_f1"]),
        "per_au_f1": {c: (None if np.isnan(f) else float(f)) for c, f in zip(classes, figures["per_au_f1"])},
        "support": {c: int(tp + fn) for c, (tp, _, fn) in zip(classes, counts)},
        "predicted": {c: int(tp + fp) for c, (tp, fp, _) in zip(classes, counts)},
    }
