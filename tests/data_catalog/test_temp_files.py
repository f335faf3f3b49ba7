"""Temporaries of killed writers are removed by the next run; a live writer's never are."""

import os
import subprocess
import sys
import time

from data_catalog.temp_files import STALE_AFTER_S, remove_stale_temps, temp_sibling


def test_a_killed_writers_file_and_folder_are_removed(tmp_path, killed_writer):
    killed_writer(
        "from data_catalog.temp_files import temp_sibling\n"
        f"d = Path({str(tmp_path)!r})\n"
        "temp_sibling(d / 'c1.mp4', '.mp4').write_bytes(b'half a clip')\n"
        "f = temp_sibling(d / 'c2'); f.mkdir(); (f / '00001.jpg').write_bytes(b'jpeg')\n"
    )
    debris = sorted(p.name for p in tmp_path.iterdir())
    assert len(debris) == 2 and all(".tmp" in n for n in debris)
    removed = remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == debris
    assert list(tmp_path.iterdir()) == []


def test_a_live_writers_temporaries_and_other_files_stay(tmp_path):
    mine = temp_sibling(tmp_path / "c1.mp4", ".mp4")
    mine.write_bytes(b"being written")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        theirs = tmp_path / mine.name.replace(f".{os.getpid()}@", f".{live.pid}@")
        theirs.write_bytes(b"being written elsewhere")
        kept = [tmp_path / "c0.mp4", tmp_path / ".hidden", tmp_path / ".c3.mp4.x.tmp.mp4"]
        for path in kept:
            path.write_bytes(b"")
        assert remove_stale_temps(tmp_path) == []
        assert {p.name for p in tmp_path.iterdir()} == {mine.name, theirs.name} | {p.name for p in kept}
    finally:
        live.kill()
        live.wait()


def test_earlier_versions_temporaries_are_removed(tmp_path):
    """The names the issue found after a killed run: ``.<clip>.<hex>.tmp.mp4`` and ``.<clip>.tmp-<hex>``."""
    (tmp_path / ".Interview-a1b2-0-48.3fa9c2d1.tmp.mp4").write_bytes(b"x")
    (tmp_path / ".Interview-a1b2-0-48.tmp-0b1c2d3e").mkdir()
    (tmp_path / "Interview-a1b2-0-48").mkdir()
    assert len(remove_stale_temps(tmp_path)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["Interview-a1b2-0-48"]


def test_another_hosts_temporary_goes_only_when_old(tmp_path):
    fresh = tmp_path / ".c1.mp4.4242@elsewhere.0123abcd.tmp.mp4"
    old = tmp_path / ".c2.mp4.4242@elsewhere.0123abcd.tmp.mp4"
    for path in (fresh, old):
        path.write_bytes(b"x")
    then = time.time() - STALE_AFTER_S - 60
    os.utime(old, (then, then))
    assert remove_stale_temps(tmp_path) == [old]
    assert fresh.exists()


def test_a_missing_directory_has_nothing_to_remove(tmp_path):
    assert remove_stale_temps(tmp_path / "absent") == []
