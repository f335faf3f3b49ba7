"""Where the heavy stages run: threads in the flow's process, or a Dask cluster (prefect-dask).

The flows choose; tasks never do (``distribution`` config section). With ``runner: dask`` and no address, a
local cluster of ``workers`` processes starts with the flow and stops with it; with ``dask_address`` the
flow submits to an existing scheduler, so many machines share the work. GPU stages carry the Dask resource
``gpu_resource`` (e.g. ``GPU``) when it is set: only workers started with ``--resources GPU=1`` take them.

    >>> with task_runner(cfg.distribution) as runner:                     # doctest: +SKIP
    ...     futures = [runner.submit(shard_task, params) for params in shards]
    ...     with gpu_stage(cfg.distribution):
    ...         scores = runner.submit(refine_task, params)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

    from flows.config import DistributionConfig


def task_runner(dist: DistributionConfig) -> TaskRunner:
    """A fresh task runner for ``dist`` (use it as a context manager)."""
    if dist.runner == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=dist.workers)
    from prefect_dask import DaskTaskRunner

    if dist.dask_address:
        return DaskTaskRunner(address=dist.dask_address)
    cluster = {"n_workers": dist.workers, "threads_per_worker": 1, "processes": True}
    if dist.gpu_resource:  # a local cluster stands for one machine: its workers share its GPU
        cluster["resources"] = {dist.gpu_resource: 1}
    return DaskTaskRunner(cluster_kwargs=cluster)


@contextlib.contextmanager
def gpu_stage(dist: DistributionConfig) -> Iterator[None]:
    """Tasks submitted inside this block ask Dask for one unit of ``dist.gpu_resource`` (no-op otherwise)."""
    if dist.runner != "dask" or not dist.gpu_resource:
        yield
        return
    import dask

    with dask.annotate(resources={dist.gpu_resource: 1}):
        yield
