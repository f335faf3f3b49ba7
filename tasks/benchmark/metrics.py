"""WAR and UAR from a confusion matrix (paper, section 4.1, "Evaluation metric").

- WAR, weighted average recall, is the overall accuracy: correct clips / all clips.
- UAR, unweighted average recall, is the mean of the per-class recalls over the classes *present in the
  test set*. A class with no test clip has no recall (0/0): it is left out of the mean (and reported as NaN)
  rather than counted as 0 or 1, so a scene without Fear clips is not punished or rewarded for it. A class
  that is present but never predicted has recall 0 and counts.

    >>> s = scores([0, 0, 1, 2], [0, 1, 1, 1], n_classes=3)
    >>> round(s.war, 4), round(s.uar, 4)
    (0.5, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scores:
    """WAR and UAR of one test group, with the confusion matrix (row = true class) they come from."""

    war: float
    uar: float
    n_clips: int
    recall: np.ndarray  # per class; NaN for a class absent from the group
    confusion: np.ndarray  # (n_classes, n_classes) int64

    @property
    def n_classes_present(self) -> int:
        return int((self.confusion.sum(axis=1) > 0).sum())


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Counts of (true, predicted) pairs; labels outside ``0..n_classes-1`` are an error naming them."""
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    bad = sorted({int(v) for v in np.concatenate([t, p]) if not 0 <= v < n_classes})
    if bad:
        raise ValueError(f"class indices {bad} outside 0..{n_classes - 1}")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def scores_from_confusion(cm: np.ndarray) -> Scores:
    """WAR and UAR of a confusion matrix (see module docstring for absent classes)."""
    cm = np.asarray(cm, dtype=np.int64)
    support = cm.sum(axis=1)
    n = int(support.sum())
    if n == 0:
        raise ValueError("no test clips: WAR and UAR are undefined for an empty group")
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, np.diag(cm) / support, np.nan)
    return Scores(
        war=float(np.trace(cm) / n),
        uar=float(np.nanmean(recall)),
        n_clips=n,
        recall=recall.astype(np.float64),
        confusion=cm,
    )


def scores(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int = 7) -> Scores:
    """WAR and UAR of predictions ``y_pred`` against labels ``y_true`` (class indices)."""
    return scores_from_confusion(confusion_matrix(y_true, y_pred, n_classes))
