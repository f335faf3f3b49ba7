"""Training imports only what training needs: loading the config (with re-crawl schedules) and
``ferv benchmark pack|train|evaluate`` import neither Prefect, insightface nor yt-dlp, so a machine with
only the torch stack can train."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("prefect", "insightface", "yt_dlp")

AUDIT = """
import json, sys
from typer.testing import CliRunner
from flows.cli import app
from flows.config import load_config

load_config(overrides=["service.recrawl={DailyLife: '0 3 * * 0'}"])
root, catalog = sys.argv[3:-1], ["--catalog", sys.argv[2]]
runner = CliRunner()
out = {}
for name, args in (("pack", ["benchmark", "pack"]), ("train", ["benchmark", "train", "--model", "r18", "--setup", "SIA"])):
    r = runner.invoke(app, [*root, *args, *catalog])
    out[name] = (r.exit_code, r.output[-500:] + repr(r.exception))
from pathlib import Path
ckpt = next(Path(sys.argv[1]).glob("benchmark/bm-*/r18-f2-SIA/last.pt"), "no checkpoint")
r = runner.invoke(app, [*root, "benchmark", "evaluate", str(ckpt), "--setup", "SIA", *catalog])
out["evaluate"] = (r.exit_code, r.output[-500:] + repr(r.exception))
out["heavy"] = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[-1].split(",")))
print(json.dumps(out))
"""


@pytest.mark.slow
def test_config_pack_train_and_evaluate_import_no_prefect_insightface_or_yt_dlp(demo_catalog, tmp_path):
    sets = [f"storage.root={tmp_path}", "benchmark.n_frames=2", "benchmark.face_size=64", "benchmark.epochs=1",
            "benchmark.max_steps_per_epoch=1", "benchmark.num_workers=0", "benchmark.device=cpu"]  # fmt: skip
    catalog = shutil.copytree(
        demo_catalog.root, tmp_path / "catalog"
    )  # its results stay out of the shared one
    root = [a for s in sets for a in ("--set", s)]
    run = subprocess.run([sys.executable, "-c", AUDIT, str(tmp_path), str(catalog), *root, ",".join(HEAVY)],
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for command in ("pack", "train", "evaluate"):
        assert out[command][0] == 0, (command, out[command][1])
    assert "packed store of 24 clips" in out["pack"][1] and "SIA -> SIA: WAR" in out["train"][1]
    assert out["heavy"] == [], f"imported: {out['heavy']}"
