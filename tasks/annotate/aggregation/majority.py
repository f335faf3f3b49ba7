"""Majority vote: every answer counts once; the baseline beside WWTa (paper, section 3.2).

``probas_`` are the vote fractions; ties follow the shared rule (tasks/annotate/aggregation/base.py).

    >>> data = pd.DataFrame({"task": ["t1", "t1", "t1"], "worker": ["a", "b", "c"],
    ...                      "label": ["Happy", "Happy", "Sad"]})
    >>> MajorityVote().predict(data).to_dict()
    {'t1': 'Happy'}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from tasks.annotate.aggregation.base import Aggregator, answer_frame, label_space, resolve, weighted_scores
from tasks.annotate.aggregation.registry import AGGREGATORS


@dataclass
class MajorityVote(Aggregator):
    """The most frequent label per task."""

    labels: Sequence[str] | None = None

    def fit(
        self,
        data: pd.DataFrame,
        gold: Mapping[str, str] | None = None,
        predicted: Mapping[str, str] | None = None,
    ) -> MajorityVote:
        """``gold`` and ``predicted`` (task -> label) only break ties."""
        data = answer_frame(data)
        labels = label_space(data, self.labels)
        ones = pd.Series(1.0, index=pd.Index(data["worker"].unique()))
        counts = weighted_scores(data, ones, labels)
        self.votes_ = counts
        self.probas_ = counts.div(counts.sum(axis=1), axis=0)
        self.labels_, self.tie_break_ = resolve(counts, data, gold, predicted)
        return self


@AGGREGATORS.register("majority")
def _majority(labels: Sequence[str], cfg) -> MajorityVote:
    return MajorityVote(labels=labels)
