import pytest

from merkit.datasets.intervals import Interval
from merkit.evaluation.spotting import iou, match, spotting_scores


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ((10, 19), (10, 19), 1.0),
        ((10, 19), (12, 21), 8 / 12),  # frames 12..19 shared, 10..21 covered
        ((10, 19), (15, 24), 5 / 15),
        ((10, 19), (20, 29), 0.0),  # touching is not overlapping
        ((10, 19), (19, 19), 1 / 10),  # one shared frame of ten
        ((0, 0), (0, 0), 1.0),
    ],
)
def test_iou_of_inclusive_frame_ranges(a, b, expected):
    assert iou(Interval(*a), Interval(*b)) == pytest.approx(expected)


def test_one_annotated_interval_matched_twice_counts_once():
    truth = [Interval(100, 119)]
    spotted = [Interval(101, 120, score=0.9), Interval(99, 118, score=0.5)]  # both IoU >= 0.5
    assert match(spotted, truth) == [(0, 0)], "the higher score takes it; the other is a false positive"
    s = spotting_scores([(truth, spotted)])["micro"]
    assert (s["tp"], s["spotted"], s["annotated"]) == (1, 2, 1) and s["precision"] == 0.5 and s["recall"] == 1.0
    assert s["f1"] == pytest.approx(2 / 3)


def test_each_spotted_interval_takes_the_annotated_one_it_overlaps_most():
    truth = [Interval(0, 9), Interval(6, 15)]
    # [5, 14] overlaps [6, 15] by 9/11 and [0, 9] by 5/15: it must take [6, 15], leaving [0, 9] for [0, 8]
    assert sorted(match([Interval(5, 14, score=0.9), Interval(0, 8, score=0.1)], truth)) == [(0, 1), (1, 0)]


def test_kinds_are_matched_apart_and_pooled_overall():
    truth = [Interval(10, 19, "micro"), Interval(100, 199, "macro"), Interval(400, 499, "macro")]
    spotted = [Interval(10, 19, "macro"), Interval(105, 195, "macro"), Interval(600, 650, "macro")]
    s = spotting_scores([(truth, spotted), ([Interval(5, 12, "micro")], [Interval(5, 12, "micro")])])
    assert (s["micro"]["tp"], s["micro"]["spotted"], s["micro"]["annotated"]) == (1, 1, 2)
    assert (s["macro"]["tp"], s["macro"]["spotted"], s["macro"]["annotated"]) == (1, 3, 2)
    overall = s["overall"]
    assert (overall["tp"], overall["spotted"], overall["annotated"]) == (2, 4, 4) and overall["f1"] == pytest.approx(
        0.5
    )


def test_no_spotted_interval_gives_zero_not_an_error():
    s = spotting_scores([([Interval(1, 5)], [])])
    assert s["micro"] == {"tp": 0, "spotted": 0, "annotated": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0}
