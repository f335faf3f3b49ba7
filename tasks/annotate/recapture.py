"""Flag-recapture scoring of one group copy (paper, section 3.2, citing Bell 1974).

The paper checks each crowd copy "via Flag-Recaptured Statistic method" with thresholds 80% and 40%.
Here is exactly what is computed.

- **Flagged**: the copy's gold items, those a professional researcher (PR) labelled first (``gold_truth``,
  clip -> expression; a gold item the PR passed is not gold).
- **Recaptured**: the gold items the crowd annotator (CA) answered with a word (PASS is not a recapture).
  ``g`` were recaptured, ``k`` of them correctly (same expression as the PR's; a different word for the
  same expression counts as correct).
- **Population**: the ``N`` items of the copy the CA answered with a word. The quantity estimated is the
  copy's correct rate ``theta = (correct answers among the N) / N``, i.e. how much of what this copy
  contributes is right.
- **Model**: the CA cannot tell gold from other items, so the ``g`` recaptured items are a random sample
  without replacement from the ``N``. Correctness is exchangeable with rate ``p ~ Beta(a, b)`` (Jeffreys
  prior, ``a = b = 0.5``, config ``prior_correct`` / ``prior_wrong``); after the recaptures
  ``p ~ Beta(a + k, b + g - k)`` and the ``X`` correct answers among the ``N - g`` unchecked items follow
  ``BetaBinomial(N - g, a + k, b + g - k)``. So ``theta = (k + X) / N``: the finite-population posterior.
  With ``g = N`` it is exactly ``k / N``; for large ``N`` it tends to the Beta posterior.
- **Estimate**: the posterior mean, ``(k + (N - g) (a + k) / (a + b + g)) / N``.
- **Interval**: equal-tailed, mass ``interval`` (0.95): ``ci_low = (k + x_lo) / N`` with ``x_lo`` the
  smallest ``x`` whose BetaBinomial CDF reaches ``(1 - interval) / 2``; ``ci_high`` likewise at
  ``(1 + interval) / 2``. With no recaptures at all (Bell 1974's case) the posterior is the prior
  spread over ``N`` items: estimate 0.5, a wide interval. A copy answered PASS throughout (``N = 0``)
  contributes no correct answer: estimate and interval 0, verdict UA (a defined score, so the copy can be
  stored, exported and sent back like any other UA copy).
- **Verdict** (``accept`` = 0.8, ``improper`` = 0.4), the interval used explicitly so that little
  evidence never decides alone:
  AC if ``estimate >= accept`` and ``ci_low >= improper``; UA if ``estimate < improper`` and
  ``ci_high < accept``; IP otherwise.

For a copy of 50 answered items and 3 recaptured gold: 3/3 correct -> AC (0.88, [0.48, 1.0]); 2/3 -> IP;
1/3 -> IP (0.37, but ``ci_high`` 0.82: too little evidence to send it back); 0/3 -> UA (0.12, [0, 0.52]).

    >>> s = score_copy(answers, {"clip-a": "Happy"}, AnnotateConfig())        # doctest: +SKIP
    >>> s.verdict, s.estimate, (s.ci_low, s.ci_high)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from tasks.annotate.config import AnnotateConfig

PASS = "PASS"
VERDICTS = ("AC", "IP", "UA")


@dataclass(frozen=True)
class CopyScore:
    """The flag-recapture score of one copy (the ``group_checks`` columns of the same names)."""

    n_items: int  # items in the copy (answers given, PASS included)
    n_gold: int  # gold items among them
    n_gold_answered: int  # gold items answered with a word: the recaptures
    n_gold_correct: int
    estimate: float  # posterior mean of the copy's correct rate (0: nothing answered)
    ci_low: float
    ci_high: float
    verdict: str  # 'AC', 'IP' or 'UA'


def betabinom_pmf(n: int, alpha: float, beta: float) -> list[float]:
    """``P(X = x)`` for ``x = 0..n``, ``X ~ BetaBinomial(n, alpha, beta)``."""

    def lbeta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    base = math.lgamma(n + 1) - lbeta(alpha, beta)
    return [
        math.exp(base - math.lgamma(x + 1) - math.lgamma(n - x + 1) + lbeta(x + alpha, n - x + beta))
        for x in range(n + 1)
    ]


def correct_rate(n: int, g: int, k: int, cfg: AnnotateConfig) -> tuple[float, float, float]:
    """``(estimate, ci_low, ci_high)`` of the correct rate of ``n`` answered items given ``k`` of ``g``
    recaptured gold items correct (see the module docstring)."""
    if not 0 <= k <= g <= n:
        raise ValueError(f"need 0 <= correct ({k}) <= recaptured ({g}) <= answered ({n})")
    if n == 0:  # all PASS: nothing this copy contributes is right
        return 0.0, 0.0, 0.0
    alpha, beta = cfg.prior_correct + k, cfg.prior_wrong + g - k
    pmf = betabinom_pmf(n - g, alpha, beta)
    mean_x = (n - g) * alpha / (alpha + beta)
    tail = (1 - cfg.interval) / 2
    lo = hi = None
    cdf = 0.0
    for x, p in enumerate(pmf):
        cdf += p
        if lo is None and cdf >= tail - 1e-12:
            lo = x
        if hi is None and cdf >= 1 - tail - 1e-12:
            hi = x
    hi = n - g if hi is None else hi
    return (k + mean_x) / n, (k + lo) / n, (k + hi) / n


def verdict(estimate: float, ci_low: float, ci_high: float, cfg: AnnotateConfig) -> str:
    """AC, IP or UA from the estimate and its interval (see the module docstring)."""
    if estimate >= cfg.accept and ci_low >= cfg.improper:
        return "AC"
    if estimate < cfg.improper and ci_high < cfg.accept:
        return "UA"
    return "IP"


def score_copy(answers: pd.DataFrame, gold_truth: Mapping[str, str], cfg: AnnotateConfig) -> CopyScore:
    """Score one copy's CA answers (``clip_id``, ``word``, ``label``; one row per clip) against the PRs'
    labels of the gold items (``gold_truth``: clip_id -> expression)."""
    missing = [c for c in ("clip_id", "word", "label") if c not in answers.columns]
    if missing:
        raise ValueError(f"answers: missing columns {missing}; got {list(answers.columns)}")
    dupes = sorted(set(answers.loc[answers["clip_id"].duplicated(), "clip_id"]))
    if dupes:
        raise ValueError(f"answers: one copy answers each clip once; repeated clips {dupes[:5]}")
    words = answers["word"].astype(str)
    answered = words != PASS
    bad = answers[answered & answers["label"].isna()]
    if len(bad):
        raise ValueError(f"answers: word without a label for clips {bad['clip_id'].tolist()[:5]}")
    truth = {c: t for c, t in gold_truth.items() if t is not None and t == t and t != PASS}
    is_gold = answers["clip_id"].isin(list(truth))
    recaptured = answers[is_gold & answered]
    correct = int((recaptured["label"] == recaptured["clip_id"].map(truth)).sum())
    n, g = int(answered.sum()), len(recaptured)
    estimate, lo, hi = correct_rate(n, g, correct, cfg)
    return CopyScore(
        n_items=len(answers),
        n_gold=int(is_gold.sum()),
        n_gold_answered=g,
        n_gold_correct=correct,
        estimate=estimate,
        ci_low=lo,
        ci_high=hi,
        verdict=verdict(estimate, lo, hi, cfg),
    )
