"""The flows as a service: work pools, deployments, per-scene re-crawl schedules, the labels-landed trigger.

Declared here in code (``ferv service deploy`` applies them), not in a ``prefect.yaml``: the schedules, pool
names and event come from the project's validated config (``service`` section), the same layered config
every other command reads, so a user changes a scene's cron in one YAML file and re-deploys; a
``prefect.yaml`` would repeat them in a second, unvalidated place.

| deployment | flow | pool | started by |
|---|---|---|---|
| ``build-candidates/scene`` | build-candidates | ``service.cpu_pool`` | ``prefect deployment run build-candidates/scene -p scene=Interview`` |
| ``build-candidates/recrawl`` | build-candidates | ``service.cpu_pool`` | one cron per scene (``service.recrawl``); incremental |
| ``annotate/land`` | annotate | ``service.cpu_pool`` | an operator, when a batch is done |
| ``benchmark/labels-landed`` | benchmark | ``service.gpu_pool`` | the event ``service.labels_event`` |

Re-crawls are incremental: the crawl skips videos it has seen (by id and URL), and build-candidates carries
over the segmentation and face detection of videos an earlier run with the same config processed, so only
new videos are decoded and detected (tasks/face_filter/runner.py, ``reuse_earlier``).

The benchmark deployment carries a deployment trigger (Prefect creates the automation with it): on each
``ferv.labels.landed`` event it runs on the labels manifest the event's resource names (catalog root and
run id), with its other parameters from the deployment.

    >>> [d.full_name for d in apply(load_config())]                           # doctest: +SKIP
    ['build-candidates/scene', 'build-candidates/recrawl', 'annotate/land', 'benchmark/labels-landed']
"""

from __future__ import annotations

import flows.prefect_env  # noqa: F401  (offline defaults before Prefect is imported)

# isort: split
from dataclasses import dataclass, field
from typing import Any

from flows.config import PipelineConfig


@dataclass(frozen=True)
class Deployment:
    """One deployment: ``flow/name``, its entrypoint (``module:flow``), pool, defaults, schedules
    (cron, parameters) and event triggers."""

    flow: str
    name: str
    entrypoint: str
    pool: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: tuple[tuple[str, dict[str, Any]], ...] = ()
    triggers: tuple[dict[str, Any], ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.flow}/{self.name}"


def _event_param(key: str) -> str:
    """A trigger parameter filled from the event's resource label ``key`` when the trigger fires."""
    return "{{ event.resource['" + key + "'] }}"


def plan(
    cfg: PipelineConfig,
    preset: str = "default",
    config_file: str | None = None,
    overrides: list[str] | None = None,
) -> list[Deployment]:
    """The deployments for ``cfg`` (run with the same preset, config file and overrides)."""
    svc = cfg.service
    common = {"preset": preset, "config_file": config_file, "overrides": list(overrides or [])}
    recrawl = tuple((cron, {"scene": scene, "crawl": True}) for scene, cron in sorted(svc.recrawl.items()))
    return [
        Deployment(
            "build-candidates",
            "scene",
            "flows.build_candidates:build_candidates",
            svc.cpu_pool,
            "Candidate clips for one scene: crawl, segment, face filter, refine, subsample.",
            parameters=common,
        ),
        Deployment(
            "build-candidates",
            "recrawl",
            "flows.build_candidates:build_candidates",
            svc.cpu_pool,
            "Scheduled incremental re-crawl of one scene; only new videos go through the stages.",
            parameters=common,
            schedules=recrawl,
        ),
        Deployment(
            "annotate",
            "land",
            "flows.annotate:annotate",
            svc.cpu_pool,
            "Aggregate the accepted answers into labels and announce them (the labels-landed event).",
            parameters=common,
        ),
        Deployment(
            "benchmark",
            "labels-landed",
            "flows.benchmark:benchmark",
            svc.gpu_pool,
            "Train and evaluate the configured baselines on labels that just landed.",
            parameters=common,
            triggers=(
                {
                    "expect": [svc.labels_event],
                    "parameters": {
                        "catalog_root": _event_param("ferv.catalog"),
                        "labels_run_id": _event_param("ferv.run_id"),
                    },
                },
            ),
        ),
    ]


def _runner_deployment(dep: Deployment, timezone: str):
    import importlib

    from prefect.deployments.runner import EntrypointType
    from prefect.events import DeploymentEventTrigger
    from prefect.schedules import Cron

    module, name = dep.entrypoint.split(":")
    flow_obj = getattr(importlib.import_module(module), name)
    return flow_obj.to_deployment(
        name=dep.name,
        work_pool_name=dep.pool,
        description=dep.description,
        parameters=dep.parameters,
        schedules=[Cron(cron, timezone=timezone, parameters=p) for cron, p in dep.schedules] or None,
        triggers=[
            DeploymentEventTrigger(name=f"{dep.full_name} on {t['expect'][0]}", **t) for t in dep.triggers
        ]
        or None,
        tags=["ferv"],
        # Workers import the installed package (`flows.build_candidates`), so Dask workers, which
        # unpickle the tasks, can import them too; a file-path entrypoint would load the flow under a
        # module name nothing else can import.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def ensure_pools(cfg: PipelineConfig) -> list[str]:
    """Create the CPU and GPU process work pools where missing; return their names."""
    import asyncio
    import contextlib

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    names = list(dict.fromkeys([cfg.service.cpu_pool, cfg.service.gpu_pool]))

    async def create() -> None:
        async with get_client() as client:
            for name in names:
                with contextlib.suppress(ObjectAlreadyExists):
                    await client.create_work_pool(WorkPoolCreate(name=name, type="process"))

    asyncio.run(create())
    return names


def apply(
    cfg: PipelineConfig,
    preset: str = "default",
    config_file: str | None = None,
    overrides: list[str] | None = None,
) -> list[Deployment]:
    """Create the pools and register (create or update) every deployment of :func:`plan` with the
    Prefect API in ``PREFECT_API_URL``. Workers run the flows from the installed package (``make install``
    on every worker machine). Returns the deployments registered."""
    ensure_pools(cfg)
    deployments = plan(cfg, preset, config_file, overrides)
    for dep in deployments:
        _runner_deployment(dep, cfg.service.timezone).apply()
    return deployments
