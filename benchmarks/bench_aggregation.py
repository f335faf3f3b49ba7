"""Accuracy of WWTa, majority vote and Dawid-Skene against the hidden truth on simulated crowds.

Paper, section 3.2: groups with ~5% gold, 3 copies per group, flag-recapture scoring, PR review and
relabelling, then voting. For each crowd quality (tasks/annotate/simulate.py) and seed, the whole workflow
runs on simulated annotators (20 CAs, 10 PRs) and each aggregator votes (a) the accepted answers and
(b) every first-round CA answer with no quality control. Prints a markdown table of mean accuracy over
the seeds, plus the share of copies PRs relabelled (their cost).

    .venv/bin/python benchmarks/bench_aggregation.py --clips 1000 --seeds 3
"""

from __future__ import annotations

import argparse
import platform
import time

import pandas as pd
from tqdm import tqdm

from tasks.annotate.simulate import QUALITIES, evaluate, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--qualities", nargs="*", default=list(QUALITIES))
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    runs = [(q, s) for q in args.qualities for s in range(args.seeds)]
    for quality, seed in tqdm(runs, desc="simulated batches"):
        result = simulate(n_clips=args.clips, quality=quality, seed=seed)
        acc = evaluate(result)
        checks = result.checks
        latest = checks.sort_values("round").drop_duplicates(["group_id", "copy"], keep="last")
        relabelled = result.answers[(result.answers["role"] == "PR")]
        relabelled = relabelled[
            ~relabelled["task_id"].isin(set(result.tasks.loc[result.tasks["gold"], "task_id"]))
        ]
        n_copies = len(latest)
        rows.append(
            {
                "crowd": quality,
                "seed": seed,
                **acc.to_dict(),
                "ua_share": float((checks["verdict"] == "UA").mean()),
                "relabelled_copies": relabelled[["group_id", "copy"]].drop_duplicates().shape[0] / n_copies,
            }
        )
    table = pd.DataFrame(rows).drop(columns="seed").groupby("crowd", sort=False).mean()
    q = QUALITIES
    print(f"clips per batch: {args.clips}, seeds: {args.seeds}, machine: {platform.machine()}, "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    print()
    print(
        "| crowd (CA accuracy, spammers) | WWTa | MV | DS | WWTa no QC | MV no QC | DS no QC | UA copies | PR-relabelled copies |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for crowd, r in table.iterrows():
        lo, hi = q[crowd].accuracy
        print(
            f"| {crowd} ({lo:.2f}-{hi:.2f}, {q[crowd].spammer_share:.0%}) | {r.wwta:.3f} | {r.majority:.3f} | "
            f"{r.dawid_skene:.3f} | {r.wwta_no_qc:.3f} | {r.majority_no_qc:.3f} | {r.dawid_skene_no_qc:.3f} | "
            f"{r.ua_share:.0%} | {r.relabelled_copies:.0%} |"
        )


if __name__ == "__main__":
    main()
