import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_catalog.io import Catalog
from tests.tasks.crawl.site import make_video

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from flows.crawl import crawl
result = crawl(["Terror"], sources=[sys.argv[1]], overrides=[f"storage.root={sys.argv[2]}", "crawl.min_duration_s=1"])
print("downloaded", result.downloads.downloaded)
"""


@pytest.mark.slow
def test_crawl_flow_runs_in_prefects_ephemeral_mode_quietly(tmp_path):
    footage = tmp_path / "footage"
    footage.mkdir()
    make_video(footage / "scene1.mp4", 2)
    make_video(footage / "scene2.mp4", 3)
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {"PREFECT_HOME": str(home)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"local:{footage}", str(tmp_path / "work")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = out.stdout + out.stderr
    assert out.returncode == 0, log
    assert "downloaded 2" in out.stdout
    assert "Finished in state Completed" in log
    assert "database is locked" not in log and "Traceback" not in log and "ERROR" not in log
    assert list(home.glob("*.db")), "the ephemeral server kept its state under PREFECT_HOME"
    rows = Catalog(tmp_path / "work" / "catalog").read("videos")
    assert sorted(rows.video_id) == ["local-scene1", "local-scene2"] and set(rows.status) == {"downloaded"}
