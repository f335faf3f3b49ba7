"""Labels land: accepted answers -> one expression per clip -> the ``labels`` manifest -> an event to emit.

Paper, section 3.2: after review, "the Weighted-Winner-take-all (WWTa) voting method is used for
generating final facial expression labels". :func:`aggregate` takes the accepted answers
(``workflow.accepted_answers``: PR gold labels, CA answers of accepted copies, PR relabels), votes per clip
with the configured aggregator (``annotate.method``: WWTa by default; majority vote or Dawid-Skene), and
returns ``labels`` rows with the vote share, confidence, vote count and word distribution, plus
agreement statistics of the accepted CA answers. :func:`land` writes them atomically, one part per scene
under ``run=<run_id>`` (a rerun replaces the same parts: nothing duplicates), and returns the event
``ferv.labels.landed`` that starts the benchmark, built but not sent (``LandedEvent.sent`` is False): the
flow that ran the landing emits it (flows/labels_event.py), so nothing in this stage talks to Prefect.

    >>> result = land(Catalog(root), cfg.annotate, ctx, batch_id="b0001")    # doctest: +SKIP
    >>> result.event.resource["prefect.resource.id"]
    'ferv.labels.b0001'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from data_catalog.io import Catalog, PartRef
from data_catalog.lineage import RunContext
from keywords.taxonomy import Taxonomy, load_taxonomy
from tasks.annotate.aggregation import MajorityVote, WWTa, create_aggregator
from tasks.annotate.aggregation.agreement import fleiss_kappa, krippendorff_alpha
from tasks.annotate.aggregation.base import answer_frame, word_distribution
from tasks.annotate.config import AnnotateConfig
from tasks.annotate.package import batch_tasks
from tasks.annotate.workflow import accepted_answers, gold_labels

STAGE = "annotate.aggregate"
LABELS_EVENT = "ferv.labels.landed"


def vote_frame(answers: pd.DataFrame) -> pd.DataFrame:
    """``answers`` rows -> an aggregator's frame (task = clip, worker = annotator, label, word, role);
    an annotator's latest answer per clip counts (a PR relabelling two copies of a group votes once)."""
    frame = answers.rename(columns={"clip_id": "task", "annotator_id": "worker"})
    if "answered_at" in frame.columns:
        frame = frame.sort_values("answered_at", kind="stable")
    frame = frame.drop_duplicates(["task", "worker"], keep="last")
    return frame[["task", "worker", "label", "word", "role"]].reset_index(drop=True)


@dataclass(frozen=True)
class Aggregation:
    """``labels`` rows (no lineage), the accepted answers they came from, the clips without a vote and
    agreement of the accepted CA answers (Fleiss' kappa, Krippendorff's alpha)."""

    labels: pd.DataFrame
    accepted: pd.DataFrame
    unlabelled: list[str]
    agreement: dict[str, float]


def aggregate(
    answers: pd.DataFrame,
    tasks: pd.DataFrame,
    checks: pd.DataFrame,
    cfg: AnnotateConfig,
    method: str | None = None,
    taxonomy: Taxonomy | None = None,
) -> Aggregation:
    """Vote the accepted answers into one label per clip (see the module docstring)."""
    tax = taxonomy or load_taxonomy()
    method = method or cfg.method
    accepted = accepted_answers(answers, checks, tasks, cfg.max_ca_rounds)
    gold = gold_labels(answers, tasks)
    clips = tasks.drop_duplicates("clip_id").set_index("clip_id")
    predicted = {c: p for c, p in clips["predicted_label"].items() if isinstance(p, str)}
    frame = answer_frame(vote_frame(accepted))
    columns = ["clip_id", "scene", "scenario", "label", "label_index", "source", "split", "method"]
    columns += ["vote_share", "confidence", "n_votes", "word_distribution"]
    if frame.empty:
        rows = pd.DataFrame(columns=columns)
    else:
        agg = create_aggregator(method, tax.expressions, cfg).fit(frame, gold=gold, predicted=predicted)
        index = agg.labels_.index
        if isinstance(agg, WWTa):
            share, words = agg.vote_share_, agg.word_distribution_
        else:  # unweighted share of the winning label, unweighted word shares
            counts = MajorityVote(labels=list(tax.expressions)).fit(frame).probas_
            share = pd.Series([counts.at[t, agg.labels_[t]] for t in index], index=index, dtype=float)
            words = word_distribution(frame, pd.Series(1.0, index=frame["worker"].unique()))
        confidence = [float(agg.probas_.at[t, agg.labels_[t]]) for t in index]
        scenes = clips.loc[index, "scene"].to_numpy()
        rows = pd.DataFrame(
            {
                "clip_id": index.to_numpy(),
                "scene": scenes,
                "scenario": [tax.scene(s).scenario for s in scenes],
                "label": agg.labels_.to_numpy(),
                "label_index": [tax.expression_index(lab) for lab in agg.labels_],
                "source": method,
                "split": None,
                "method": method,
                "vote_share": share.reindex(index).to_numpy(dtype=float),
                "confidence": confidence,
                "n_votes": frame.groupby("task").size().reindex(index).to_numpy(),
                "word_distribution": [list(words[t].items()) for t in index],
            },
            columns=columns,
        )
    ca = frame[frame["role"] != "PR"]
    agreement = {"fleiss_kappa": fleiss_kappa(ca), "krippendorff_alpha": krippendorff_alpha(ca)}
    unlabelled = sorted(set(clips.index) - set(rows["clip_id"]))
    return Aggregation(rows.reset_index(drop=True), accepted, unlabelled, agreement)


