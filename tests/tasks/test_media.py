"""tasks/media.py on real files: probe, decode once, frame-exact clip encoding, bad input, rotation, VFR.

Test videos are made here with the real ffmpeg binary, small and short; the helpers live in
tests/helpers/media.py.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tasks.media import (
    MediaError,
    count_frames,
    decode_frames,
    encode_clip,
    iter_decoded,
    probe,
)
from tests.helpers.media import (  # noqa: F401
    BAD_FILE_REASONS,
    ffmpeg,
    make_bad_files,
    make_pattern_video,
    make_rotated_video,
    make_upright_reference,
    make_vfr_video,
    mse,
)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def pattern_video(media_dir) -> Path:
    return make_pattern_video(media_dir / "pattern.mp4")


@pytest.fixture(scope="module")
def bad_files(media_dir, demo_media) -> dict[str, Path]:
    return make_bad_files(media_dir / "bad", demo_media("single-face"))


@pytest.fixture(scope="module")
def vfr_video(media_dir) -> Path:
    return make_vfr_video(media_dir / "vfr.mp4")


def test_probe_reads_the_demo_video(demo_media):
    info = probe(demo_media("wolfgang-langer"))
    assert (info.width, info.height, info.rotation) == (640, 360, 0)
    assert info.fps == pytest.approx(24000 / 1001)
    assert info.n_frames == 472 == len(info.frame_times)
    assert info.duration == pytest.approx(19.69, abs=0.02)
    assert not info.variable_frame_rate
    assert np.all(np.diff(info.frame_times) > 0)


def test_decode_frames_keeps_only_wanted_frames_upright_rgb(demo_media):
    path = demo_media("wolfgang-langer")
    frames = list(decode_frames(path, [30, 0, 471, 30], max_side=320))
    assert [f.index for f in frames] == [0, 30, 471]
    assert [f.time for f in frames] == pytest.approx([0.0, 30 * 1001 / 24000, 471 * 1001 / 24000])
    assert all(f.image.shape == (180, 320, 3) and f.image.dtype == np.uint8 for f in frames)
    with pytest.raises(ValueError, match="out of range"):
        list(decode_frames(path, [472]))


@pytest.mark.parametrize(("key", "reason"), BAD_FILE_REASONS.items())
def test_bad_files_raise_media_error_with_reason(bad_files, key, reason):
    with pytest.raises(MediaError) as err:
        probe(bad_files[key])
    assert err.value.reason == reason
    assert str(bad_files[key]) in err.value.message


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(MediaError) as err:
        probe(tmp_path / "nowhere.mp4")
    assert err.value.reason == "missing_file"


def test_rotated_video_gives_upright_frames_with_swapped_size(tmp_path, demo_media):
    source = demo_media("single-face")
    rotated = make_rotated_video(source, tmp_path / "rotated.mp4")
    upright = make_upright_reference(source, tmp_path / "upright.mp4")
    info = probe(rotated)
    assert (info.coded_width, info.coded_height) == (180, 320)
    assert (info.width, info.height) == (320, 180)
    assert info.rotation == 270
    got = list(decode_frames(rotated, [0, 40]))
    want = list(decode_frames(upright, [0, 40]))
    for g, w in zip(got, want, strict=True):
        assert g.image.shape == w.image.shape == (180, 320, 3)
        # upright, not upside down: far closer to the reference than the reference turned 180 degrees
        assert mse(g.image, w.image) < 0.2 * mse(g.image, np.rot90(w.image, 2))


def test_vfr_video_frame_times_come_from_real_pts(vfr_video):
    info = probe(vfr_video)
    assert info.variable_frame_rate
    assert info.n_frames == 60 + 20
    times = [t for _, t, _ in iter_decoded(vfr_video)]
    assert times == pytest.approx(list(info.frame_times))
    assert np.diff(times)[:59] == pytest.approx(1 / 30)
    assert np.diff(times)[60:] == pytest.approx(1 / 10)


@pytest.mark.parametrize(("start", "end"), [(0, 10), (13, 37), (50, 100), (87, 99)])
def test_encode_clip_is_frame_exact(pattern_video, tmp_path, start, end):
    out = encode_clip(pattern_video, start, end, tmp_path / "clip.mp4")
    assert out == tmp_path / "clip.mp4" and out.is_file()
    assert count_frames(out) == end - start
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temporary file left
    # the clip's first and last frames are the source's start and end-1 frames, not their neighbours
    first, last = list(decode_frames(out, [0, end - start - 1]))
    candidates = [i for i in (start - 1, start, start + 1, end - 2, end - 1, end) if 0 <= i < 100]
    source = {f.index: f.image for f in decode_frames(pattern_video, candidates)}
    assert min(source, key=lambda i: mse(first.image, source[i])) == start
    assert min(source, key=lambda i: mse(last.image, source[i])) == end - 1


def test_encode_clip_keeps_vfr_timing(vfr_video, tmp_path):
    info = probe(vfr_video)
    start, end = 50, 75  # crosses from 30 fps into the 10 fps part
    out = encode_clip(vfr_video, start, end, tmp_path / "vfr_clip.mp4")
    clip = probe(out)
    assert clip.n_frames == end - start
    assert clip.frame_times - clip.frame_times[0] == pytest.approx(
        info.frame_times[start:end] - info.frame_times[start], abs=2e-3
    )


def test_encode_clip_rejects_a_bad_range(pattern_video, tmp_path):
    for start, end in [(-1, 5), (5, 5), (90, 101)]:
        with pytest.raises(ValueError, match="invalid frame range"):
            encode_clip(pattern_video, start, end, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_process_leaves_no_encoder_behind(tmp_path):
    """encode_clip runs ffmpeg through run_with_parent: SIGKILL of the caller ends the child too."""
    pid_file = tmp_path / "child.pid"
    child_code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    code = (
        "import sys, threading\n"
        "from tasks.media import run_with_parent\n"
        f"threading.Thread(target=run_with_parent, args=([sys.executable, '-c', {child_code!r}],)).start()\n"
    )
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline and parent.poll() is None, "the child did not start"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = _running(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive, "the child outlived its killed parent"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
