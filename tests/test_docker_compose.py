"""docker-compose.yml, checked without a Docker engine: the topology the service needs, health checks,
shared volumes, GPU reservations, and every `ferv` command in it exists with the options it is given."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from flows.config import load_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_the_topology_is_complete(compose):
    services = compose["services"]
    assert {"postgres", "prefect-server", "deploy", "cpu-worker", "gpu-worker", "dask-scheduler",
            "dask-worker", "dask-gpu-worker", "annotate-web"} <= set(services)  # fmt: skip
    server = services["prefect-server"]
    assert server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    assert server["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["deploy"]["depends_on"]["prefect-server"]["condition"] == "service_healthy"


def test_long_running_services_have_health_checks_and_share_the_data_volume(compose):
    for name, svc in compose["services"].items():
        if svc.get("restart") == "no":  # one-shot jobs
            continue
        assert "test" in svc.get("healthcheck", {}), f"{name} has no health check"
        if name != "postgres":
            assert "data:/data" in svc["volumes"], f"{name} does not mount the shared data volume"
            assert svc["environment"]["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert {"data", "pgdata"} <= set(compose["volumes"])


def test_gpu_services_reserve_an_nvidia_gpu_and_cpu_services_do_not(compose):
    for name, svc in compose["services"].items():
        devices = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
        wants_gpu = "gpu" in name
        assert bool(devices) == wants_gpu, name
        if wants_gpu:
            assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "GPU=1" in compose["services"]["dask-gpu-worker"]["command"]


def test_workers_poll_the_pools_the_deployments_use(compose):
    svc = load_config().service
    pools = {
        name: cmd[cmd.index("--pool") + 1]
        for name, s in compose["services"].items()
        if "--pool" in (cmd := s.get("command", []))
    }
    assert pools == {"cpu-worker": svc.cpu_pool, "gpu-worker": svc.gpu_pool}


@pytest.mark.slow
def test_every_ferv_command_exists_and_accepts_its_options(compose):
    runner = CliRunner()
    for name, svc in compose["services"].items():
        cmd = svc.get("command", [])
        if cmd[:1] != ["ferv"] or cmd[1:] == ["--help"]:
            continue
        # Each option is parsed for real; --help after them stops before anything runs.
        words = cmd[1:]
        result = runner.invoke(app, [*words, "--help"])
        assert result.exit_code == 0, f"{name}: {' '.join(cmd)}\n{result.output}"
        for opt in (w for w in words if w.startswith("--")):
            assert opt in result.output, f"{name}: option {opt} unknown to `{' '.join(cmd[:3])}`"


def test_the_image_builds_from_the_repository_and_installs_as_make_install_does():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert 'pip install -e ".[postgres]"' in dockerfile and "onnxruntime-gpu==1.31.1" in dockerfile
    assert "onnxruntime-gpu==1.31.1" in (REPO / "Makefile").read_text()
    assert "ferv assets fetch" in dockerfile
