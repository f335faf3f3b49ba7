"""What a killed `build-candidates` leaves behind, and what cleaning up costs.

1. Orphans: start `ferv build-candidates` on the demo footage, SIGKILL the command alone (not its process
   group) once its flow is running, and time how long each child process (Prefect's temporary server)
   outlives it. Repeated ``--runs`` times, each in a fresh storage root.
2. Stale temporaries: how long a rerun's sweep of one folder takes (data_catalog/temp_files.py) with
   ``--entries`` finished clip folders and 100 temporaries of dead writers in it.

    .venv/bin/python benchmarks/bench_killed_run.py --runs 3      # about 2 minutes on two cores
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _children(pids: set[int]) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) in pids:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def killed_run(footage: Path, root: Path) -> tuple[int, float, int]:
    """(children at the kill, seconds until the last one ended, children still alive after 30 s)."""
    cmd = [
        sys.executable, "-m", "flows.cli", "--preset", "demo", "--set", f"storage.root={root}",
        "build-candidates", "--scene", "DailyLife", "--source", f"local:{footage}",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(root.parent / "prefect-home")
    root.parent.mkdir(parents=True, exist_ok=True)
    log = (root.parent / "run.log").open("w")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True)
    family: set[int] = set()
    try:
        while not list((root / "catalog" / "videos").glob("*/*/*.parquet")):
            if proc.poll() is not None:
                raise RuntimeError(f"the run ended before it could be killed: {log.name}")
            family |= _children({proc.pid} | family)
            time.sleep(0.1)
        family |= _children({proc.pid} | family)
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait()
        while any(_alive(p) for p in family) and time.monotonic() - killed < 30:
            time.sleep(0.05)
        return len(family), time.monotonic() - killed, sum(_alive(p) for p in family)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def sweep(folder: Path, entries: int) -> float:
    from data_catalog.temp_files import remove_stale_temps

    folder.mkdir()
    for i in range(entries):
        (folder / f"clip-{i:06d}").mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    from data_catalog.temp_files import _host

    for i in range(100):
        (folder / f".clip-{i:06d}.{pid}@{_host()}.{i:08x}.tmp").mkdir()
    start = time.perf_counter()
    removed = remove_stale_temps(folder)
    took = time.perf_counter() - start
    assert len(removed) == 100
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--entries", type=int, default=40_000)
    args = parser.parse_args()
    from data_catalog.assets import asset_path

    with tempfile.TemporaryDirectory() as tmp:
        footage = Path(tmp) / "footage"
        footage.mkdir()
        for name in ("wolfgang-langer", "single-face", "no-face"):  # the demo's three videos
            src = asset_path(f"demo-{name}")
            (footage / src.name).write_bytes(src.read_bytes())
        print("| run | children at the kill | last child ended after (s) | alive after 30 s |")
        print("|---|---:|---:|---:|")
        for i in range(args.runs):
            n, seconds, alive = killed_run(footage, Path(tmp) / f"run{i}" / "work")
            print(f"| {i + 1} | {n} | {seconds:.2f} | {alive} |")
        took = sweep(Path(tmp) / "sweep", args.entries)
        print(f"\nsweep of {args.entries} folders + 100 stale temporaries: {took * 1000:.1f} ms")


if __name__ == "__main__":
    main()