@dataclass(frozen=True)
class LandedEvent:
    """The ``ferv.labels.landed`` event: built by :func:`land`, sent by the flow (``sent`` says whether)."""

    event: str
    resource: dict[str, str]
    payload: dict[str, object] = field(default_factory=dict)
    sent: bool = False


def labels_landed_event(
    catalog_root: str | os.PathLike,
    run_id: str,
    payload: Mapping[str, object] | None = None,
    event: str = LABELS_EVENT,
) -> LandedEvent:
    """The (unsent) event announcing labels run ``run_id`` of the catalog at ``catalog_root``."""
    resource = {
        "prefect.resource.id": f"ferv.labels.{run_id}",
        "ferv.catalog": str(Path(catalog_root).resolve()),  # read by workers elsewhere: never relative
        "ferv.manifest": "labels",
        "ferv.run_id": run_id,
    }
    return LandedEvent(event, resource, dict(payload or {}))


def _labels_table(rows: pd.DataFrame) -> pa.Table:
    """Rows -> an Arrow table with ``word_distribution`` typed as a map (pandas cannot infer one)."""
    words = pa.array(rows["word_distribution"].tolist(), type=pa.map_(pa.string(), pa.float64()))
    table = pa.Table.from_pandas(rows.drop(columns="word_distribution"), preserve_index=False)
    return table.append_column("word_distribution", words)


@dataclass(frozen=True)
class LandResult:
    run_id: str
    refs: list[PartRef]
    aggregation: Aggregation
    event: LandedEvent


def land(
    catalog: Catalog,
    cfg: AnnotateConfig,
    ctx: RunContext,
    batch_id: str | None = None,
    method: str | None = None,
    event: str = LABELS_EVENT,
) -> LandResult:
    """Aggregate the catalog's answers of ``batch_id`` (all batches when None) into ``labels`` parts under
    ``run=<ctx.run_id>``; the result carries the landed event for the caller to emit."""
    tasks = batch_tasks(catalog, batch_id)
    answers = catalog.read("answers", latest=True)
    answers = answers[answers["task_id"].isin(set(tasks["task_id"]))]
    checks = catalog.read("group_checks", latest=True)
    checks = checks[checks["group_id"].isin(set(tasks["group_id"]))]
    result = aggregate(answers, tasks, checks, cfg, method)
    if result.labels.empty:
        raise ValueError(
            f"no accepted answers for {f'batch {batch_id!r}' if batch_id else 'any batch'} in {catalog.root}: "
            f"{len(result.unlabelled)} clips still unlabelled; nothing landed and no event sent"
        )
    lineage = ctx.lineage(STAGE)
    # A rerun replaces this run's parts: a scene that no longer has labels loses its old part.
    for old in catalog.part_files("labels", run_id=ctx.run_id):
        if old.parent.parent.name.removeprefix("scene=") not in set(result.labels["scene"]):
            old.unlink()
    refs = [
        catalog.write("labels", _labels_table(rows.assign(**lineage)), scene=str(scene), run_id=ctx.run_id)
        for scene, rows in result.labels.groupby("scene", sort=True)
    ]
    payload = {
        "n_labels": len(result.labels),
        "n_unlabelled": len(result.unlabelled),
        "scenes": sorted({r.scene for r in refs}),
        "method": method or cfg.method,
        "batch_id": batch_id,
        **{k: None if v != v else round(v, 4) for k, v in result.agreement.items()},
    }
    return LandResult(ctx.run_id, refs, result, labels_landed_event(catalog.root, ctx.run_id, payload, event))
