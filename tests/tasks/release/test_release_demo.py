"""Card and takedown on a real demo catalog: two demo videos through the whole build-candidates flow
(crawl, segment, face filter, refine, subsample), then `ferv export`, `ferv card` and `ferv takedown`."""

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from data_catalog.schemas import MANIFESTS
from data_catalog.takedowns import source_hash
from flows.cli import app
from flows.config import load_config
from flows.demo import DEMO_VIDEOS
from tasks.crawl.stage import plan_crawl
from tasks.release.croissant import validate

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
TAKEN = "local-wolfgang_langer"


@pytest.fixture(scope="module")
def demo(tmp_path_factory, demo_media) -> dict[str, Path]:
    """A catalog built by the real pipeline from two demo videos kept outside the storage root."""
    tmp = tmp_path_factory.mktemp("release-demo")
    footage = tmp / "footage"
    footage.mkdir()
    for name in ("demo-wolfgang-langer", "demo-single-face"):
        shutil.copyfile(demo_media(name), footage / DEMO_VIDEOS[name])
    root = tmp / "work"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    command = [
        sys.executable, "-m", "flows.cli", "--preset", "demo", "--set", f"storage.root={root}",
        "build-candidates", "--scene", "DailyLife", "--source", f"local:{footage}",
    ]  # fmt: skip
    out = subprocess.run(
        command, cwd=REPO, env=env | {"PREFECT_HOME": str(tmp / "prefect")}, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return {"root": root, "footage": footage}


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.output


def test_card_of_the_demo_catalog_validates_and_its_counts_equal_the_manifests(demo, tmp_path):
    root = demo["root"]
    _cli("--preset", "demo", "--set", f"storage.root={root}", "card", str(tmp_path / "card"))
    catalog = Catalog(root / "catalog")
    selections = catalog.read("selections", latest=True)
    selected = selections[selections["selected"]]
    records = validate(tmp_path / "card" / "croissant.json")
    assert len(records) == len(selected) > 0
    decoded = pd.DataFrame(
        [
            {k.split("/", 1)[1]: v.decode() if isinstance(v, bytes) else v for k, v in r.items()}
            for r in records
        ]
    )
    assert Counter(decoded["label"]) == Counter(selected["label"])
    assert set(decoded["clip_id"]) == set(selected["clip_id"])
    # Every clip traced to its source video's URL and its time span in that video.
    clips = catalog.read("clips", latest=True).set_index("clip_id")
    videos = catalog.read("videos", latest=True).set_index("video_id")
    for r in decoded.itertuples():
        assert r.source_url == videos.loc[clips.loc[r.clip_id, "video_id"], "url"]
        assert r.start_time == pytest.approx(clips.loc[r.clip_id, "start_time"])
    card = (tmp_path / "card" / "card.md").read_text()
    counts = selected["label"].value_counts()
    row = next(line for line in card.splitlines() if line.startswith("| DailyLife | DL |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    expressions = ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
    assert [int(c) for c in cells[2:9]] == [int(counts.get(e, 0)) for e in expressions]
    assert int(cells[9]) == len(selected)
    cand = catalog.read("candidates", latest=True)
    assert f"- kept: {int(cand['keep'].sum())}" in card
    assert f"- source videos: {videos.index.nunique()}" in card
    assert f"- unknown: {len(selected)}" in card  # local files carry no licence
    assert selections["run_id"].iloc[0] in card
    assert (tmp_path / "card" / "card_expressions.png").stat().st_size > 0


def _mentions(root: Path, needle: str) -> list[str]:
    """Every manifest row (any string cell) and every file (name or text) under ``root`` naming ``needle``."""
    found = []
    catalog = Catalog(root / "catalog")
    for name in MANIFESTS:
        table = catalog.read_table(name)
        for column in table.column_names:
            values = table.column(column).to_pylist()
            if any(isinstance(v, str) and needle in v for v in values):
                found.append(f"{name}.{column}")
    for path in root.rglob("*"):
        if needle in path.name:
            found.append(str(path))
        elif path.is_file() and path.suffix in (".csv", ".txt", ".md", ".json"):
            if needle in path.read_text(encoding="utf-8", errors="replace"):
                found.append(str(path))
        elif path.is_file() and path.suffix == ".parquet" and "catalog" not in path.parts:
            frame = pq.read_table(path).to_pandas()
            if frame.astype(str).apply(lambda c, n=needle: c.str.contains(n, regex=False)).any().any():
                found.append(str(path))
    return found


def test_takedown_of_a_demo_video_leaves_no_trace_and_a_recrawl_skips_it(demo, tmp_path):
    root = tmp_path / "work"
    shutil.copytree(demo["root"], root)
    storage = f"storage.root={root}"
    _cli("--preset", "demo", "--set", storage, "export", str(root / "exports" / "v1"), "--include-unlicensed")
    assert _mentions(root, TAKEN)  # the video is everywhere before
    catalog = Catalog(root / "catalog")
    url = catalog.read("videos", latest=True).set_index("video_id").loc[TAKEN, "url"]
    others = set(catalog.read("clips").query("video_id != @TAKEN")["clip_id"])

    out = _cli("--preset", "demo", "--set", storage, "takedown", url, "--requested-by", "the person filmed")
    assert "source found in the catalog" in out and "export cleaned" in out
    assert _mentions(root, TAKEN) == []
    assert _mentions(root, "wolfgang") == []
    # The other video's clips are untouched, and the rebuilt export still validates.
    assert set(catalog.read("clips")["clip_id"]) == others
    prov = pd.read_csv(root / "exports" / "v1" / "provenance.csv")
    assert len(validate(root / "exports" / "v1" / "croissant.json")) == len(prov)
    assert (demo["footage"] / "wolfgang_langer.mp4").is_file()  # the user's own original stays

    record = catalog.read("takedowns", latest=True)
    assert record["status"].tolist() == ["done"]
    assert record["source_hash"].tolist() == [source_hash(TAKEN)]
    assert record["url_hash"].tolist() == [source_hash(url)]
    assert record["requested_by"].tolist() == ["the person filmed"]
    assert dict(record["removed"].iloc[0])["videos"] == 1

    # A re-crawl of the same folder records the other video as known and never brings the taken one back.
    cfg = load_config(preset="demo", overrides=[storage])
    plan = plan_crawl(
        catalog, ["DailyLife"], cfg.crawl, RunContext.create({}), sources=[f"local:{demo['footage']}"]
    )
    assert plan.n_taken_down == 1 and plan.n_new == 0
    assert TAKEN not in set(catalog.read("videos")["video_id"])

    again = _cli(
        "--preset", "demo", "--set", storage, "takedown", TAKEN, "--requested-by", "the person filmed"
    )
    assert "0 clips" in again and len(catalog.read("takedowns")) == 1  # repeatable, one record
