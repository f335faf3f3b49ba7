"""The review workflow of one group copy, as pure functions (paper, section 3.2, Figure 3(c)).

"The IP and AC groups will be passed to PRs for judgement. In this step, PRs only need to decide whether
the annotation of a group is acceptable. The UA ones will retreat to CAs and ones still IP will be
relabeled by the PRs." The web app's database and the in-memory simulator both move copies with
:func:`next_step`, so the rules live in one place:

=========================  =====================  ===============================================
verdict of the round       PR decision            next step
=========================  =====================  ===============================================
AC or IP                   none yet               ``pr_review`` (accept / reject + feedback)
AC or IP                   accept                 ``done``: the round's CA answers are accepted
IP                         reject                 ``pr_relabel``: a PR labels the copy's items
AC                         reject                 ``back_to_ca`` (like UA; the PR overruled the gold)
UA                         (none: PRs skip UA)    ``back_to_ca``: another CA, round + 1
any, round >= max rounds   would go back to CA    ``pr_relabel`` (the crowd had its chances)
relabelled by a PR         -                      ``done``: the PR's answers are accepted
=========================  =====================  ===============================================

A copy sent back goes to a CA who has never held a copy of the group (``package.reassign_copy``).
PRs leave feedback with every decision; the CA sees it. Answers say which step they belong to: a PR's
answer on a gold task is a gold label; a PR's answer on another task is a relabel, and carries the copy
and round of the check it resolves (gold items keep their gold label and need no relabel).

    >>> next_step(CopyState(verdict="IP", round=1, pr_decision="reject"))
    'pr_relabel'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from tasks.annotate.recapture import VERDICTS

Step = Literal["pr_review", "back_to_ca", "pr_relabel", "done"]
STEPS: tuple[Step, ...] = ("pr_review", "back_to_ca", "pr_relabel", "done")
DECISIONS = ("accept", "reject")


@dataclass(frozen=True)
class CopyState:
    """Where one (group, copy) stands after its latest round was scored."""

    verdict: str  # of the latest CA round: 'AC', 'IP', 'UA'
    round: int = 1  # 1 = first CA pass, 2.. = CA rounds after being sent back
    pr_decision: str | None = None  # 'accept' / 'reject' once a PR reviewed this round
    relabelled: bool = False  # a PR has labelled this copy's items after rejecting it


def next_step(state: CopyState, max_ca_rounds: int = 3) -> Step:
    """What happens to a copy next (see the table in the module docstring)."""
    if state.verdict not in VERDICTS:
        raise ValueError(f"verdict {state.verdict!r}: expected one of {', '.join(VERDICTS)}")
    if state.pr_decision is not None and state.pr_decision not in DECISIONS:
        raise ValueError(f"PR decision {state.pr_decision!r}: expected one of {', '.join(DECISIONS)} or None")
    if state.round < 1:
        raise ValueError(f"round {state.round}: CA rounds start at 1")
    if state.relabelled:
        return "done"
    if state.verdict == "UA" or (state.verdict == "AC" and state.pr_decision == "reject"):
        return "back_to_ca" if state.round < max_ca_rounds else "pr_relabel"
    if state.pr_decision is None:
        return "pr_review"
    return "done" if state.pr_decision == "accept" else "pr_relabel"


def accepted_answers(
    answers: pd.DataFrame, checks: pd.DataFrame, tasks: pd.DataFrame, max_ca_rounds: int = 3
) -> pd.DataFrame:
    """The answers that feed aggregation: the PRs' gold labels, the CA answers of every accepted copy
    round and the PRs' relabels of copies they rejected. ``answers`` and ``checks`` are the ``answers``
    and ``group_checks`` manifests (any extra columns), ``tasks`` the ``annotation_tasks`` rows.

    A copy contributes only when its latest scored round is finished (``next_step`` is ``done``, or a
    relabel exists); copies still under review contribute nothing yet.
    """
    gold_tasks = set(tasks.loc[tasks["gold"].astype(bool), "task_id"])
    is_pr = answers["role"] == "PR"
    on_gold = answers["task_id"].isin(gold_tasks)
    keep = is_pr & on_gold  # the gold labels
    if len(checks):
        latest = checks.sort_values("round").drop_duplicates(["group_id", "copy"], keep="last")
        key = ["group_id", "copy", "round"]
        relabels = answers.loc[is_pr & ~on_gold, key].drop_duplicates().assign(relabelled=True)
        latest = latest.merge(relabels, on=key, how="left")
        latest["relabelled"] = latest["relabelled"].astype("boolean").fillna(False).astype(bool)
        latest["step"] = [
            next_step(
                CopyState(
                    r.verdict, int(r.round), None if pd.isna(r.pr_decision) else r.pr_decision, r.relabelled
                ),
                max_ca_rounds,
            )
            for r in latest.itertuples()
        ]
        done = latest[latest["step"] == "done"]
        ca_ok = done[~done["relabelled"]][key].assign(_ca=True)
        pr_ok = done[done["relabelled"]][key].assign(_pr=True)
        flags = answers[key].merge(ca_ok, on=key, how="left").merge(pr_ok, on=key, how="left")
        keep |= (~is_pr & flags["_ca"].eq(True).to_numpy()) | (
            is_pr & ~on_gold & flags["_pr"].eq(True).to_numpy()
        )
    return answers[keep].reset_index(drop=True)


def gold_labels(answers: pd.DataFrame, tasks: pd.DataFrame) -> dict[str, str]:
    """clip_id -> the PRs' label of each gold clip: the earliest PR answer on one of its gold tasks
    that is not PASS (a gold clip only PASSed by PRs has no gold label and is scored as a normal item)."""
    gold_tasks = set(tasks.loc[tasks["gold"].astype(bool), "task_id"])
    pr = answers[(answers["role"] == "PR") & answers["task_id"].isin(gold_tasks) & answers["label"].notna()]
    if "answered_at" in pr.columns:
        pr = pr.sort_values("answered_at", kind="stable")
    first = pr.drop_duplicates("clip_id", keep="first")
    return dict(zip(first["clip_id"], first["label"], strict=True))
