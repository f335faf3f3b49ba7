"""Test media made with the real ffmpeg binary, shared by the media, segment, face-filter and summary tests:
small, short videos of known content and the kinds of broken file real crawls bring home."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import numpy as np

from tasks.media import ffmpeg_exe


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
