"""Load on the labelling server: many crowd annotators at once against a real `ferv annotate serve` process.

Paper 3.2 has crowd annotators label group copies in a web app. This starts the server as its own process on
loopback over a fresh database (SQLite in WAL mode, or a throwaway PostgreSQL cluster), gives it a batch of
``--annotators`` groups of 50 clips (3 copies each, gold labelled), and lets ``--annotators`` annotators work
as the page does: arrive at a random moment of the first ``--ramp-s`` seconds, log in (cookie session), load their identity, the vocabulary and feedback, then
fetch the next item, look at it for ``--think-s`` seconds (+-50%, uniform; 0 = as fast as possible) and
answer it, until ``--duration`` seconds have passed. Prints requests, errors (non-2xx or failed requests),
lost answers (acknowledged by the server but not in the database afterwards), throughput and latency
percentiles overall and per endpoint, as a markdown table row.

    .venv/bin/python benchmarks/bench_labelling_load.py --db sqlite --think-s 1 --duration 60
    .venv/bin/python benchmarks/bench_labelling_load.py --db postgres --think-s 1 --duration 60
    .venv/bin/python benchmarks/bench_labelling_load.py --db sqlite --think-s 0 --duration 30   # saturated

``--code DIR`` runs the server (and the database setup) from another checkout of the project, e.g. an
older commit unpacked with ``git archive``, to compare on the same machine. PostgreSQL needs initdb/pg_ctl
(Debian: ``apt-get install postgresql``) and psycopg importable by the server (``pip install -e
'.[postgres]'``, or ``--extra-path`` naming a folder that holds it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORD = "sadness"  # every answer, gold included: copies score AC and wait for review
PAGE_START = ("/api/me", "/api/vocabulary", "/api/feedback")


# ---------------------------------------------------------------------------------------- setup


def setup(url: str, n_groups: int, n_annotators: int, out: Path) -> None:
    """Migrate ``url``, load ``n_groups`` groups of the default size, add a PR and the CAs, label the gold
    items; write the CA tokens to ``out``. Runs in the server's code (``--code``)."""
    import pandas as pd

    from tasks.annotate.config import AnnotateConfig
    from tasks.annotate.package import package
    from tasks.annotate.web import service
    from tasks.annotate.web.db import open_database

    cfg = AnnotateConfig()
    n_clips = n_groups * cfg.group_size
    selections = pd.DataFrame(
        {
            "clip_id": [f"load-{i:05d}" for i in range(n_clips)],
            "scene": "Talkshow",
            "label": "Sad",
            "selected": True,
        }
    )
    tasks = package(selections, cfg, "load")
    db = open_database(url)
    with db.session() as s:
        service.load_tasks(s, tasks, cfg)
        pr, _ = service.add_annotator(s, "PR", "PR", "pr")
        tokens = [service.add_annotator(s, f"CA {i}", "CA", f"ca{i:03d}")[1] for i in range(n_annotators)]
    with db.session() as s:
        for t in tasks[tasks["gold"] & (tasks["copy"] == 0)].itertuples():
            service.submit_answer(s, pr, t.task_id, WORD, 1.0, cfg)
    db.dispose()
    out.write_text(json.dumps(tokens))


def stored_answer_ids(url: str, out: Path) -> None:
    """Write the ids of the crowd answers in the database to ``out`` (runs in the server's code)."""
    from sqlalchemy import select

    from tasks.annotate.web.db import Answer, open_database

    db = open_database(url, migrate=False)
    with db.session() as s:
        ids = list(s.scalars(select(Answer.answer_id).where(Answer.role == "CA")))
    db.dispose()
    out.write_text(json.dumps(ids))


# ---------------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(code: Path, extra: list[str]) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), *extra])}


def in_code(code: Path, extra: list[str], *args: str) -> None:
    """Run this script's ``args`` subcommand with the project at ``code`` on the path."""
    subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], env=_env(code, extra), check=True)


class Postgres:
    """A throwaway PostgreSQL cluster on a loopback TCP port (as the postgres user when run as root)."""

    def __init__(self, root: Path) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        initdb = shutil.which("initdb") or (str(bins[-1] / "initdb") if bins else None)
        if not initdb or not Path(initdb).exists():
            raise SystemExit("PostgreSQL is not installed (no initdb): apt-get install postgresql")
        self.pg_ctl = str(Path(initdb).with_name("pg_ctl"))
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.data, self.port = root / "pg", free_port()
        root.chmod(0o755)
        if self.as_user:
            shutil.chown(root, "postgres")
        run = {"check": True, "capture_output": True, "timeout": 120}
        subprocess.run([*self.as_user, initdb, "-D", str(self.data), "-A", "trust", "-U", "ferv"], **run)
        opts = f"-h 127.0.0.1 -p {self.port} -k {root} -c max_connections=200"
        log = str(root / "pg.log")
        subprocess.run(
            [*self.as_user, self.pg_ctl, "-D", str(self.data), "-o", opts, "-l", log, "-w", "start"], **run
        )
        self.url = f"postgresql+psycopg://ferv@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, self.pg_ctl, "-D", str(self.data), "-m", "fast", "stop"], capture_output=True
        )


