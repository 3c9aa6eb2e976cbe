"""The MEGC spotting protocol: spotted intervals against the annotated ones.

A spotted interval is a true positive when its intersection over union with a ground-truth
interval of the same kind is at least 0.5 and that ground-truth interval has not been matched
yet: one annotated expression is found at most once, however many spotted intervals overlap it.
Intervals are frame ranges with both ends included, so ``[10, 19]`` is 10 frames. Counts are
pooled over videos; precision = TP / spotted, recall = TP / annotated, F1 their harmonic mean,
for micro-expressions, macro-expressions and both together (MEGC's "overall").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from merkit.datasets.intervals import KINDS, Interval


def iou(a: Interval, b: Interval) -> float:
    """Intersection over union of two inclusive frame ranges.

    Examples
    --------
    >>> iou(Interval(10, 19), Interval(12, 21)), round(iou(Interval(10, 19), Interval(15, 24)), 4)
    (0.6666666666666666, 0.3333)
    """
    overlap = min(a.offset, b.offset) - max(a.onset, b.onset) + 1
    if overlap <= 0:
        return 0.0
    return overlap / (a.length + b.length - overlap)


def match(spotted: Sequence[Interval], truth: Sequence[Interval], *, threshold: float = 0.5) -> list[tuple[int, int]]:
    """(spotted index, truth index) pairs of true positives: spotted intervals taken by falling
    score, each matched to the unmatched annotated interval it overlaps most (IoU >= threshold)."""
    taken: set[int] = set()
    pairs = []
    for i in sorted(range(len(spotted)), key=lambda k: -spotted[k].score):
        candidates = [(iou(spotted[i], t), j) for j, t in enumerate(truth) if j not in taken]
        best = max(candidates, default=(0.0, -1))
        if best[0] >= threshold:
            taken.add(best[1])
            pairs.append((i, best[1]))
    return pairs


def matched_pairs(
    spotted: Sequence[Interval], truth: Sequence[Interval], *, threshold: float = 0.5
) -> list[tuple[Interval, Interval]]:
    """(spotted, annotated) pairs of the true positives, each kind matched on its own (:func:`match`)."""
    pairs = []
    for kind in KINDS:
        mine = [s for s in spotted if s.kind == kind]
        theirs = [t for t in truth if t.kind == kind]
        pairs += [(mine[i], theirs[j]) for i, j in match(mine, theirs, threshold=threshold)]
    return pairs


def _figures(tp: int, spotted: int, annotated: int) -> dict:
    precision = tp / spotted if spotted else 0.0
    recall = tp / annotated if annotated else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "spotted": spotted, "annotated": annotated, "precision": precision, "recall": recall, "f1": f1}


def spotting_scores(videos: Iterable[tuple[Sequence[Interval], Sequence[Interval]]], *, threshold: float = 0.5) -> dict:
    """{micro, macro, overall: {tp, spotted, annotated, precision, recall, f1}} over ``videos``,
    each a pair (annotated intervals, spotted intervals); a spotted interval matches only an
    annotated one of its own kind.

    Examples
    --------
    >>> truth = [Interval(10, 19), Interval(100, 160, "macro")]
    >>> spotted = [Interval(11, 20), Interval(12, 21), Interval(300, 310)]  # two on the same micro, one false
    >>> s = spotting_scores([(truth, spotted)])
    >>> s["micro"]["tp"], round(s["micro"]["precision"], 4), s["micro"]["recall"], s["overall"]["recall"]
    (1, 0.3333, 1.0, 0.5)
    """
    counts = {kind: [0, 0, 0] for kind in KINDS}
    for annotated, spotted in videos:
        pairs = matched_pairs(spotted, annotated, threshold=threshold)
        for kind in KINDS:
            tally = counts[kind]
            tally[0] += sum(found.kind == kind for found, _ in pairs)
            tally[1] += sum(s.kind == kind for s in spotted)
            tally[2] += sum(t.kind == kind for t in annotated)
    result = {kind: _figures(*tally) for kind, tally in counts.items()}
    result["overall"] = _figures(*[sum(t[k] for t in counts.values()) for k in range(3)])
    return result
