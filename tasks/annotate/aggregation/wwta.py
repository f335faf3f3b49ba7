"""Weighted winner-take-all (WWTa) voting: each vote weighted by its annotator's reliability.

Paper, section 3.2: "the Weighted-Winner-take-all (WWTa) voting method is used for generating final
facial expression labels". The paper does not spell the weights out; here they are:

- **Skill**: a CA's accuracy on the gold items they answered, smoothed:
  ``acc = (correct + prior_correct) / (answered + prior_correct + prior_wrong)`` (Beta(1, 1) by default,
  so a CA without gold answers has 0.5). A PR's accuracy is ``pr_accuracy`` (0.95): PRs make the gold.
- **Weight**: the log-odds ``w = log((K - 1) acc / (1 - acc))`` over ``K`` labels, the optimal weight of a
  weighted majority when an annotator is right with probability ``acc`` and otherwise picks any other label
  (Nitzan & Paroush 1982); floored at ``min_weight`` so a worse-than-chance annotator counts next to nothing
  and a task voted on only by such annotators still gets the plain majority.
- **Winner**: the label with the highest summed weight; ties by the shared rule (base.py): the PRs'
  label, then the FER prediction, then alphabetical.
- ``probas_``: ``softmax`` of the summed weights, the posterior over labels under that annotator model with
  a uniform prior; ``confidence_`` is the winner's; ``vote_share_`` is the winner's share of the summed
  weight; ``word_distribution_`` the weighted share of each fine-grained word (when a ``word`` column is
  given); ``n_votes_`` the votes counted.

    >>> data = pd.DataFrame({"task": ["t1", "t1", "t1"], "worker": ["good", "spam1", "spam2"],
    ...                      "label": ["Happy", "Sad", "Angry"]})
    >>> WWTa().fit(data, skills={"good": 0.9, "spam1": 0.2, "spam2": 0.2}).labels_.to_dict()
    {'t1': 'Happy'}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.annotate.aggregation.base import (
    Aggregator,
    answer_frame,
    label_space,
    resolve,
    weighted_scores,
    word_distribution,
)
from tasks.annotate.aggregation.registry import AGGREGATORS


@dataclass
class WWTa(Aggregator):
    """Reliability-weighted voting (see the module docstring)."""

    labels: Sequence[str] | None = None
    prior_correct: float = 1.0
    prior_wrong: float = 1.0
    pr_accuracy: float = 0.95
    min_weight: float = 1e-3

    def skills(self, data: pd.DataFrame, gold: Mapping[str, str]) -> pd.Series:
        """Smoothed gold accuracy per worker (PRs: ``pr_accuracy``)."""
        data = answer_frame(data)
        on_gold = data[data["task"].isin(list(gold)) & (data["role"] != "PR")]
        correct = (
            (on_gold["label"] == on_gold["task"].map(gold)).groupby(on_gold["worker"]).agg(["sum", "size"])
        )
        workers = pd.Index(sorted(data["worker"].unique()), name="worker")
        correct = correct.reindex(workers, fill_value=0)
        acc = (correct["sum"] + self.prior_correct) / (
            correct["size"] + self.prior_correct + self.prior_wrong
        )
        prs = set(data.loc[data["role"] == "PR", "worker"])
        acc[acc.index.isin(prs)] = self.pr_accuracy
        return acc.astype(float).rename("skill")

    def weight(self, accuracy: float, n_labels: int) -> float:
        """``max(min_weight, log((K - 1) acc / (1 - acc)))``."""
        acc = min(max(accuracy, 1e-9), 1 - 1e-9)
        return max(self.min_weight, math.log(max(n_labels - 1, 1) * acc / (1 - acc)))

    def fit(
        self,
        data: pd.DataFrame,
        gold: Mapping[str, str] | None = None,
        predicted: Mapping[str, str] | None = None,
        skills: Mapping[str, float] | None = None,
    ) -> WWTa:
        """``gold`` (task -> the PRs' label) gives the skills and breaks ties; ``predicted`` (task -> FER
        label) breaks ties; ``skills`` (worker -> accuracy) replaces the gold estimate where given."""
        data = answer_frame(data)
        labels = label_space(data, self.labels)
        gold = {t: g for t, g in (gold or {}).items() if g is not None}
        skill = self.skills(data, gold)
        if skills:
            skill.update(pd.Series(skills, dtype=float))
        self.skills_ = skill
        self.weights_ = skill.map(lambda a: self.weight(a, len(labels))).rename("weight")
        scores = weighted_scores(data, self.weights_, labels)
        self.scores_ = scores
        stable = scores.sub(scores.max(axis=1), axis=0)
        expo = np.exp(stable)
        self.probas_ = expo.div(expo.sum(axis=1), axis=0)
        self.labels_, self.tie_break_ = resolve(scores, data, gold, predicted)
        picked = pd.Series(
            scores.to_numpy()[np.arange(len(scores)), scores.columns.get_indexer(self.labels_)],
            index=scores.index,
        )
        self.vote_share_ = (picked / scores.sum(axis=1)).rename("vote_share")
        self.confidence_ = pd.Series(
            self.probas_.to_numpy()[np.arange(len(scores)), scores.columns.get_indexer(self.labels_)],
            index=scores.index,
            name="confidence",
        )
        self.n_votes_ = data.groupby("task").size().reindex(scores.index).rename("n_votes")
        self.word_distribution_ = word_distribution(data, self.weights_)
        return self


@AGGREGATORS.register("wwta")
def _wwta(labels: Sequence[str], cfg) -> WWTa:
    return WWTa(
        labels=labels,
        prior_correct=cfg.skill_prior_correct,
        prior_wrong=cfg.skill_prior_wrong,
        pr_accuracy=cfg.pr_accuracy,
    )
