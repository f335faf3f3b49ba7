import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from flows.cli import app
from keywords.taxonomy import UnknownSceneError
from tasks.crawl.config import CrawlConfig
from tasks.crawl.sources import SourceError, discover, parse_source
from tasks.crawl.stage import CrawlError
from tasks.crawl.verify import check_video
from tests.tasks.crawl.site import FAST, run

REPO = Path(__file__).resolve().parents[3]


def url_list(tmp_path: Path, site, paths: list[str]) -> str:
    f = tmp_path / "urls.txt"
    f.write_text("# loopback videos\n" + "\n".join(site.url(p) for p in paths) + "\n")
    return f"urls:{f}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_feed_is_expanded_into_entries_with_metadata_and_no_download(site):
    d = discover(parse_source(site.url("feed.xml")), [], CrawlConfig(**FAST))
    assert [(c.video_id, c.duration, c.title) for c in d.candidates] == [
        ("generic-a", 3.0, "clip a"),
        ("generic-b", 4.0, "clip b"),
        ("generic-c", 5.0, "clip c"),
    ]
    assert not d.failures and not any(k.startswith("/v/") for k in site.hits)


@pytest.mark.slow
def test_every_failure_is_a_row_and_every_download_a_verified_video(tmp_path, site):
    bad = ["missing.mp4", "truncated.mp4", "notvideo.mp4", "hang.mp4"]
    result, rows = run(tmp_path, [site.url("feed.xml"), url_list(tmp_path, site, ["v/a.mp4", *bad])])
    assert result.plan.n_duplicates == 0  # v/a.mp4 of the list is the feed's first entry: never re-asked
    assert rows.loc["generic-missing", ["status", "reason"]].tolist() == ["failed", "http_404"]
    assert rows.loc["generic-hang", ["status", "reason"]].tolist() == ["failed", "timeout"]
    assert rows.loc["generic-truncated", ["status", "reason"]].tolist() == ["failed", "truncated"]
    assert rows.loc["generic-notvideo", ["status", "reason"]].tolist() == ["failed", "not_a_video"]
    assert "hang" in rows.loc["generic-hang", "error"] and "404" in rows.loc["generic-missing", "error"]
    ok = rows[rows.status == "downloaded"]
    assert sorted(ok.index) == ["generic-a", "generic-b", "generic-c"]
    for row in ok.itertuples():
        check = check_video(Path(row.local_path))
        assert check.ok and check.sha256 == row.sha256 and check.n_bytes == row.bytes
        assert row.scene == "Terror" and row.scenario == "AI" and row.selected and row.engine == "generic"
    assert not list((tmp_path / "media").rglob("generic-truncated*"))  # bad files are not kept
    assert rows.index.is_unique and set(rows.run_id) == {result.plan.run_id}


@pytest.mark.slow
def test_recrawl_downloads_nothing_new_and_retry_failed_retries_only_failed(tmp_path, site):
    sources = [site.url("feed.xml"), url_list(tmp_path, site, ["missing.mp4"])]
    first, rows1 = run(tmp_path, sources)
    assert first.downloads.downloaded == 3
    hits = dict(site.hits)
    again, rows2 = run(tmp_path, sources)
    assert again.plan.n_new == 0 and again.downloads.attempted == 0
    assert {k: v for k, v in site.hits.items() if k.startswith("/v/")} == {
        k: v for k, v in hits.items() if k.startswith("/v/")
    }
    assert rows2.equals(rows1)
    retry, rows3 = run(tmp_path, sources, retry_failed=True)
    assert retry.downloads.attempted == 1 and retry.downloads.reasons == {"http_404": 1}
    assert len(rows3) == len(rows1) and rows3.loc["generic-missing", "run_id"] != first.plan.run_id


@pytest.mark.slow
def test_local_directory_source_crawls_without_a_network(tmp_path, media):
    footage = tmp_path / "footage"
    footage.mkdir()
    for name in ("a", "b"):
        (footage / f"{name}.mp4").write_bytes(media[name].read_bytes())
    result, rows = run(tmp_path, [f"local:{footage}"])
    assert sorted(rows.index) == ["local-a", "local-b"]
    assert set(rows.status) == {"downloaded"} and rows.duration.tolist() == [3.0, 4.0]
    assert "target_h" in __import__("tasks.crawl.stage", fromlist=["x"]).format_report(result)


def test_search_engine_without_network_fails_fast_and_writes_nothing(tmp_path):
    start = time.monotonic()
    with pytest.raises(CrawlError, match=r"(?s)every source failed.*'ytsearch' \(keyword") as err:
        run(tmp_path, ["ytsearch"], proxy=f"http://127.0.0.1:{closed_port()}")
    assert time.monotonic() - start < 10
    assert "proxy_unreachable" in str(err.value)
    assert not (tmp_path / "catalog").exists()


