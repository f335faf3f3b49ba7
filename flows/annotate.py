"""The ``annotate`` flow: aggregate a batch's accepted answers into ``labels`` and announce them.

Paper, section 3.2: after scoring and professional review, WWTa voting gives each clip its expression.
The flow is thin: ``tasks.annotate.land.land`` is the work (a plain function); the flow resolves the
config, runs it as a task, emits the ``service.labels_event`` (``ferv.labels.landed``) event the landing
returns, which triggers the benchmark deployment (flows/labels_event.py), and publishes a markdown summary
artifact. Within a flow run the event always has a server to go to. Rerunning with the same batch replaces the same parts.

    >>> annotate(batch="b0001", overrides=["storage.root=/tmp/ferv"])            # doctest: +SKIP
"""

from __future__ import annotations

# Prefect reads its settings when imported: the offline defaults must be in place first.
import flows.prefect_env  # noqa: F401

# isort: split
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from flows.config import load_config
from flows.labels_event import announce_landing
from tasks.annotate.land import LandResult, land

land_task = task(land, name="aggregate-and-land", cache_policy=NO_CACHE)


def summary_markdown(result: LandResult) -> str:
    """The run's summary: labels per scene, clips still without a label, agreement."""
    agg = result.aggregation
    lines = [f"# Labels landed: run `{result.run_id}`", "", "| scene | labels |", "|---|---|"]
    lines += [f"| {ref.scene} | {ref.rows} |" for ref in result.refs]
    lines += ["", f"- clips without an accepted vote yet: {len(agg.unlabelled)}"]
    lines += [f"- {name}: {value:.3f}" for name, value in agg.agreement.items() if value == value]
    lines += [f"- event `{result.event.event}` sent: {result.event.sent}"]
    return "\n".join(lines) + "\n"


@flow(name="annotate")
def annotate(
    batch: str | None = None,
    method: str | None = None,
    run_id: str | None = None,
    preset: str = "default",
    config_file: str | None = None,
    overrides: list[str] | None = None,
) -> LandResult:
    """Land the labels of ``batch`` (all batches when None) with ``method`` (default ``annotate.method``)
    under ``run_id`` (default ``labels-<batch>``)."""
    log = get_run_logger()
    cfg = load_config(preset=preset, user_file=config_file, overrides=overrides)
    ctx = RunContext.create(cfg.lineage_json(["annotate"]), run_id=run_id or f"labels-{batch or 'all'}")
    result = land_task(
        Catalog(cfg.storage.catalog_dir), cfg.annotate, ctx, batch, method, cfg.service.labels_event
    )
    result = announce_landing(result)
    log.info("%d labels landed in run %s", len(result.aggregation.labels), result.run_id)
    create_markdown_artifact(summary_markdown(result), key="labels-landed", description="Labels landed")
    return result
