"""WWTa, majority vote, Dawid-Skene and agreement: hand-worked cases, ties, published values."""

import math

import numpy as np
import pandas as pd
import pytest

from tasks.annotate.aggregation import DawidSkene, MajorityVote, WWTa, fleiss_kappa, krippendorff_alpha

GOLD = {"g1": "Happy", "g2": "Sad"}


def frame(rows):
    return pd.DataFrame(rows, columns=["task", "worker", "label", "word"])


def skill_rows():
    # a: 2 of 2 gold right; b: 0 of 2; c and d: no gold answered.
    return [
        ("g1", "a", "Happy", "pride"), ("g2", "a", "Sad", "sadness"),
        ("g1", "b", "Angry", "rage"), ("g2", "b", "Fear", "horror"),
    ]  # fmt: skip


def test_wwta_hand_worked_weights_overrule_the_majority():
    data = frame(
        [
            *skill_rows(),
            ("t", "a", "Happy", "relief"),
            ("t", "b", "Sad", "shame"),
            ("t", "c", "Sad", "sadness"),
        ]
    )
    agg = WWTa(labels=["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]).fit(
        data, gold=GOLD
    )
    # acc: a (2+1)/(2+2) = 3/4, b 1/4, c 1/2; weight log(6 acc / (1 - acc)): log 18, log 2, log 6.
    assert agg.skills_.to_dict() == pytest.approx({"a": 0.75, "b": 0.25, "c": 0.5})
    assert agg.weights_.to_dict() == pytest.approx({"a": math.log(18), "b": math.log(2), "c": math.log(6)})
    assert agg.labels_["t"] == "Happy"  # log 18 = 2.89 > log 2 + log 6 = 2.48
    assert MajorityVote().fit(data).labels_["t"] == "Sad"
    # softmax of summed weights: 18 / (18 + 2 * 6 + 5 * 1) = 18 / 35; vote share log 18 / log 216.
    assert agg.confidence_["t"] == pytest.approx(18 / 35)
    assert agg.vote_share_["t"] == pytest.approx(math.log(18) / math.log(216))
    assert agg.n_votes_["t"] == 3
    words = agg.word_distribution_["t"]
    assert list(words) == ["relief", "sadness", "shame"]
    assert words["relief"] == pytest.approx(math.log(18) / math.log(216))
    assert agg.tie_break_["t"] == "none"


def tie_data():
    # a and d are equally skilled (2/2 gold) and disagree on t.
    return frame(
        [*skill_rows(), ("g1", "d", "Happy", "pride"), ("g2", "d", "Sad", "shame"),
         ("t", "a", "Happy", "pride"), ("t", "d", "Surprise", "shock")]
    )  # fmt: skip


def test_wwta_tie_goes_to_the_prediction_then_alphabetical():
    data = tie_data()
    agg = WWTa().fit(data, gold=GOLD, predicted={"t": "Surprise"})
    assert (agg.labels_["t"], agg.tie_break_["t"]) == ("Surprise", "prediction")
    agg = WWTa().fit(data, gold=GOLD, predicted={"t": "Angry"})
    assert (agg.labels_["t"], agg.tie_break_["t"]) == ("Happy", "alphabetical")
    assert agg.vote_share_["t"] == pytest.approx(0.5)


def test_a_tie_goes_to_the_pr_label_first():
    data = frame([("t", "a", "Happy", "pride"), ("t", "d", "Surprise", "shock")])
    mv = MajorityVote().fit(data, gold={"t": "Surprise"}, predicted={"t": "Happy"})
    assert (mv.labels_["t"], mv.tie_break_["t"]) == ("Surprise", "pr")
    with_pr = pd.concat(
        [data.assign(role="CA"), frame([("t", "pr1", "Surprise", "shock")]).assign(role="PR")]
    )
    mv = MajorityVote().fit(with_pr.iloc[[0, 2]], predicted={"t": "Happy"})
    assert (mv.labels_["t"], mv.tie_break_["t"]) == ("Surprise", "pr")


def test_a_pr_vote_outweighs_a_ca_and_split_prs_do_not_break_ties():
    data = tie_data().assign(role="CA")
    pr = frame([("t", "pr1", "Neutral", "calmness"), ("t", "pr2", "Angry", "rage")]).assign(role="PR")
    agg = WWTa().fit(pd.concat([data, pr.iloc[[0]]]), gold=GOLD)
    assert agg.labels_["t"] == "Neutral" and agg.skills_["pr1"] == pytest.approx(0.95)
    mv = MajorityVote().fit(pd.concat([data, pr]), gold=GOLD, predicted={"t": "Fear"})
    assert (mv.labels_["t"], mv.tie_break_["t"]) == ("Angry", "alphabetical")


def test_pass_rows_do_not_vote_and_bad_frames_are_clear_errors():
    data = frame([("t", "a", "Happy", "pride"), ("t", "b", None, "PASS")])
    assert WWTa().fit(data).n_votes_["t"] == 1
    with pytest.raises(ValueError, match="missing columns"):
        WWTa().fit(pd.DataFrame({"task": ["t"], "label": ["Happy"]}))
    with pytest.raises(ValueError, match="answered task 't' 2 times"):
        MajorityVote().fit(frame([("t", "a", "Happy", "pride"), ("t", "a", "Sad", "shame")]))
    with pytest.raises(ValueError, match="unknown labels"):
        MajorityVote(labels=["Happy"]).fit(frame([("t", "a", "Sad", "shame")]))


def test_dawid_skene_learns_a_systematic_confuser():
    # 'flip' always answers the other label; with gold anchoring DS learns that and uses it.
    rng = np.random.default_rng(0)
    truth = {f"t{i}": ("x" if rng.random() < 0.5 else "y") for i in range(200)}
    rows = []
    for t, y in truth.items():
        rows.append((t, "good", y if rng.random() < 0.7 else ("y" if y == "x" else "x")))
        rows.append((t, "flip", "y" if y == "x" else "x"))
        rows.append((t, "noise", "x" if rng.random() < 0.5 else "y"))
    data = pd.DataFrame(rows, columns=["task", "worker", "label"])
    gold = dict(list(truth.items())[:20])
    ds = DawidSkene().fit(data, gold=gold)
    mv = MajorityVote().fit(data)
    acc = lambda labels: np.mean([labels[t] == y for t, y in truth.items()])  # noqa: E731
    assert acc(ds.labels_) > 0.97 > acc(mv.labels_) + 0.3
    assert ds.errors_["flip"].loc["x", "y"] > 0.95
    assert ds.probas_.sum(axis=1).to_numpy() == pytest.approx(1.0)


def test_krippendorff_alpha_matches_the_published_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units, nominal 0.743.
    coders = {
        "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    }
    rows = [(u, c, str(v)) for c, vals in coders.items() for u, v in enumerate(vals) if v is not None]
    assert krippendorff_alpha(pd.DataFrame(rows, columns=["task", "worker", "label"])) == pytest.approx(
        0.743, abs=5e-4
    )


def test_fleiss_kappa_matches_the_published_example():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories, kappa 0.210.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]  # fmt: skip
    rows = []
    for i, counts in enumerate(table):
        raters = iter(range(14))
        rows += [(i, f"r{next(raters)}", f"c{j}") for j, n in enumerate(counts) for _ in range(n)]
    assert fleiss_kappa(pd.DataFrame(rows, columns=["task", "worker", "label"])) == pytest.approx(
        0.210, abs=5e-4
    )


def test_perfect_agreement_and_no_pairs():
    same = pd.DataFrame({"task": [1, 1, 2, 2], "worker": ["a", "b", "a", "b"], "label": ["x", "x", "y", "y"]})
    assert fleiss_kappa(same) == 1.0 and krippendorff_alpha(same) == 1.0
    single = pd.DataFrame({"task": [1, 2], "worker": ["a", "a"], "label": ["x", "y"]})
    assert math.isnan(fleiss_kappa(single)) and math.isnan(krippendorff_alpha(single))


def test_every_list_of_methods_comes_from_the_registry():
    """One registry: a method registered once is accepted by the config and named by the CLI's help."""
    from typer.testing import CliRunner

    from flows.cli import app
    from tasks.annotate.aggregation import AGGREGATORS, MajorityVote, create_aggregator
    from tasks.annotate.config import AnnotateConfig

    assert AGGREGATORS.names() == ["dawid_skene", "majority", "wwta"]
    with pytest.raises(ValueError, match="unknown aggregation method 'first_vote'; expected one of"):
        AnnotateConfig(method="first_vote")
    AGGREGATORS.register("first_vote")(lambda labels, cfg: MajorityVote(labels=labels))
    try:
        assert AnnotateConfig(method="first_vote").method == "first_vote"
        agg = create_aggregator("first_vote", ["Happy", "Sad"], AnnotateConfig())
        assert isinstance(agg, MajorityVote) and agg.labels == ["Happy", "Sad"]
    finally:
        AGGREGATORS._factories.pop("first_vote")
    help_text = CliRunner().invoke(app, ["annotate", "land", "--help"]).output
    assert "dawid_skene, majority, wwta" in " ".join(help_text.split())
