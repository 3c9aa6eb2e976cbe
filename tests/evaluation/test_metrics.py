import numpy as np

from merkit.evaluation.metrics import confusion_matrix, scores


def test_scores_against_hand_computed_values():
    truth = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "a", "a"]
    s = scores(truth, pred, ["a", "b", "c"])
    # a: TP 2, FP 2, FN 1 -> F1 4/7, recall 2/3; b: TP 1, FP 1, FN 1 -> F1 1/2, recall 1/2;
    # c: TP 0, FN 1 -> F1 0, recall 0.
    assert s["accuracy"] == 3 / 6
    np.testing.assert_allclose(s["uf1"], (4 / 7 + 1 / 2 + 0) / 3)
    np.testing.assert_allclose(s["uar"], (2 / 3 + 1 / 2 + 0) / 3)
    assert s["per_class_recall"] == {"a": 2 / 3, "b": 0.5, "c": 0.0}
    assert s["confusion"] == [[2, 1, 0], [1, 1, 0], [1, 0, 0]]


def test_classes_absent_everywhere_do_not_count_but_wrongly_predicted_ones_do():
    s = scores(["a", "a"], ["a", "b"], ["a", "b", "c"])
    # c never occurs: ignored. b is predicted but absent from the truth: its F1 (0) counts in UF1,
    # its recall is undefined and does not count in UAR.
    np.testing.assert_allclose(s["uf1"], (2 / 3 + 0) / 2)
    assert s["uar"] == 0.5
    assert s["per_class_recall"]["b"] is None and s["per_class_f1"]["c"] is None


def test_confusion_rows_are_truth_in_class_order():
    m = confusion_matrix(["x", "y", "y"], ["y", "y", "x"], ["y", "x"])
    np.testing.assert_array_equal(m, [[1, 1], [1, 0]])
