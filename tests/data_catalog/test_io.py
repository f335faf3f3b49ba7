import os
from datetime import datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pytest

from data_catalog.io import Catalog, ManifestError
from data_catalog.lineage import RunContext
from data_catalog.sql import query


def _video(video_id: str, scene: str, seconds: float, ctx: RunContext, **extra) -> dict:
    row = {
        "video_id": video_id,
        "engine": "generic",
        "source_id": video_id,
        "url": f"http://127.0.0.1/{video_id}.mp4",
        "duration": seconds,
        "scene": scene,
        "scenario": "AI",
        "status": "discovered",
        "selected": False,
        "crawl_run_id": ctx.run_id,
        **ctx.lineage("crawl"),
    }
    row.update(extra)
    return row


@pytest.fixture
def ctx():
    return RunContext.create({"crawl": {"seed": 0}}, run_id="run-test")


def test_write_then_read_roundtrips_with_lineage(tmp_path, ctx):
    cat = Catalog(tmp_path)
    ref = cat.write(
        "videos",
        [_video("a", "Terror", 10.0, ctx), _video("b", "Terror", 5.5, ctx)],
        scene="Terror",
        run_id=ctx.run_id,
    )
    assert ref.rows == 2 and os.path.isfile(ref.path)
    assert "videos/scene=Terror/run=run-test/part-0000.parquet" in ref.path
    df = cat.read("videos", scene="Terror")
    assert sorted(df.video_id) == ["a", "b"]
    assert set(df.run_id) == {"run-test"} and set(df.config_hash) == {ctx.config_hash}
    assert df.tool_versions.str.contains("pyarrow|ferv|torch|yt-dlp").all() or df.tool_versions.notna().all()


def test_write_is_atomic_no_temporary_files_left(tmp_path, ctx):
    cat = Catalog(tmp_path)
    cat.write("videos", [_video("a", "War", 1.0, ctx)], scene="War", run_id=ctx.run_id)
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def test_a_failed_write_leaves_no_part_behind(tmp_path, ctx):
    cat = Catalog(tmp_path)
    bad = [_video("a", "War", 1.0, ctx), _video("a", "War", 2.0, ctx)]
    with pytest.raises(ManifestError, match="duplicate key"):
        cat.write("videos", bad, scene="War", run_id=ctx.run_id)
    assert not cat.has_part("videos", "War", ctx.run_id, "0000")
    assert list(tmp_path.rglob("*.parquet")) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bogus": 1}, "unknown columns"),
        ({"status": None}, "videos.status"),
        ({"duration": "long"}, "videos.duration"),
    ],
)
def test_rows_that_break_the_schema_are_rejected_naming_the_column(tmp_path, ctx, change, message):
    row = _video("a", "War", 1.0, ctx, **change)
    with pytest.raises(ManifestError, match=message):
        Catalog(tmp_path).write("videos", [row], scene="War", run_id=ctx.run_id)


def test_rows_of_another_scene_cannot_enter_a_partition(tmp_path, ctx):
    with pytest.raises(ManifestError, match="Crisis"):
        Catalog(tmp_path).write("videos", [_video("a", "Crisis", 1.0, ctx)], scene="War", run_id=ctx.run_id)


def test_unknown_manifest_lists_known_ones(tmp_path, ctx):
    with pytest.raises(ValueError, match="known manifests: videos"):
        Catalog(tmp_path).write("vids", [], scene="War", run_id=ctx.run_id)


def test_latest_keeps_the_newest_row_per_key(tmp_path, ctx):
    cat = Catalog(tmp_path)
    old = _video("a", "War", 1.0, ctx, status="failed", error="HTTP Error 503")
    old["created_at"] = datetime.now(timezone.utc) - timedelta(hours=1)
    cat.write("videos", [old], scene="War", run_id="run-1")
    cat.write("videos", [_video("a", "War", 1.0, ctx, status="downloaded")], scene="War", run_id="run-2")
    assert len(cat.read("videos")) == 2
    latest = cat.read("videos", latest=True)
    assert list(latest.status) == ["downloaded"]


def test_a_corrupt_part_is_reported_by_path(tmp_path, ctx):
    cat = Catalog(tmp_path)
    path = cat.part_path("videos", "War", "run-1", "0000")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    with pytest.raises(ManifestError, match="unreadable manifest part"):
        cat.read("videos")


