"""Every input of a run gets a manifest row with a reason from one vocabulary, and the run summary lists
every input that failed (crawl and segment), not only counts."""

import shutil
from pathlib import Path

import pytest

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from data_catalog.schemas import MEDIA_REASONS
from flows.config import load_config
from flows.summary import write_summary
from tasks.crawl.verify import check_video
from tasks.segment import STAGE, SegmentConfig, segment_video
from tests.helpers.media import BAD_FILE_REASONS, ffmpeg, make_bad_files
from tests.tasks.crawl.site import run

SCENE = "Terror"


@pytest.fixture(scope="module")
def footage(tmp_path_factory, demo_media) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("footage")
    files = make_bad_files(folder, demo_media("single-face"))
    shutil.copyfile(demo_media("single-face"), folder / "good.mp4")
    return folder, files


@pytest.mark.slow
def test_every_local_input_gets_a_row_and_a_reason(tmp_path, footage):
    folder, files = footage
    _, rows = run(tmp_path, [f"local:{folder}"])
    expected = {
        f"local-{path.stem}": BAD_FILE_REASONS[key]
        for key, path in files.items()
        if path.suffix == ".mp4"  # the audio-only .m4a is not named like a video: not an input
    }
    failed = rows[rows.status == "failed"]
    assert failed["reason"].to_dict() == expected
    assert set(expected.values()) <= set(MEDIA_REASONS)
    assert all(failed["error"].str.len() > 0)
    assert rows.loc["local-good", "status"] == "downloaded"


@pytest.mark.parametrize("key", ["empty", "still_image", "fifo", "directory", "symlink_loop"])
def test_check_video_gives_the_segment_stages_reason_and_never_blocks(footage, key):
    _, files = footage
    check = check_video(files[key])
    assert not check.ok and check.reason == BAD_FILE_REASONS[key], check


def test_a_video_too_short_for_one_clip_says_so(tmp_path, demo_media):
    short = tmp_path / "short.mp4"
    ffmpeg("-i", str(demo_media("single-face")), "-t", "0.3", "-an", "-c:v", "libx264", str(short))
    seg = segment_video(short, "local-short", SCENE, SegmentConfig(min_len=0.5), seed=0)
    assert list(seg.clips) == []
    assert seg.media["status"] == "ok" and seg.media["reason"] == "too_short"
    assert "shorter than one clip" in seg.media["error"]


@pytest.mark.slow
def test_the_summary_lists_every_failed_input_with_its_reason(tmp_path, footage, demo_media):
    folder, files = footage
    _, rows = run(tmp_path, [f"local:{folder}"])
    short = tmp_path / "short.mp4"
    ffmpeg("-i", str(demo_media("single-face")), "-t", "0.3", "-an", "-c:v", "libx264", str(short))
    cfg = load_config(overrides=[f"storage.root={tmp_path}"])
    ctx = RunContext.create({"test": 1}, run_id="run-summary")
    downloaded = rows[rows.status == "downloaded"].reset_index()[
        ["video_id", "scene", "status", "local_path"]
    ]
    videos = [*downloaded.to_dict("records")]
    videos.append(
        {"video_id": "local-short", "scene": SCENE, "status": "downloaded", "local_path": str(short)}
    )
    videos.append({"video_id": "local-gone", "scene": SCENE, "status": "downloaded", "local_path": str(tmp_path / "gone.mp4")})  # fmt: skip
    catalog = Catalog(cfg.storage.catalog_dir)
    for video in videos:  # the segment stage's media rows, one part per video
        seg = segment_video(video["local_path"], video["video_id"], video["scene"], cfg.segment)
        list(seg.clips)  # the media row is final once the clips are consumed
        media = [{**seg.media, **ctx.lineage(STAGE)}]
        catalog.write("media", media, scene=video["scene"], run_id=ctx.run_id, part=video["video_id"])

    text = write_summary(SCENE, cfg, ctx, Catalog(cfg.storage.catalog_dir)).read_text()
    section = text.split("## Failed inputs", 1)[1].split("\n## ", 1)[0]
    listed = {
        cells[2]: (cells[1], cells[4])
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| stage")
        for cells in [[c.strip() for c in line.split("|")]]
    }
    crawl_failures = rows[rows.status == "failed"]["reason"].to_dict()
    assert {v: r for v, (stage, r) in listed.items() if stage == "crawl"} == crawl_failures
    assert {v: r for v, (stage, r) in listed.items() if stage == "segment"} == {
        "local-short": "too_short",
        "local-gone": "missing_file",
    }
