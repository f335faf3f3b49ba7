"""How long a ``ferv`` command takes before it does any work: the command line's start-up cost.

Times, in fresh processes, ``ferv --help`` (imports every command module, loads no heavy library) and
``ferv config show`` (also resolves the layered config, cron schedules included, without Prefect), and
reports the median of ``--runs`` runs. Pass ``--tree`` to time another checkout of the project.

    .venv/bin/python benchmarks/bench_cli_startup.py            # about 30 s on two cores
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {"ferv --help": ["--help"], "ferv config show": ["config", "show"]}


def median_seconds(tree: Path, args: list[str], runs: int) -> float:
    """Median wall time of ``python -m flows.cli ARGS`` run in ``tree`` (which must succeed)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "flows.cli", *args], cwd=tree, env=env, capture_output=True, check=True
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    if not (args.tree / "flows").is_dir():
        parser.error(f"--tree {args.tree}: not a checkout of the project (no flows/ folder)")
    print("| command | median s |\n|---|---:|")
    for name, cmd in COMMANDS.items():
        print(f"| `{name}` | {median_seconds(args.tree, cmd, args.runs):.2f} |")


if __name__ == "__main__":
    main()