def test_catalog_sql_groups_videos_by_scene(tmp_path, ctx):
    cat = Catalog(tmp_path)
    cat.write(
        "videos", [_video("a", "War", 10.0, ctx), _video("b", "War", 5.0, ctx)], scene="War", run_id="r1"
    )
    cat.write("videos", [_video("c", "Crisis", 7.0, ctx)], scene="Crisis", run_id="r1")
    df = query(
        cat, "select scene, count(*) as n, sum(duration) as hours from videos group by scene order by scene"
    )
    assert df.to_dict("records") == [
        {"scene": "Crisis", "n": 1, "hours": 7.0},
        {"scene": "War", "n": 2, "hours": 15.0},
    ]


def test_sql_on_an_empty_catalog_has_the_columns(tmp_path):
    df = query(Catalog(tmp_path), "select * from clips")
    assert len(df) == 0 and "clip_id" in df.columns


def test_bad_sql_names_the_statement(tmp_path):
    with pytest.raises(ValueError, match="statement: select nope"):
        query(Catalog(tmp_path), "select nope from videos")


def test_empty_writes_are_valid_parts(tmp_path, ctx):
    ref = Catalog(tmp_path).write("clips", pa.Table.from_pylist([]), scene="War", run_id="r1")
    assert ref.rows == 0


def test_a_column_present_only_in_later_rows_is_kept(tmp_path, ctx):
    first = _video("a", "War", 1.0, ctx)
    second = _video("b", "War", 2.0, ctx, title="only here")
    Catalog(tmp_path).write("videos", [first, second], scene="War", run_id="r1")
    df = Catalog(tmp_path).read("videos").set_index("video_id")
    assert df.loc["b", "title"] == "only here" and pd.isna(df.loc["a", "title"])


def test_paths_are_stored_relative_to_the_storage_root_and_resolved_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    catalog = Catalog("work/catalog")  # a relative root, as storage.root's default is
    inside = catalog.store_path("work/crops/Terror/clip-1/face")
    outside = catalog.store_path(tmp_path / "elsewhere" / "x.mp4")
    assert inside == "crops/Terror/clip-1/face"
    assert outside == (tmp_path / "elsewhere" / "x.mp4").as_posix()
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    moved = Catalog(tmp_path / "work" / "catalog")  # the same storage, named from another directory
    assert moved.resolve_path(inside) == tmp_path / "work" / "crops" / "Terror" / "clip-1" / "face"
    assert moved.resolve_path(outside) == tmp_path / "elsewhere" / "x.mp4"
    assert moved.resolve_path(None) is None and moved.resolve_path(float("nan")) is None


def _replace_part_forever(root: str, ctx: RunContext, stop) -> None:
    cat = Catalog(root)
    small = [_video("a", "Terror", 1.0, ctx)]
    large = [_video("a", "Terror", 1.0, ctx, error="x" * 2000)] + [
        _video(f"v{i}", "Terror", float(i), ctx, error="y" * 200) for i in range(200)
    ]
    i = 0
    while not stop.is_set():
        cat.write("videos", large if i % 2 else small, scene="Terror", run_id=ctx.run_id, part="a")
        i += 1


def test_a_part_replaced_while_another_process_reads_it_is_read_whole(tmp_path, ctx):
    """A crawl rewrites a video's part while a crawl of another scene reads the manifest: each read sees
    one version of the part, never one version's footer with another's pages."""
    import multiprocessing

    cat = Catalog(tmp_path)
    cat.write("videos", [_video("a", "Terror", 1.0, ctx)], scene="Terror", run_id=ctx.run_id, part="a")
    mp = multiprocessing.get_context("fork")
    stop = mp.Event()
    writer = mp.Process(target=_replace_part_forever, args=(str(tmp_path), ctx, stop))
    writer.start()
    try:
        sizes = {len(cat.read("videos")) for _ in range(150)}
    finally:
        stop.set()
        writer.join()
    assert sizes <= {1, 201}
    assert len(sizes) == 2, "the writer never replaced the part while it was read"


def test_a_part_removed_between_listing_and_reading_is_left_out(tmp_path, ctx, monkeypatch):
    cat = Catalog(tmp_path)
    cat.write("videos", [_video("a", "Terror", 1.0, ctx)], scene="Terror", run_id=ctx.run_id, part="a")
    gone = cat.write("videos", [_video("b", "War", 2.0, ctx)], scene="War", run_id=ctx.run_id, part="b")
    listed = cat.part_files("videos")
    monkeypatch.setattr(Catalog, "part_files", lambda self, *args: listed)
    os.unlink(gone.path)  # a rerun replacing its parts, or a takedown, removes it after the listing
    assert list(cat.read("videos")["video_id"]) == ["a"]
