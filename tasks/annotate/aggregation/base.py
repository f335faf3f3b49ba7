"""What every aggregator shares: the answer frame, weighted votes and the explicit tie rule.

Aggregators look like crowd-kit's (``fit`` / ``predict`` / ``predict_proba`` over a DataFrame with columns
``task``, ``worker``, ``label``; fitted state in attributes ending in ``_``). Rows whose ``label`` is null
(PASS) carry no vote and are dropped. Optional columns: ``word`` (the fine-grained word, for WWTa's word
distribution) and ``role`` (``'PR'`` marks professional researchers).

**Ties** (every aggregator): among the labels with the highest score, take the PRs' label for the task
(its gold label, else the label a PR voted for), then the FER prediction, then the first in alphabetical
order. ``tie_break_`` records which rule decided (``'none'`` when there was no tie).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

TIE_RULES = ("none", "pr", "prediction", "alphabetical")
_EPS = 1e-9


def answer_frame(data: pd.DataFrame) -> pd.DataFrame:
    """Check and clean an answer frame: required columns, no PASS rows, one answer per (task, worker)."""
    missing = [c for c in ("task", "worker", "label") if c not in data.columns]
    if missing:
        raise ValueError(f"answer frame: missing columns {missing}; expected task, worker, label")
    out = data[data["label"].notna()].reset_index(drop=True)
    dupes = out[out.duplicated(["task", "worker"], keep=False)]
    if len(dupes):
        first = dupes.iloc[0]
        raise ValueError(
            f"answer frame: worker {first['worker']!r} answered task {first['task']!r} "
            f"{int(((dupes['task'] == first['task']) & (dupes['worker'] == first['worker'])).sum())} times"
        )
    if "role" not in out.columns:
        out["role"] = "CA"
    return out


def label_space(data: pd.DataFrame, labels: Sequence[str] | None) -> list[str]:
    """The labels scored: ``labels`` when given (an unknown label in the data is an error), else the
    data's labels in alphabetical order."""
    seen = sorted(data["label"].astype(str).unique())
    if labels is None:
        return seen
    unknown = sorted(set(seen) - set(labels))
    if unknown:
        raise ValueError(f"answer frame: unknown labels {unknown}; expected one of {list(labels)}")
    return list(labels)


def weighted_scores(data: pd.DataFrame, weights: pd.Series, labels: Sequence[str]) -> pd.DataFrame:
    """Sum of the voters' weights per (task, label): a tasks x labels frame (tasks in sorted order)."""
    w = data["worker"].map(weights).astype(float)
    table = w.groupby([data["task"], data["label"]]).sum().unstack("label", fill_value=0.0)
    return table.reindex(columns=list(labels), fill_value=0.0).sort_index()


def word_distribution(data: pd.DataFrame, weights: pd.Series) -> pd.Series:
    """Task -> {word: weighted share}, words by descending share (empty dicts without a ``word`` column)."""
    tasks = pd.Index(sorted(data["task"].unique()), name="task")
    if "word" not in data.columns:
        return pd.Series([{} for _ in tasks], index=tasks, dtype=object)
    sums = (
        pd.DataFrame(
            {
                "task": data["task"],
                "word": data["word"].astype(str),
                "w": data["worker"].map(weights).astype(float),
            }
        )
        .groupby(["task", "word"], sort=False)["w"]
        .sum()
        .reset_index()
    )
    sums["share"] = sums["w"] / sums.groupby("task")["w"].transform("sum")
    sums = sums.sort_values(["task", "share", "word"], ascending=[True, False, True], kind="stable")
    out: dict[object, dict[str, float]] = {t: {} for t in tasks}
    for task, word, share in zip(
        sums["task"].tolist(), sums["word"].tolist(), sums["share"].tolist(), strict=True
    ):
        out[task][word] = float(share)
    return pd.Series([out[t] for t in tasks], index=tasks, dtype=object)


def resolve(
    scores: pd.DataFrame,
    data: pd.DataFrame,
    gold: Mapping[str, str] | None = None,
    predicted: Mapping[str, str] | None = None,
) -> tuple[pd.Series, pd.Series]:
    """The winner per task under the tie rule (module docstring), and which rule decided."""
    gold = gold or {}
    predicted = predicted or {}
    pr_votes = data[data["role"] == "PR"].groupby("task")["label"].agg(lambda s: sorted(set(s)))
    winners, rules = [], []
    values = scores.to_numpy()
    columns = list(scores.columns)
    for task, row in zip(scores.index, values, strict=True):
        top = [columns[j] for j in np.flatnonzero(row >= row.max() - _EPS * max(1.0, abs(row.max())))]
        if len(top) == 1:
            winners.append(top[0])
            rules.append("none")
            continue
        pr = [gold[task]] if gold.get(task) is not None else pr_votes.get(task, [])
        pr = [label for label in pr if label in top]
        if len(pr) == 1:
            winners.append(pr[0])
            rules.append("pr")
        elif predicted.get(task) in top:
            winners.append(predicted[task])
            rules.append("prediction")
        else:
            winners.append(sorted(top)[0])
            rules.append("alphabetical")
    index = pd.Index(scores.index, name="task")
    return pd.Series(winners, index=index, name="label"), pd.Series(rules, index=index, name="tie_break")


class Aggregator:
    """Base class: subclasses implement ``fit`` setting ``labels_`` (task -> label) and ``probas_``
    (tasks x labels); ``predict`` / ``predict_proba`` fit and return them."""

    labels_: pd.Series
    probas_: pd.DataFrame
    tie_break_: pd.Series

    def fit(self, data: pd.DataFrame, **kwargs) -> Aggregator:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, data: pd.DataFrame, **kwargs) -> pd.Series:
        return self.fit(data, **kwargs).labels_

    def predict_proba(self, data: pd.DataFrame, **kwargs) -> pd.DataFrame:
        return self.fit(data, **kwargs).probas_
