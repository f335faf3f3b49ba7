"""Inter-annotator agreement over an answer frame (task, worker, label): Fleiss' kappa and
Krippendorff's alpha (nominal). Paper, section 3.2: how much the crowd agrees before voting.

Both accept any number of answers per task; tasks with fewer than two answers carry no pairs and are
left out. PASS rows (null labels) are dropped.

- **Fleiss' kappa** (Fleiss 1971, with per-task rater counts ``n_i``): ``P_i = sum_j n_ij (n_ij - 1) /
  (n_i (n_i - 1))``, ``P = mean(P_i)``, ``p_j = sum_i n_ij / sum_i n_i``, ``Pe = sum_j p_j^2``,
  ``kappa = (P - Pe) / (1 - Pe)``.
- **Krippendorff's alpha** (nominal; Krippendorff 2011): coincidences ``o_ck = sum_u (pairs c-k in unit u)
  / (m_u - 1)``, ``n_c = sum_k o_ck``, ``n = sum_c n_c``; ``alpha = 1 - (n - 1) sum_{c != k} o_ck /
  sum_{c != k} n_c n_k``.

    >>> data = pd.DataFrame({"task": [1, 1, 2, 2], "worker": ["a", "b", "a", "b"], "label": ["x", "x", "y", "y"]})
    >>> fleiss_kappa(data), krippendorff_alpha(data)
    (1.0, 1.0)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.annotate.aggregation.base import answer_frame


def _counts(data: pd.DataFrame) -> np.ndarray:
    """Tasks x labels answer counts, tasks with at least two answers."""
    data = answer_frame(data)
    counts = pd.crosstab(data["task"], data["label"]).to_numpy(dtype=float)
    return counts[counts.sum(axis=1) >= 2]


def fleiss_kappa(data: pd.DataFrame) -> float:
    """Fleiss' kappa (NaN when no task has two answers or everyone used a single label)."""
    counts = _counts(data)
    if not len(counts):
        return float("nan")
    n_i = counts.sum(axis=1)
    p_i = (counts * (counts - 1)).sum(axis=1) / (n_i * (n_i - 1))
    p_j = counts.sum(axis=0) / n_i.sum()
    expected = float((p_j**2).sum())
    if expected >= 1.0:
        return float("nan")
    return float((p_i.mean() - expected) / (1 - expected))


def krippendorff_alpha(data: pd.DataFrame) -> float:
    """Krippendorff's alpha for nominal labels (NaN when there is no pairable disagreement to expect)."""
    counts = _counts(data)
    if not len(counts):
        return float("nan")
    m_u = counts.sum(axis=1, keepdims=True)
    # coincidence matrix: o_ck = sum_u n_uc (n_uk - [c == k]) / (m_u - 1)
    o = (counts / (m_u - 1)).T @ counts - np.diag((counts / (m_u - 1)).sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    observed = o.sum() - np.trace(o)
    expected = n_c.sum() ** 2 - (n_c**2).sum()
    if expected <= 0:
        return float("nan")
    return float(1 - (n - 1) * observed / expected)
