"""Flag-recapture scoring: hand-worked cases of the statistic and the verdict rule."""

import pandas as pd
import pytest

from tasks.annotate.config import AnnotateConfig
from tasks.annotate.recapture import betabinom_pmf, correct_rate, score_copy, verdict

CFG = AnnotateConfig()


def copy_answers(words_labels: list[tuple[str, str, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(words_labels, columns=["clip_id", "word", "label"])


def test_hand_worked_four_items_two_gold_one_correct():
    # Posterior Beta(1.5, 1.5); the 2 unchecked items hold X ~ BetaBinomial(2, 1.5, 1.5) correct answers:
    # P(X=0) = P(X=2) = B(1.5, 3.5) / B(1.5, 1.5) = (15 pi / 384) / (pi / 8) = 0.3125, P(X=1) = 0.375.
    assert betabinom_pmf(2, 1.5, 1.5) == pytest.approx([0.3125, 0.375, 0.3125])
    # theta = (1 + X) / 4: mean 0.5; 2.5% quantile X=0 -> 0.25, 97.5% quantile X=2 -> 0.75.
    assert correct_rate(4, 2, 1, CFG) == pytest.approx((0.5, 0.25, 0.75))
    answers = copy_answers(
        [
            ("g1", "rage", "Angry"),
            ("g2", "pride", "Happy"),
            ("c3", "shock", "Surprise"),
            ("c4", "relief", "Happy"),
        ]
    )
    score = score_copy(answers, {"g1": "Angry", "g2": "Sad"}, CFG)
    assert (score.n_items, score.n_gold, score.n_gold_answered, score.n_gold_correct) == (4, 2, 2, 1)
    assert (score.estimate, score.ci_low, score.ci_high) == pytest.approx((0.5, 0.25, 0.75))
    assert score.verdict == "IP"


def test_every_item_gold_is_exact():
    assert correct_rate(5, 5, 4, CFG) == pytest.approx((0.8, 0.8, 0.8))
    assert verdict(0.8, 0.8, 0.8, CFG) == "AC"


@pytest.mark.parametrize(
    ("correct", "expected"),
    [
        (3, (0.8825, 0.48, 1.0, "AC")),
        (2, (0.6275, 0.18, 0.96, "IP")),
        (1, (0.3725, 0.04, 0.82, "IP")),  # below 40% but too little evidence to send back
        (0, (0.1175, 0.0, 0.52, "UA")),
    ],
)
def test_fifty_items_three_recaptures(correct, expected):
    # mean = (k + 47 (0.5 + k) / 4) / 50
    est, lo, hi = correct_rate(50, 3, correct, CFG)
    assert (est, lo, hi) == pytest.approx(expected[:3])
    assert est == pytest.approx((correct + 47 * (0.5 + correct) / 4) / 50)
    assert verdict(est, lo, hi, CFG) == expected[3]


def test_no_recapture_falls_back_to_the_prior_and_a_pr_looks():
    est, lo, hi = correct_rate(50, 0, 0, CFG)
    assert est == pytest.approx(0.5)
    assert lo < 0.1 and hi > 0.9
    assert verdict(est, lo, hi, CFG) == "IP"


def test_interval_matches_scipy_betabinom():
    stats = pytest.importorskip("scipy.stats")
    for n, g, k in [(50, 3, 2), (40, 5, 4), (7, 2, 0), (120, 6, 6)]:
        dist = stats.betabinom(n - g, 0.5 + k, 0.5 + g - k)
        est, lo, hi = correct_rate(n, g, k, CFG)
        assert est == pytest.approx((k + dist.mean()) / n)
        assert lo == pytest.approx((k + dist.ppf(0.025)) / n)
        assert hi == pytest.approx((k + dist.ppf(0.975)) / n)


def test_pass_is_not_a_recapture_and_a_wrong_word_of_the_right_expression_counts():
    answers = copy_answers([("g1", "PASS", None), ("g2", "irritation", "Angry"), ("c3", "PASS", None)])
    score = score_copy(answers, {"g1": "Happy", "g2": "Angry"}, CFG)
    assert (score.n_items, score.n_gold, score.n_gold_answered, score.n_gold_correct) == (3, 2, 1, 1)
    assert score.estimate == pytest.approx(1.0)  # one answered item, and it is a correct gold item


def test_a_copy_of_only_pass_is_unacceptable():
    score = score_copy(copy_answers([("g1", "PASS", None), ("c2", "PASS", None)]), {"g1": "Sad"}, CFG)
    assert (score.estimate, score.ci_low, score.ci_high, score.verdict) == (0.0, 0.0, 0.0, "UA")


def test_gold_the_pr_passed_is_not_gold():
    answers = copy_answers([("g1", "rage", "Angry"), ("c2", "rage", "Angry")])
    assert score_copy(answers, {"g1": "PASS"}, CFG).n_gold == 0


def test_thresholds_come_from_the_config():
    strict = AnnotateConfig(accept=0.95, improper=0.6)
    assert verdict(0.9, 0.7, 1.0, strict) == "IP"
    assert verdict(0.5, 0.2, 0.96, strict) == "IP"  # ci_high reaches accept: not sure enough
    assert verdict(0.5, 0.2, 0.9, strict) == "UA"
    with pytest.raises(ValueError, match="must be below accept"):
        AnnotateConfig(accept=0.5, improper=0.6)


def test_bad_answers_are_clear_errors():
    with pytest.raises(ValueError, match="missing columns"):
        score_copy(pd.DataFrame({"clip_id": ["a"], "word": ["rage"]}), {}, CFG)
    with pytest.raises(ValueError, match="repeated clips"):
        score_copy(copy_answers([("a", "rage", "Angry"), ("a", "rage", "Angry")]), {}, CFG)
    with pytest.raises(ValueError, match="word without a label"):
        score_copy(copy_answers([("a", "rage", None)]), {}, CFG)
    with pytest.raises(ValueError, match="correct"):
        correct_rate(3, 2, 3, CFG)
