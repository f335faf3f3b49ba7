"""The service, for real on loopback: ``ferv service server`` (Prefect server on SQLite), ``ferv service
deploy`` (pools + deployments), process workers from ``ferv service worker``, ``prefect deployment run
build-candidates/scene`` with the heavy stages on a Dask LocalCluster started here, two scenes at once,
a worker killed mid-run and the run retried, and the labels-landed event starting the benchmark."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_catalog.io import Catalog

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
FERV = [sys.executable, "-m", "flows.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Processes the test starts, each in its own session; all are killed at the end, also on failure."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)


@pytest.fixture(scope="module")
def service(tmp_path_factory, demo_media) -> Iterator[dict]:
    """A Prefect server, the deployments, a CPU and a GPU worker, and a Dask LocalCluster."""
    from distributed import LocalCluster

    tmp = tmp_path_factory.mktemp("service")
    footage = tmp / "footage"
    for scene in ("DailyLife", "Interview"):  # a video belongs to one scene: each scene gets its own files
        (footage / scene).mkdir(parents=True)
        for name in ("wolfgang-langer", "single-face"):
            shutil.copyfile(demo_media(name), footage / scene / f"{scene}-{demo_media(name).name}")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(tmp / "prefect-home"), "PREFECT_API_URL": api}
    procs = Processes(tmp)
    # The GPU stage (refinement) asks for the resource; this cluster's worker offers it.
    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=True, resources={"GPU": 1})
    try:
        procs.start("server", [*FERV, "service", "server", "--port", str(port)], env)
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2):
                    break
            except OSError:
                assert procs.procs["server"].poll() is None, procs.log("server")
                assert time.monotonic() < deadline, "the server did not come up:\n" + procs.log("server")
                time.sleep(1)
        root = tmp / "work"
        deploy = subprocess.run(
            [*FERV, "--preset", "demo", "--set", f"storage.root={root}",
             "--set", "distribution.runner=dask", "--set", f"distribution.dask_address={cluster.scheduler_address}",
             "--set", "distribution.gpu_resource=GPU", "--set", "service.recrawl={DailyLife: '0 3 * * 0'}",
             "--set", "benchmark.epochs=1", "--set", "benchmark.max_steps_per_epoch=2", "--set", "benchmark.batch_size=4",
             "--set", "benchmark.num_workers=0", "--set", "benchmark.models=[r18]", "--set", "benchmark.n_frames=2",
             "service", "deploy"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        procs.start("cpu-worker", [*FERV, "service", "worker", "--pool", "ferv-cpu"], env)
        procs.start("gpu-worker", [*FERV, "service", "worker", "--pool", "ferv-gpu"], env)
        yield {
            "env": env,
            "root": root,
            "footage": footage,
            "procs": procs,
            "deploy": deploy.stdout,
            "tmp": tmp,
        }
    finally:
        procs.stop_all()
        cluster.close()


def _prefect(env: dict[str, str], *args: str, timeout: int = 120) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def _run_deployment(env: dict[str, str], name: str, **params) -> str:
    out = _prefect(env, "deployment", "run", name, "--params", json.dumps(params))
    match = re.search(r"UUID: ([0-9a-f-]{36})", out) or re.search(r"([0-9a-f]{8}-[0-9a-f-]{27})", out)
    assert match, out
    return match.group(1)


def _flow_run(env: dict[str, str], run_id: str):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        return client.read_flow_run(run_id)


def _wait(service: dict, run_id: str, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while True:
        state = _flow_run(service["env"], run_id).state
        if state is not None and state.is_final():
            return state.type.value if state.is_completed() else f"{state.type.value}: {state.message}"
        assert time.monotonic() < deadline, f"flow run {run_id} still {state}:\n" + service["procs"].log(
            "cpu-worker"
        )
        time.sleep(2)


def _scene_manifests(root: Path, scene: str) -> dict[str, list]:
    cat = Catalog(root / "catalog")
    out = {}
    for name in ("clips", "candidates", "fer_scores", "selections"):
        df = cat.read(name, scene)
        out[name] = sorted(df[df.columns[0]].astype(str)) + sorted(
            map(str, df.get("keep", df.get("selected", [])))
        )
    return out


def test_deploy_lists_every_deployment_with_its_trigger_and_schedules(service):
    out = service["deploy"]
    for name in (
        "build-candidates/scene",
        "build-candidates/recrawl",
        "annotate/land",
        "benchmark/labels-landed",
    ):
        assert name in out
    assert "1 schedules" in out and "on ferv.labels.landed" in out
    listing = _prefect(service["env"], "deployment", "ls")
    assert "build-candidates/scene" in listing and "benchmark/labels-landed" in listing


def test_two_scenes_at_once_through_the_deployment_on_dask(service):
    env, root = service["env"], service["root"]
    runs = {
        scene: _run_deployment(
            env,
            "build-candidates/scene",
            scene=scene,
            sources=[f"local:{service['footage'] / scene}"],
            target=2,
        )
        for scene in ("DailyLife", "Interview")
    }
    states = {scene: _wait(service, run) for scene, run in runs.items()}
    assert states == {"DailyLife": "COMPLETED", "Interview": "COMPLETED"}, service["procs"].log("cpu-worker")
    cat = Catalog(root / "catalog")
    for scene in runs:
        selections = cat.read("selections", scene)
        assert selections["selected"].sum() == 4  # 2 x target
        assert set(selections["scene"]) == {scene}
        clips = cat.read("clips", scene)
        assert set(clips["scene"]) == {scene} and clips["clip_id"].is_unique
    # Shards and the refinement ran as task runs on the Dask cluster (the refinement asking for the
    # GPU resource its only worker offers), one refinement per scene.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(runs.values())))
        )
    names = sorted(t.name.rsplit("-", 1)[0] for t in tasks if t.state.is_completed())
    assert names.count("refine") == 2 and names.count("segment-and-filter") == 2, names


def test_a_worker_killed_mid_run_then_retried_ends_like_an_uninterrupted_run(service):
    env, procs = service["env"], service["procs"]
    other = service["tmp"] / "retried"
    sources = [f"local:{service['footage'] / 'DailyLife'}"]
    run = _run_deployment(
        env, "build-candidates/scene", scene="DailyLife", sources=sources, target=2,
        overrides=["storage.root=" + str(other), "distribution.runner=threads", "distribution.shard_size=1"],
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while not list((other / "catalog" / "clips").glob("scene=*/run=*/part-s0000.parquet")):
        assert time.monotonic() < deadline, "no shard finished in time:\n" + procs.log("cpu-worker")
        time.sleep(0.5)
    # The machine goes down: the worker and the flow run's process (the worker starts it in a session of
    # its own; Prefect records its pid as the run's infrastructure pid).
    pid = int(str(_flow_run(env, run).infrastructure_pid).rsplit(":", 1)[-1])
    procs.kill("cpu-worker")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    assert not list((other / "catalog" / "selections").glob("*/*/*.parquet")), "killed too late"

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Scheduled

    with (
        temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        client.set_flow_run_state(run, Scheduled(), force=True)  # what `retry` in the UI does
    procs.start("cpu-worker", [*FERV, "service", "worker", "--pool", "ferv-cpu"], env)
    assert _wait(service, run) == "COMPLETED", procs.log("cpu-worker")
    assert _scene_manifests(other, "DailyLife") == _scene_manifests(service["root"], "DailyLife")


def test_labels_landing_through_the_annotate_deployment_start_the_benchmark(service):
    env, root = service["env"], service["root"]
    demo = ["--preset", "demo", "--set", f"storage.root={root}"]
    sim = subprocess.run(
        [*FERV, *demo, "annotate", "simulate", "--from-catalog", "--write", "--no-land", "--batch", "b1",
         "--quality", "good"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert sim.returncode == 0, sim.stdout + sim.stderr
    land = _run_deployment(env, "annotate/land", batch="b1")
    assert _wait(service, land) == "COMPLETED", service["procs"].log("cpu-worker")
    labels = Catalog(root / "catalog").read("labels", run_id="labels-b1")
    assert len(labels) == 8 and set(labels.scene) == {"DailyLife", "Interview"}

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + 900
    while True:
        with (
            temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}),
            get_client(sync_client=True) as client,
        ):
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["labels-landed"]))
            )
        if runs and runs[0].state is not None and runs[0].state.is_final():
            break
        assert time.monotonic() < deadline, f"benchmark runs: {runs}\n" + service["procs"].log("gpu-worker")
        time.sleep(3)
    assert len(runs) == 1
    assert runs[0].state.is_completed(), service["procs"].log("gpu-worker")
    assert runs[0].parameters["labels_run_id"] == "labels-b1"
    assert runs[0].parameters["catalog_root"] == str(root / "catalog")
    results = Catalog(root / "catalog").read("results")
    assert len(results) and set(results["model"]) == {"r18"}
