"""tasks/media.py on real files: probe, decode once, frame-exact clip encoding, bad input, rotation, VFR.

Test videos are made here with the real ffmpeg binary, small and short; the helpers are shared with
test_segment.py.
"""

import os
import random
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
    ffmpeg_exe,
    iter_decoded,
    probe,
)


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def make_pattern_video(path: Path, seconds: float = 4.0, rate: int = 25, gop: int = 12) -> Path:
    """A synthetic video whose every frame differs visibly (testsrc2), keyframes every ``gop`` frames."""
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={rate}:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-g", str(gop), "-pix_fmt", "yuv420p",
        str(path),
    )  # fmt: skip
    return path


def make_vfr_video(path: Path) -> Path:
    """30 fps for 2 s, then every third frame (10 fps) for 2 s; the dropped frames' gaps stay in the pts."""
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=4",
        "-vf", "select='lt(n,60)+not(mod(n,3))'", "-fps_mode", "vfr",
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-g", "15", str(path),
    )  # fmt: skip
    return path


def make_rotated_video(source: Path, path: Path) -> Path:
    """The source (made 320x180) stored sideways (turned 90 degrees counter-clockwise, 180x320) with a
    display matrix that turns it back: a player shows it upright, like a phone video."""
    sideways = path.with_name(f"{path.stem}.sideways.mp4")
    ffmpeg("-i", str(source), "-vf", "scale=320:180,transpose=cclock", "-an", "-c:v", "libx264",
           "-preset", "ultrafast", "-crf", "12", str(sideways))  # fmt: skip
    ffmpeg("-display_rotation", "-90", "-i", str(sideways), "-c", "copy", str(path))
    return path


def make_upright_reference(source: Path, path: Path) -> Path:
    ffmpeg("-i", str(source), "-vf", "scale=320:180", "-an", "-c:v", "libx264", "-preset", "ultrafast",
           "-crf", "12", str(path))  # fmt: skip
    return path


#: The kind of bad input each of :func:`make_bad_files`'s entries is -> the reason it must get.
BAD_FILE_REASONS = {
    "random_bytes": "not_a_video",
    "still_image": "not_a_video",
    "truncated": "truncated",
    "truncated_faststart": "truncated",
    "empty": "empty_file",
    "no_video_stream": "no_video_stream",
    "directory": "not_a_file",
    "fifo": "not_a_file",
    "symlink_loop": "not_a_file",
    "broken_symlink": "missing_file",
}


def make_bad_files(folder: Path, good: Path) -> dict[str, Path]:
    """One input per kind of bad input (:data:`BAD_FILE_REASONS`): random bytes, a PNG named ``.mp4``, a
    cut-off mp4 (index at the end, lost), a cut-off 'faststart' mp4 (index complete, frames missing), an
    empty file, an audio-only file, a directory named ``.mp4``, a FIFO, a symlink loop, a broken symlink."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    files = {
        "random_bytes": folder / "random.mp4",
        "still_image": folder / "image.mp4",
        "truncated": folder / "truncated.mp4",
        "truncated_faststart": folder / "truncated_faststart.mp4",
        "empty": folder / "empty.mp4",
        "no_video_stream": folder / "audio_only.m4a",
        "directory": folder / "folder.mp4",
        "fifo": folder / "fifo.mp4",
        "symlink_loop": folder / "loop.mp4",
        "broken_symlink": folder / "dangling.mp4",
    }
    ok, png = cv2.imencode(".png", np.full((64, 64, 3), 127, np.uint8))
    files["still_image"].write_bytes(png.tobytes())
    files["directory"].mkdir()
    os.mkfifo(files["fifo"])
    files["symlink_loop"].symlink_to(files["symlink_loop"].name)
    files["broken_symlink"].symlink_to("no-such-file.mp4")
    files["random_bytes"].write_bytes(bytes(rng.getrandbits(8) for _ in range(65536)))
    whole = folder / "whole.mp4"
    ffmpeg("-i", str(good), "-t", "3", "-an", "-c:v", "libx264", "-preset", "ultrafast", str(whole))
    data = whole.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    ffmpeg("-i", str(whole), "-c", "copy", "-movflags", "+faststart", str(folder / "faststart.mp4"))
    data = (folder / "faststart.mp4").read_bytes()
    files["truncated_faststart"].write_bytes(data[: len(data) // 2])
    files["empty"].write_bytes(b"")
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(files["no_video_stream"]))
    return files


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))


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