def test_bad_inputs_name_what_is_wrong(tmp_path):
    with pytest.raises(UnknownSceneError, match="unknown scene 'Horror'.*Terror"):
        run(tmp_path, ["ytsearch"], scenes=["Horror"])
    with pytest.raises(SourceError, match="unknown search engine.*ytsearch"):
        parse_source("foosearch")
    with pytest.raises(SourceError, match="not a directory"):
        parse_source(f"local:{tmp_path / 'nope'}")
    (tmp_path / "bad.txt").write_text("http://127.0.0.1/x.mp4\nnot a url\n")
    with pytest.raises(SourceError, match=r"bad.txt:2: not a URL"):
        run(tmp_path, [f"urls:{tmp_path / 'bad.txt'}"])
    assert not (tmp_path / "catalog").exists()


def _cli(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "flows.cli", "--set", f"storage.root={tmp_path}", *args]


@pytest.mark.slow
def test_cli_exits_non_zero_on_malformed_config_and_unknown_scene(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("crawl:\n  max_per_keyword: -3\n")
    out = subprocess.run(
        _cli(tmp_path, "-c", str(cfg), "crawl", "--scene", "Terror"), capture_output=True, text=True, cwd=REPO
    )
    assert out.returncode == 2 and "crawl.max_per_keyword" in out.stderr and "bad.yaml" in out.stderr
    out = subprocess.run(
        _cli(tmp_path, "crawl", "--scene", "Horror"), capture_output=True, text=True, cwd=REPO
    )
    assert out.returncode == 2 and "unknown scene 'Horror'" in out.stderr


@pytest.mark.slow
def test_crawl_killed_mid_download_and_restarted_loses_and_duplicates_nothing(tmp_path, site):
    sources = url_list(tmp_path, site, ["v/a.mp4", "slow/big.mp4", "v/b.mp4"])
    cmd = _cli(tmp_path, "--set", "crawl.min_duration_s=1", "crawl", "--scene", "Terror", "--source", sources)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and part is None:
        parts = [p for p in (tmp_path / "media").rglob("generic-big*.part") if p.stat().st_size > 0]
        part = parts[0] if parts else None
        time.sleep(0.05)
    assert part is not None, "the slow download never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = part.stat().st_size
    assert partial < site.media["big"].stat().st_size
    mid = Catalog(tmp_path / "catalog").read("videos").set_index("video_id")
    assert mid.loc["generic-big", "status"] == "selected"

    site.trickle = 5_000_000  # the rest can come quickly
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = Catalog(tmp_path / "catalog").read("videos")
    assert rows.video_id.is_unique and len(rows) == 3
    assert set(rows.status) == {"downloaded"}
    big = rows.set_index("video_id").loc["generic-big"]
    assert big.bytes == site.media["big"].stat().st_size and check_video(Path(big.local_path)).ok
    assert not list((tmp_path / "media").rglob("*.part"))
    resumed = [r for p, r in site.ranges if p == "/slow/big.mp4" and not r.startswith("bytes=0-")]
    assert resumed, site.ranges  # the second run resumed the .part file with an HTTP Range request


def test_catalog_sql_answers_per_scene_counts(tmp_path, media):
    footage = tmp_path / "footage"
    footage.mkdir()
    (footage / "a.mp4").write_bytes(media["a"].read_bytes())
    result, _ = run(tmp_path, [f"local:{footage}"], scenes=["Terror"])
    sql = "select scene, count(*) as n, sum(duration) as seconds from videos group by scene"
    out = CliRunner().invoke(app, ["--set", f"storage.root={tmp_path}", "catalog", "sql", sql, "--csv"])
    assert out.exit_code == 0, out.output
    assert out.output.strip().splitlines() == ["scene,n,seconds", "Terror,1,3.0"]


def test_two_crawls_of_the_same_footage_at_once_record_each_video_once(tmp_path, demo_media, monkeypatch):
    import threading

    import tasks.crawl.stage as stage

    footage = tmp_path / "footage"
    footage.mkdir()
    for name in ("single-face", "no-face"):
        (footage / demo_media(name).name).symlink_to(demo_media(name))
    # Force the interleaving that two crawl processes can meet: both have discovered the same videos
    # before either records them.
    both_discovered = threading.Barrier(2, timeout=60)
    real_discover = stage.discover

    def discover_then_wait(*args, **kwargs):
        found = real_discover(*args, **kwargs)
        both_discovered.wait()
        return found

    monkeypatch.setattr(stage, "discover", discover_then_wait)
    catalog = Catalog(tmp_path / "catalog")
    cfg, errors = CrawlConfig(min_duration_s=0), []

    def crawl_scene(scene: str) -> None:
        try:
            ctx = RunContext.create({}, run_id=f"crawl-{scene}")
            stage.plan_crawl(catalog, [scene], cfg, ctx, sources=[f"local:{footage}"])
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=crawl_scene, args=(s,)) for s in ("Argue", "Social")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    videos = catalog.read("videos")
    assert sorted(videos["video_id"]) == ["local-no_face", "local-single_face"]  # one scene each, once
    assert videos["scene"].nunique() == 1
