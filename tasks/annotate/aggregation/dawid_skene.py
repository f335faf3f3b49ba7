"""Dawid-Skene: a full confusion matrix per annotator, fitted by EM (Dawid & Skene 1979).

Beside WWTa (paper, section 3.2) as the classic model-based aggregator. E-step: the posterior over each
task's true label is ``prior[l] * prod over its answers of errors[worker][l, answer]``; M-step: the label
prior and each worker's confusion matrix (rows: true label) from those posteriors, with add-``smoothing``
counts so no probability is zero. Starts from the majority-vote fractions; tasks with a ``gold`` label are
clamped to it (semi-supervised), which anchors the confusion matrices the way gold anchors WWTa.

    >>> data = pd.DataFrame({"task": ["t1", "t1", "t2", "t2"], "worker": ["a", "b", "a", "b"],
    ...                      "label": ["Happy", "Happy", "Sad", "Sad"]})
    >>> DawidSkene().predict(data).to_dict()
    {'t1': 'Happy', 't2': 'Sad'}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.annotate.aggregation.base import Aggregator, answer_frame, label_space, resolve
from tasks.annotate.aggregation.majority import MajorityVote
from tasks.annotate.aggregation.registry import AGGREGATORS


@dataclass
class DawidSkene(Aggregator):
    """EM over per-worker confusion matrices (see the module docstring)."""

    labels: Sequence[str] | None = None
    n_iter: int = 100
    tol: float = 1e-6
    smoothing: float = 0.01

    def fit(
        self,
        data: pd.DataFrame,
        gold: Mapping[str, str] | None = None,
        predicted: Mapping[str, str] | None = None,
    ) -> DawidSkene:
        """``gold`` (task -> label) clamps those tasks; ``gold`` and ``predicted`` also break ties."""
        data = answer_frame(data)
        labels = label_space(data, self.labels)
        tasks = pd.Index(sorted(data["task"].unique()), name="task")
        workers = pd.Index(sorted(data["worker"].unique()), name="worker")
        t = tasks.get_indexer(data["task"])
        w = workers.get_indexer(data["worker"])
        m = pd.Index(labels).get_indexer(data["label"])
        k = len(labels)
        gold = {task: g for task, g in (gold or {}).items() if g is not None and task in tasks}
        clamp_rows = tasks.get_indexer(list(gold))
        clamp = np.zeros((len(clamp_rows), k))
        clamp[np.arange(len(clamp_rows)), pd.Index(labels).get_indexer(list(gold.values()))] = 1.0

        post = MajorityVote(labels=labels).fit(data).probas_.reindex(tasks).to_numpy(dtype=float, copy=True)
        post[clamp_rows] = clamp
        self.n_iter_ = 0
        while self.n_iter_ < self.n_iter:
            self.n_iter_ += 1
            prior = (post.sum(axis=0) + self.smoothing) / (len(tasks) + k * self.smoothing)
            errors = np.full((len(workers), k, k), self.smoothing)
            for true in range(k):
                np.add.at(errors[:, true, :], (w, m), post[t, true])
            errors /= errors.sum(axis=2, keepdims=True)
            log_post = np.tile(np.log(prior), (len(tasks), 1))
            np.add.at(log_post, t, np.log(errors[w, :, m]))
            log_post -= log_post.max(axis=1, keepdims=True)
            new = np.exp(log_post)
            new /= new.sum(axis=1, keepdims=True)
            new[clamp_rows] = clamp
            delta = np.abs(new - post).max()
            post = new
            if delta < self.tol:
                break
        self.priors_ = pd.Series(prior, index=labels, name="prior")
        self.errors_ = {
            worker: pd.DataFrame(errors[i], index=pd.Index(labels, name="true"), columns=labels)
            for i, worker in enumerate(workers)
        }
        self.probas_ = pd.DataFrame(post, index=tasks, columns=labels)
        self.labels_, self.tie_break_ = resolve(self.probas_, data, gold, predicted)
        return self


@AGGREGATORS.register("dawid_skene")
def _dawid_skene(labels: Sequence[str], cfg) -> DawidSkene:
    return DawidSkene(labels=labels)
