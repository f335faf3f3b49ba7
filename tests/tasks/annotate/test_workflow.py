"""The review workflow's state machine and which answers it accepts (paper 3.2, Fig. 3(c))."""

import pandas as pd
import pytest

from tasks.annotate.workflow import CopyState, accepted_answers, gold_labels, next_step


@pytest.mark.parametrize(
    ("state", "step"),
    [
        (CopyState("AC"), "pr_review"),
        (CopyState("IP"), "pr_review"),
        (CopyState("AC", pr_decision="accept"), "done"),
        (CopyState("IP", pr_decision="accept"), "done"),
        (CopyState("IP", pr_decision="reject"), "pr_relabel"),
        (CopyState("AC", pr_decision="reject"), "back_to_ca"),
        (CopyState("UA"), "back_to_ca"),
        (CopyState("UA", round=2), "back_to_ca"),
        (CopyState("UA", round=3), "pr_relabel"),
        (CopyState("AC", round=3, pr_decision="reject"), "pr_relabel"),
        (CopyState("IP", pr_decision="reject", relabelled=True), "done"),
        (CopyState("UA", round=3, relabelled=True), "done"),
    ],
)
def test_next_step_follows_the_table(state, step):
    assert next_step(state, max_ca_rounds=3) == step


def test_bad_states_are_clear_errors():
    with pytest.raises(ValueError, match="verdict 'OK'"):
        next_step(CopyState("OK"))
    with pytest.raises(ValueError, match="PR decision 'maybe'"):
        next_step(CopyState("IP", pr_decision="maybe"))
    with pytest.raises(ValueError, match="round 0"):
        next_step(CopyState("IP", round=0))


def _answer(task, clip, copy, who, role, round_, label):
    return {"task_id": task, "group_id": "g", "copy": copy, "clip_id": clip, "annotator_id": who,
            "role": role, "round": round_, "word": label.lower(), "label": label}  # fmt: skip


def test_accepted_answers_take_accepted_rounds_relabels_and_gold():
    tasks = pd.DataFrame(
        {"task_id": ["g-c0-a", "g-c0-b", "g-c1-a", "g-c1-b", "g-c2-a", "g-c2-b"],
         "gold": [True, False, True, False, True, False]}
    )  # fmt: skip
    answers = pd.DataFrame(
        [
            _answer("g-c0-a", "a", 0, "pr1", "PR", 1, "Happy"),  # gold label
            _answer("g-c0-a", "a", 0, "ca1", "CA", 1, "Happy"),  # copy 0: accepted
            _answer("g-c0-b", "b", 0, "ca1", "CA", 1, "Sad"),
            _answer("g-c1-a", "a", 1, "ca2", "CA", 1, "Angry"),  # copy 1: IP rejected -> relabelled
            _answer("g-c1-b", "b", 1, "ca2", "CA", 1, "Angry"),
            _answer("g-c1-b", "b", 1, "pr2", "PR", 1, "Sad"),
            _answer("g-c2-a", "a", 2, "ca3", "CA", 1, "Fear"),  # copy 2: UA, round 2 still under review
            _answer("g-c2-b", "b", 2, "ca3", "CA", 1, "Fear"),
            _answer("g-c2-a", "a", 2, "ca4", "CA", 2, "Happy"),
            _answer("g-c2-b", "b", 2, "ca4", "CA", 2, "Sad"),
        ]
    )
    checks = pd.DataFrame(
        {"group_id": ["g"] * 4, "copy": [0, 1, 2, 2], "round": [1, 1, 1, 2],
         "verdict": ["AC", "IP", "UA", "IP"], "pr_decision": ["accept", "reject", None, None]}
    )  # fmt: skip
    got = accepted_answers(answers, checks, tasks)
    assert sorted(zip(got["annotator_id"], got["clip_id"], strict=True)) == [
        ("ca1", "a"), ("ca1", "b"), ("pr1", "a"), ("pr2", "b")
    ]  # fmt: skip
    checks.loc[3, "pr_decision"] = "accept"
    got = accepted_answers(answers, checks, tasks)
    assert set(got["annotator_id"]) == {"ca1", "pr1", "pr2", "ca4"}
    assert gold_labels(answers, tasks) == {"a": "Happy"}
