"""``ferv service ...``: run the flows as a service (Prefect server, work pools, deployments, workers).

``server`` and ``worker`` start Prefect's own commands with the project's offline defaults (no telemetry,
no update checks; flows/prefect_env.py) in their environment; ``deploy`` registers flows/deployments.py.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from flows.cli.options import ConfigRequest, with_config

service_app = typer.Typer(
    help="Run the flows as a service: Prefect server, work pools, deployments, workers."
)


def _exec_prefect(*args: str) -> None:
    """Replace this process with ``python -m prefect <args>``, the offline defaults in its environment."""
    import flows.prefect_env as env

    env.configure()
    argv = [sys.executable, "-m", "prefect", *args]
    typer.echo("$ prefect " + " ".join(args), err=True)
    os.execve(sys.executable, argv, dict(os.environ))


@service_app.command("server")
def server(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the API and UI.")] = 4200,
) -> None:
    """Start a Prefect server (SQLite under PREFECT_HOME, or PREFECT_API_DATABASE_CONNECTION_URL)."""
    _exec_prefect("server", "start", "--host", host, "--port", str(port))


@service_app.command("deploy")
@with_config
def deploy(config: ConfigRequest) -> None:
    """Create the work pools and register every deployment with the server in PREFECT_API_URL."""
    from flows.deployments import apply

    cfg = config.resolve()
    if not os.environ.get("PREFECT_API_URL"):
        raise typer.BadParameter(
            "set PREFECT_API_URL to the server's API (e.g. http://127.0.0.1:4200/api) first", param_hint="env"
        )
    deployments = apply(cfg, **config.flow_parameters())
    for dep in deployments:
        when = f"{len(dep.schedules)} schedules" if dep.schedules else ""
        when = when or (f"on {dep.triggers[0]['expect'][0]}" if dep.triggers else "on demand")
        typer.echo(f"{dep.full_name:28s} pool {dep.pool:10s} {when}")
    typer.echo(f"{len(deployments)} deployments registered; start workers: ferv service worker --pool <pool>")


@service_app.command("worker")
def worker(
    pool: Annotated[str, typer.Option(help="Work pool to poll (service.cpu_pool or service.gpu_pool).")],
    limit: Annotated[int | None, typer.Option(help="Flow runs at once on this worker.")] = None,
) -> None:
    """Start a process worker on a pool (run it where the repository and its .venv are)."""
    args = ["worker", "start", "--pool", pool, "--type", "process"]
    if limit is not None:
        args += ["--limit", str(limit)]
    _exec_prefect(*args)
