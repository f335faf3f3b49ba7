"""WAR and UAR against values computed by hand on small confusion cases (paper, section 4.1)."""

import numpy as np
import pytest

from tasks.benchmark.metrics import confusion_matrix, scores, scores_from_confusion


def test_perfect_predictions_score_one():
    s = scores([0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5, 6])
    assert s.war == s.uar == 1.0 and s.n_clips == 7


def test_imbalanced_case_war_is_accuracy_and_uar_the_mean_recall():
    # 6 Angry (5 right), 2 Happy (1 right), 2 Sad (0 right: one called Angry, one Happy).
    y_true = [0] * 6 + [3] * 2 + [5] * 2
    y_pred = [0, 0, 0, 0, 0, 3] + [3, 0] + [0, 3]
    s = scores(y_true, y_pred)
    assert s.war == pytest.approx(6 / 10)
    assert s.uar == pytest.approx((5 / 6 + 1 / 2 + 0 / 2) / 3)
    assert s.recall[5] == 0.0 and np.isnan(s.recall[1])
    assert s.confusion[5].tolist() == [1, 0, 0, 1, 0, 0, 0]


def test_a_class_never_predicted_counts_as_zero_recall():
    # Fear (2) is in the test set but the model never says Fear: UAR averages 1, 1 and 0.
    s = scores([0, 0, 1, 2, 2, 2], [0, 0, 1, 0, 1, 0], n_classes=3)
    assert s.war == pytest.approx(3 / 6)
    assert s.uar == pytest.approx((1 + 1 + 0) / 3)
    assert s.confusion[:, 2].sum() == 0


def test_a_class_absent_from_the_test_set_is_left_out_of_uar():
    # Only classes 0 and 1 have test clips; predicting the absent class 2 is just a mistake.
    s = scores([0, 0, 0, 1], [0, 0, 2, 1], n_classes=3)
    assert s.war == pytest.approx(3 / 4)
    assert s.uar == pytest.approx((2 / 3 + 1) / 2)
    assert s.n_classes_present == 2 and np.isnan(s.recall[2])


def test_confusion_rows_are_true_classes():
    cm = confusion_matrix([0, 1, 1], [1, 1, 0], 2)
    assert cm.tolist() == [[0, 1], [1, 1]]
    assert scores_from_confusion(cm).war == pytest.approx(1 / 3)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="outside 0..6"):
        scores([0, 7], [0, 0])
    with pytest.raises(ValueError, match="y_true has 2 labels but y_pred has 1"):
        scores([0, 1], [0])
    with pytest.raises(ValueError, match="no test clips"):
        scores([], [])
