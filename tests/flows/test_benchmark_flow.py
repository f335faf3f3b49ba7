"""The ``benchmark`` flow end to end in Prefect's ephemeral mode, the way the README reproduces Table 2: a
FERV39k release (here, real face crops of the demo footage in the release layout) is imported with
``ferv import ferv39k``; ``ferv benchmark train`` trains a tiny configuration for two epochs, then
``ferv benchmark run`` asks for three: the flow resumes that checkpoint instead of starting over, trains the
cross-scenario model, evaluates, and the loss has gone down."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from data_catalog.io import Catalog
from tests.tasks.benchmark.footage import assign, demo_crops, write_release

REPO = Path(__file__).resolve().parents[2]
TINY = [f"benchmark.{k}" for k in ("n_frames=2", "face_size=64", "batch_size=8", "num_workers=0", "device=cpu",
                                   "augment=false", "lr=0.01")]  # fmt: skip


def _ferv(args: list[str], root: Path, env: dict[str, str]) -> str:
    sets = [a for kv in [f"storage.root={root}", *TINY] for a in ("--set", kv)]
    out = subprocess.run([sys.executable, "-m", "flows.cli", *sets, *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    log = out.stdout + out.stderr
    assert out.returncode == 0, log
    return log


@pytest.fixture(scope="module")
def release(tmp_path_factory, demo_media):
    """The release folder and its own split: the first clip of each (scene, expression) is in test."""
    tmp = tmp_path_factory.mktemp("release")
    clips = assign(demo_crops(demo_media("wolfgang-langer"), tmp / "crops"))
    ordered = sorted(clips, key=lambda c: (c["scene"], c["label"], c["clip_id"]))
    split = {c["clip_id"]: "train" for c in clips}
    for c in ordered:
        if not any(
            split[o["clip_id"]] == "test"
            for o in ordered
            if (o["scene"], o["label"]) == (c["scene"], c["label"])
        ):
            split[c["clip_id"]] = "test"
    return write_release(tmp / "FERV39k", clips, split), split


@pytest.mark.slow
@pytest.mark.e2e
def test_import_then_benchmark_run_trains_resumes_evaluates_and_reports(release, tmp_path):
    release_dir, split = release
    root = tmp_path / "work"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect-home"), "OMP_NUM_THREADS": "1"}
    _ferv(["import", "ferv39k", str(release_dir)], root, env)
    # Two epochs of the All setup without Prefect, then the flow asks for three: it resumes that checkpoint.
    trained = _ferv(
        ["--set", "benchmark.epochs=2", "benchmark", "train", "--model", "r18", "--setup", "All"], root, env
    )
    assert "All -> All: WAR" in trained
    ckpt = next((root / "benchmark").glob("bm-*/r18-f2-All/last.pt"))
    after_two = torch.load(ckpt, weights_only=True)["epoch_losses"]
    run = ["benchmark", "run", "--model", "r18", "--setup", "All", "--setup", "DL-to-SIA"]
    log = _ferv(["--set", "benchmark.epochs=3", *run], root, env)
    assert "Finished in state Completed" in log and "Traceback" not in log
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 3 and state["epoch_losses"][:2] == after_two  # resumed, not retrained
    assert state["epoch_losses"][-1] < state["epoch_losses"][0]

    cat = Catalog(root / "catalog")
    splits = cat.read("splits")
    sides = splits[splits["setup"] == "All"].set_index("clip_id")["side"]
    assert set(splits["split_source"]) == {"labels"}
    assert sides.to_dict() == split  # the release's own split
    results = cat.read("results")
    assert not results.duplicated(["model", "variant", "train_setup", "test_setup", "group"]).any()
    overall = results[results["group"] == "overall"].set_index(["train_setup", "test_setup"])
    assert set(overall.index) == {("All", "All"), ("DL", "DL"), ("DL", "SIA")}
    assert (overall["status"] == "ok").all() and (overall["epochs"] == 3).all()
    assert overall.loc[("All", "All"), "n_clips"] == 8 and overall.loc[("DL", "SIA"), "n_clips"] == 4

    report = next((root / "reports" / "benchmark").glob("bm-*"))
    text = (report / "benchmark.md").read_text()
    assert "## Table 2" in text and "| R18 |" in text and "## Table 3" in text
    assert (report / "confusion" / "confusion_r18_f2_All_All.png").stat().st_size > 1000
    assert (report / "ablations.png").is_file() and (report / "table3.csv").is_file()
    with sqlite3.connect(next((tmp_path / "prefect-home").glob("*.db"))) as db:
        keys = {k for (k,) in db.execute("select key from artifact")}
    assert {"benchmark-report", "benchmark-results"} <= keys
