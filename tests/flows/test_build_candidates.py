"""The whole build-candidates flow on real demo footage, in Prefect's ephemeral mode: every stage writes a
non-empty manifest with consistent ids, and a run killed with SIGKILL then restarted ends with the same
manifests as an uninterrupted run."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from data_catalog.io import Catalog
from data_catalog.lineage import LINEAGE_FIELDS

REPO = Path(__file__).resolve().parents[2]
SCENE = "DailyLife"
# Paths differ between the two storage roots; lineage differs by time. Everything else must match.
VOLATILE = {f.name for f in LINEAGE_FIELDS} - {"run_id", "config_hash", "model_version"} | {
    "local_path", "path", "face_dir", "scene_dir", "clip_path", "crawl_run_id",
}  # fmt: skip
COMPARED = ("videos", "media", "clips", "faces", "candidates", "fer_scores", "selections")


@pytest.fixture(scope="module")
def footage(tmp_path_factory, demo_media) -> Path:
    out = tmp_path_factory.mktemp("footage")
    for name in ("wolfgang-langer", "single-face", "no-face"):
        src = demo_media(name)
        shutil.copyfile(src, out / src.name)
    return out


def _command(footage: Path, root: Path) -> list[str]:
    return [
        sys.executable, "-m", "flows.cli", "--preset", "demo", "--set", f"storage.root={root}",
        "--set", "distribution.shard_size=1", "build-candidates", "--scene", SCENE, "--source", f"local:{footage}",
    ]  # fmt: skip


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return env | {"PREFECT_HOME": str(tmp / "prefect-home")}


def _run(footage: Path, root: Path, env: dict[str, str]) -> str:
    out = subprocess.run(
        _command(footage, root), cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def _manifests(root: Path) -> dict[str, list[dict]]:
    cat = Catalog(root / "catalog")
    out = {}
    for name in COMPARED:
        df = cat.read(name, latest=name == "videos")
        key = (
            list(cat.read_table(name).schema.names[:1])
            if name != "faces"
            else ["clip_id", "frame_index", "face_index"]
        )
        volatile = VOLATILE | ({"run_id"} if name == "videos" else set())  # each crawl is its own run
        df = df.drop(columns=[c for c in df.columns if c in volatile]).sort_values(key).reset_index(drop=True)
        out[name] = df.astype(str).to_dict("records")
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, footage) -> Path:
    tmp = tmp_path_factory.mktemp("uninterrupted")
    log = _run(footage, tmp / "work", _env(tmp))
    assert "database is locked" not in log and "Traceback" not in log
    return tmp / "work"


@pytest.mark.slow
@pytest.mark.e2e
def test_every_stage_writes_consistent_non_empty_manifests(uninterrupted):
    cat = Catalog(uninterrupted / "catalog")
    m = {name: cat.read(name) for name in COMPARED}
    for name, df in m.items():
        assert len(df), f"{name} is empty"
    assert set(m["clips"].video_id) <= set(m["videos"].video_id)
    assert set(m["candidates"].clip_id) == set(m["clips"].clip_id)
    kept = m["candidates"][m["candidates"].keep]
    assert set(m["fer_scores"].clip_id) == set(kept.clip_id)
    assert set(m["selections"].clip_id) <= set(m["fer_scores"].clip_id)
    selected = m["selections"][m["selections"].selected]
    assert len(selected) == 8  # 2 x the demo target of 4
    assert all(cat.resolve_path(p).is_file() for p in selected.clip_path)
    assert all(len(list(cat.resolve_path(d).glob("*.jpg"))) > 0 for d in kept.face_dir)
    assert not any(Path(p).is_absolute() for p in kept.face_dir)  # under the storage root: stored relative
    # the no-face video's clips fail the presence rule; the close-up's are kept
    by_video = m["candidates"].groupby("video_id")["keep"].any()
    assert by_video["local-WolfgangLanger_Pexels"] and not by_video["local-no_face"]
    assert (uninterrupted / "reports" / SCENE / "summary.md").is_file()
    assert (uninterrupted / "reports" / SCENE / "rejections.png").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.e2e
def test_run_killed_mid_way_and_restarted_equals_an_uninterrupted_run(tmp_path, footage, uninterrupted):
    root, env = tmp_path / "work", _env(tmp_path)
    proc = subprocess.Popen(
        _command(footage, root), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    try:
        while not list((root / "catalog" / "clips").glob("scene=*/run=*/part-s0000.parquet")):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no shard finished in time"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not list((root / "catalog" / "selections").glob("*/*/*.parquet")), "killed too late"
    _run(footage, root, env)
    assert _manifests(root) == _manifests(uninterrupted)


@pytest.mark.slow
@pytest.mark.e2e
def test_a_recrawl_segments_and_detects_only_the_new_videos(tmp_path, footage, uninterrupted, demo_media):
    root, env = tmp_path / "work", _env(tmp_path)
    shutil.copytree(uninterrupted, root)
    more = tmp_path / "footage"
    shutil.copytree(footage, more)
    new = demo_media("single-face")
    shutil.copyfile(new, more / f"late-{new.name}")  # a video the first crawl did not see
    _run(more, root, env)

    cat = Catalog(root / "catalog")
    media = cat.read("media", SCENE)
    runs = media.groupby("run_id")["video_id"].apply(set)
    assert len(runs) == 2
    first, second = sorted(runs.index, key=lambda r: len(runs[r]))
    assert runs[second] == runs[first] | {f"local-late-{Path(new).stem}"}
    # Only the new video went through segmentation and detection; the others were carried over.
    reused = cat.read("media", SCENE, second)
    parts = {p.stem for p in cat.part_files("media", SCENE, second)}
    assert parts == {"part-reused", "part-s0000"}
    shard = pd.read_parquet(cat.part_path("media", SCENE, second, "s0000"))
    assert set(shard.video_id) == {f"local-late-{Path(new).stem}"}
    assert len(reused) == len(runs[second])
    # The new run's clips are the first run's plus the new video's, row for row.
    clips = cat.read("clips", SCENE)
    old, now = (
        clips[clips.run_id == r].drop(columns=VOLATILE | {"run_id"}, errors="ignore") for r in (first, second)
    )
    now_old = now[now.video_id.isin(runs[first])]
    key = ["clip_id"]
    pd.testing.assert_frame_equal(
        old.sort_values(key).reset_index(drop=True), now_old.sort_values(key).reset_index(drop=True)
    )
    assert (now.video_id == f"local-late-{Path(new).stem}").any()
    assert cat.read("selections", SCENE, second)["selected"].sum() == 8


def _children_of(pids: set[int]) -> set[int]:
    """Processes whose parent is one of ``pids`` (from /proc: field 4 of /proc/<pid>/stat)."""
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
    """Running, not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_a_killed_command_leaves_no_process_behind(tmp_path, footage):
    """SIGKILL of the command alone (not its process group): Prefect's temporary server and any other
    child must end with it."""
    root, env = tmp_path / "work", _env(tmp_path)
    proc = subprocess.Popen(
        _command(footage, root), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    family: set[int] = set()
    deadline = time.monotonic() + 300
    try:
        # The flow is running (so the temporary server is up) once the crawl has recorded the videos.
        while not list((root / "catalog" / "videos").glob("scene=*/run=*/*.parquet")):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the crawl did not finish in time"
            family |= _children_of({proc.pid} | family)
            time.sleep(0.2)
        family |= _children_of({proc.pid} | family)
        assert family, "the command started no child process (no temporary server?)"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = {p: Path(f"/proc/{p}/cmdline").read_bytes()[:200] for p in family if _alive(p)}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever survived is still in the command's group
    assert not survivors, f"processes outlived the killed command: {survivors}"
