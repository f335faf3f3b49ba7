"""The Prefect flow ``crawl`` (stage 1, paper section 3.2): a thin wrapper around tasks/crawl/stage.py.

Two tasks: ``plan`` (discover, dedupe, balance, record) and ``download`` (fetch and verify what is
pending). They meet through the catalog and pass only small summaries. Runs without a server (Prefect's
ephemeral mode) or against one when ``PREFECT_API_URL`` is set.

    >>> crawl(["Terror"], sources=["local:demo/footage"], overrides=["storage.root=/tmp/ferv"])  # doctest: +SKIP
"""

from __future__ import annotations

# Prefect reads its settings when imported: the offline defaults must be in place first.
import flows.prefect_env  # noqa: F401

# isort: split
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from flows.config import load_config
from tasks.crawl.stage import CrawlResult, download_selected, format_report, plan_crawl

# The tasks read and write the catalog themselves, so Prefect should neither cache nor hash their inputs.
plan_task = task(plan_crawl, name="crawl-plan", cache_policy=NO_CACHE)
download_task = task(download_selected, name="crawl-download", cache_policy=NO_CACHE)


@flow(name="crawl")
def crawl(
    scenes: list[str],
    sources: list[str] | None = None,
    retry_failed: bool = False,
    preset: str = "default",
    config_file: str | None = None,
    overrides: list[str] | None = None,
) -> CrawlResult:
    """Crawl ``scenes``: record balanced candidates, then download the pending ones."""
    cfg = load_config(preset=preset, user_file=config_file, overrides=overrides)
    ctx = RunContext.create(cfg.lineage_json(["crawl"]))
    catalog = Catalog(cfg.storage.catalog_dir)
    plan = plan_task(catalog, scenes, cfg.crawl, ctx, sources=sources)
    downloads = download_task(catalog, Path(cfg.storage.media_dir), cfg.crawl, ctx, scenes, retry_failed)
    result = CrawlResult(plan, downloads)
    get_run_logger().info("crawl finished\n%s", format_report(result))
    return result
