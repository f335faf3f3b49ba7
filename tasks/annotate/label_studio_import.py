"""Answers labelled in Label Studio join the catalog and are checked like the web app's, so they can land.

:func:`data_catalog.formats.label_studio.import_annotations` turns Label Studio's JSON export into
``answers`` rows; :func:`add_answers` adds the new ones to the batch and scores the copies:

- **Adding, idempotently.** An answer's id is Label Studio's task and annotation id, so answers already
  in the batch are skipped and only new ones are written, in a part named after them. Importing the same
  export twice adds nothing; a second export of the same batch and round adds its new answers beside the
  first import's (nothing is replaced).
- **Scoring.** Gold travels with the tasks (``annotation_tasks.gold``): the PRs' answers on gold tasks are
  the gold labels, wherever they were given (web app or Label Studio). Every copy a CA finished in Label
  Studio (an answer for each of its items in the round) gets the flag-recapture score of
  :func:`tasks.annotate.recapture.score_copy`, written as ``group_checks`` (part ``label-studio``).
- **Review.** Label Studio has no review step of its own, so by default an AC copy is accepted on its
  score (``pr_decision = 'accept'``, reviewer ``flag-recapture``); IP copies wait for a PR's relabel (a
  PR labels the copy's items in Label Studio; imported with ``--pr``, that relabel completes the copy);
  UA copies go back to the crowd (label them again and import with ``--round`` one higher).

    >>> result = import_annotations("export.json", tasks, roles={"ls-7": "PR"})      # doctest: +SKIP
    >>> summary = add_answers(catalog, result.answers, tasks, "b0001", cfg, ctx)
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from data_catalog.io import Catalog, PartRef
from data_catalog.lineage import RunContext
from tasks.annotate.config import AnnotateConfig
from tasks.annotate.recapture import score_copy
from tasks.annotate.workflow import gold_labels

STAGE = "annotate.label_studio"
SOURCE = "label_studio"
CHECKS_PART = "label-studio"
#: The reviewer of a copy accepted on its score alone (Label Studio has no review step).
AUTO_REVIEWER = "flag-recapture"


@dataclass(frozen=True)
class ImportSummary:
    """What an import added and how the Label Studio copies of the batch stand now."""

    n_new: int  # answers added by this import
    n_known: int  # answers of this export that the batch already had
    refs: list[PartRef] = field(default_factory=list)
    verdicts: dict[str, int] = field(default_factory=dict)  # scored copies per verdict
    n_unfinished: int = 0  # (copy, round)s a CA has not finished yet
    n_without_gold: int = 0  # scored copies whose gold items have no PR label yet


def _part_name(answer_ids: pd.Series, round_: int) -> str:
    digest = hashlib.sha256("\n".join(sorted(answer_ids)).encode()).hexdigest()[:12]
    return f"label-studio-r{round_}-{digest}"


def copy_checks(
    answers: pd.DataFrame, tasks: pd.DataFrame, cfg: AnnotateConfig, auto_accept: bool = True
) -> tuple[pd.DataFrame, int]:
    """``group_checks`` rows (no lineage) of every finished CA copy among ``answers`` (all the batch's
    answers; the Label Studio ones are scored), and the count of unfinished ones."""
    gold = gold_labels(answers, tasks)
    size = tasks.groupby(["group_id", "copy"])["task_id"].nunique()
    ca = answers[(answers["role"] == "CA") & (answers["source"] == SOURCE)]
    rows, unfinished = [], 0
    for (group, copy, round_), copy_answers in ca.groupby(["group_id", "copy", "round"], sort=True):
        # One CA finishes a copy; where several answered it, the one with most answers (then first) counts.
        counts = copy_answers.groupby("annotator_id")["task_id"].nunique()
        first = copy_answers.groupby("annotator_id")["answered_at"].min()
        who = min(counts.index, key=lambda a: (-counts[a], first[a]))
        mine = copy_answers[copy_answers["annotator_id"] == who]
        mine = mine.sort_values("answered_at", kind="stable").drop_duplicates("task_id", keep="last")
        if len(mine) < size.get((group, copy), 0):
            unfinished += 1
            continue
        score = score_copy(mine[["clip_id", "word", "label"]], gold, cfg)
        accepted = auto_accept and score.verdict == "AC"
        rows.append(
            {
                "group_id": group, "copy": int(copy), "round": int(round_), "scene": mine["scene"].iat[0],
                "annotator_id": who, "n_items": score.n_items, "n_gold": score.n_gold,
                "n_gold_answered": score.n_gold_answered, "n_gold_correct": score.n_gold_correct,
                "estimate": score.estimate, "ci_low": score.ci_low, "ci_high": score.ci_high,
                "verdict": score.verdict, "pr_decision": "accept" if accepted else None,
                "reviewer_id": AUTO_REVIEWER if accepted else None,
                "feedback": "accepted on its flag-recapture score (no review step in Label Studio)"
                if accepted else None,
            }
        )  # fmt: skip
    return pd.DataFrame(rows), unfinished


def add_answers(
    catalog: Catalog,
    answers: pd.DataFrame,
    tasks: pd.DataFrame,
    batch_id: str,
    round_: int,
    cfg: AnnotateConfig,
    ctx: RunContext,
    auto_accept: bool = True,
) -> ImportSummary:
    """Add the new imported ``answers`` to ``batch_id`` and rescore the batch's Label Studio copies."""
    existing = catalog.read("answers", run_id=batch_id)
    known = answers["answer_id"].isin(set(existing["answer_id"]) if len(existing) else set())
    new = answers[~known]
    lineage = ctx.lineage(STAGE)
    parts = [
        ("answers", rows.assign(**lineage), str(scene), batch_id, _part_name(rows["answer_id"], round_))
        for scene, rows in new.groupby("scene", sort=True)
    ]
    everything = pd.concat([existing, new], ignore_index=True) if len(existing) else new
    checks, unfinished = copy_checks(everything, tasks, cfg, auto_accept)
    parts += [
        ("group_checks", rows.assign(**lineage), str(scene), batch_id, CHECKS_PART)
        for scene, rows in (checks.groupby("scene", sort=True) if len(checks) else [])
    ]
    refs = catalog.write_parts(parts)
    return ImportSummary(
        n_new=len(new),
        n_known=int(known.sum()),
        refs=refs,
        verdicts=dict(Counter(checks["verdict"])) if len(checks) else {},
        n_unfinished=unfinished,
        n_without_gold=int((checks["n_gold_answered"] == 0).sum()) if len(checks) else 0,
    )