def start_server(code: Path, extra: list[str], url: str, port: int, workdir: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "flows.cli", "--set", f"storage.root={workdir / 'storage'}"]
    cmd += ["annotate", "serve", "--db", url, "--port", str(port)]
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(cmd, env=_env(code, extra), cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}: see {workdir / 'server.log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start listening within 120 s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------------------------- load


async def annotator(
    base: str, token: str, think_s: float, ramp_s: float, deadline: float, log: list, acked: set
) -> None:
    import httpx

    rng = random.Random(token)
    await asyncio.sleep(rng.uniform(0, ramp_s))  # annotators arrive over the ramp, not at one instant
    # Plain HTTP on loopback: verify=False skips building a TLS context (certifi's bundle), about 60 ms of
    # CPU per client that would stall the one event loop every other annotator's timing runs on.
    async with httpx.AsyncClient(base_url=base, timeout=60, headers={"Origin": base}, verify=False) as c:

        async def call(method: str, path: str, name: str, **kw) -> httpx.Response | None:
            t0 = time.perf_counter()
            try:
                r = await c.request(method, path, **kw)
            except httpx.HTTPError as exc:
                log.append((name, f"{type(exc).__name__}", time.perf_counter() - t0))
                return None
            log.append((name, r.status_code, time.perf_counter() - t0))
            return r

        if (
            r := await call("POST", "/api/login", "login", json={"token": token})
        ) is None or r.status_code != 200:
            return
        for path in PAGE_START:
            await call("GET", path, path)
        while time.monotonic() < deadline:
            r = await call("GET", "/api/next", "/api/next")
            item = r.json()["item"] if r is not None and r.status_code == 200 else None
            if item is None:
                await asyncio.sleep(1)  # nothing to do now (a finished copy waits for review); ask again
                continue
            if think_s:
                await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))
            body = {"task_id": item["task_id"], "word": WORD, "time_spent_s": think_s}
            r = await call("POST", "/api/answers", "/api/answers", json=body)
            if r is not None and r.status_code in (200, 201):
                acked.add(r.json()["answer_id"])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def run(args: argparse.Namespace) -> None:
    code = Path(args.code).resolve()
    extra = [str(Path(p).resolve()) for p in args.extra_path]
    work = Path(tempfile.mkdtemp(prefix="ferv-load-"))
    pg = None
    try:
        if args.db == "postgres":
            pg = Postgres(work)
            url = pg.url
        else:
            url = f"sqlite:///{work / 'annotate.db'}"
        t0 = time.perf_counter()
        in_code(
            code, extra, "setup", url, str(args.annotators), str(args.annotators), str(work / "tokens.json")
        )
        setup_s = time.perf_counter() - t0
        tokens = json.loads((work / "tokens.json").read_text())
        port = free_port()
        server = start_server(code, extra, url, port, work)
        log: list = []
        acked: set[str] = set()
        try:
            start = time.monotonic()
            deadline = start + args.duration

            async def everyone() -> None:
                base = f"http://127.0.0.1:{port}"
                await asyncio.gather(
                    *(annotator(base, t, args.think_s, args.ramp_s, deadline, log, acked) for t in tokens)
                )

            asyncio.run(everyone())
            elapsed = time.monotonic() - start
            peak = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        in_code(code, extra, "stored", url, str(work / "stored.json"))
        stored = set(json.loads((work / "stored.json").read_text()))
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(args, log, acked, stored, elapsed, setup_s, peak)


def report(args, log, acked, stored, elapsed, setup_s, peak) -> None:
    ok = {200, 201}
    errors = [e for e in log if e[1] not in ok]
    by_name: dict[str, list[float]] = defaultdict(list)
    for name, _status, seconds in log:
        by_name[name].append(seconds)
    lost = len(acked - stored)
    every = [s for _n, _st, s in log]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; db {args.db}; {args.annotators} annotators; "
        f"think {args.think_s} s; ramp {args.ramp_s:g} s; {elapsed:.0f} s of load (setup {setup_s:.0f} s); server peak RSS {peak:.0f} MB"
    )
    for name, seconds in sorted(by_name.items()):
        print(
            f"  {name:<16} {len(seconds):>6} requests  p50 {percentile(seconds, 0.5):6.0f} ms  "
            f"p95 {percentile(seconds, 0.95):6.0f} ms"
        )
    if errors:
        kinds = defaultdict(int)
        for name, status, _s in errors:
            kinds[(name, status)] += 1
        print("errors:", dict(kinds))
    print()
    print("| db | annotators | think s | requests | req/s | errors | answers acked | lost | p50 ms | p95 ms | p99 ms | next p95 | answers p95 | login p95 |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.db} | {args.annotators} | {args.think_s:g} | {len(log)} | {len(log) / elapsed:.0f} | "
        f"{len(errors)} | {len(acked)} | {lost} | {percentile(every, 0.5):.0f} | {percentile(every, 0.95):.0f} | "
        f"{percentile(every, 0.99):.0f} | {percentile(by_name['/api/next'], 0.95):.0f} | "
        f"{percentile(by_name['/api/answers'], 0.95):.0f} | {percentile(by_name['login'], 0.95):.0f} |"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "setup":
        setup(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "stored":
        stored_answer_ids(sys.argv[2], Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--think-s", type=float, default=1.0, help="mean seconds looking at an item")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--ramp-s", type=float, default=10.0, help="annotators log in over this many seconds")
    parser.add_argument(
        "--code", default=str(REPO), help="the project checkout that serves (default: this one)"
    )
    parser.add_argument(
        "--extra-path", action="append", default=[], help="another folder for the server's path"
    )
    args = parser.parse_args()
    if not (args.annotators >= 1 and 0 <= args.think_s < 3600 and 0 <= args.ramp_s < args.duration <= 3600):
        parser.error("--annotators >= 1, 0 <= --think-s < 3600 and 0 <= --ramp-s < --duration <= 3600")
    run(args)


if __name__ == "__main__":
    main()
