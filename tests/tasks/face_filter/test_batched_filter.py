"""The face filter's batched path: the detector settings reach the detector, and a video's clips detected
in batches while the next ones decode give the rows that clip-by-clip detection gives."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from flows.config import load_config
from models.detectors import create_detector
from tasks.face_filter.detect import batched_clips, detect_clip
from tasks.face_filter.measures import measure_clip
from tasks.face_filter.runner import build_detector, candidate_row, filter_video
from tasks.segment import segment_video

SCENE = "Interview"


def test_detector_settings_reach_the_detector():
    cfg = load_config(
        overrides=[
            "face_filter.detector.size=480",
            "face_filter.detector.batch=4",
            "face_filter.detector.backend=onnxruntime",
            "face_filter.detector.device=cpu",
        ]
    )
    detector = build_detector(cfg.face_filter.detector)
    assert (detector.size, detector.batch) == (480, 4)
    assert detector.version.endswith("@480/onnxruntime/cpu")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("face_filter.detector.batch=0", "batch"),
        ("face_filter.detector.size=16", "size"),
        ("face_filter.detector.backend=tensorrt", "backend"),
    ],
)
def test_bad_detector_settings_name_the_setting(override, message):
    with pytest.raises((ValidationError, ValueError), match=message):
        load_config(overrides=[override])


def test_clips_are_grouped_until_a_batch_is_full():
    class Clip:
        def __init__(self, n: int) -> None:
            self.frames = [None] * n

    groups = list(batched_clips([Clip(8), Clip(8), Clip(3), Clip(8), Clip(1)], 16))
    assert [[len(c.frames) for c in g] for g in groups] == [[8, 8], [3, 8, 1]]
    with pytest.raises(ValueError, match="n_frames must be at least 1"):
        list(batched_clips([], 0))


@pytest.mark.slow
def test_batched_video_gives_the_rows_of_clip_by_clip_detection(demo_media):
    cfg = load_config(overrides=["face_filter.detector.device=cpu", "face_filter.detector.batch=12"])
    path = demo_media("face-noface")
    video = {"video_id": "local-fnf", "scene": SCENE, "local_path": str(path)}
    detector = create_detector("scrfd", device="cpu", batch=12)
    got = filter_video(video, SCENE, cfg.segment, cfg.face_filter, detector)

    seg = segment_video(path, "local-fnf", SCENE, cfg.segment)
    want_clips, want_candidates, n_faces = [], [], 0
    for sample in seg.clips:
        faces = detect_clip(sample, detector, seg.media["width"] / sample.frames[0].image.shape[1])
        want_clips.append(sample.clip)
        want_candidates.append(candidate_row(sample.clip, measure_clip(faces), cfg.face_filter.rules))
        n_faces += sum(len(f.detections) for f in faces.frames)
    assert got.media["status"] == "ok" and got.media["n_clips"] == len(want_clips) >= 3
    assert got.clips == want_clips
    assert len(got.faces) == n_faces
    assert [(c["keep"], c["reason"]) for c in got.candidates] == [
        (c["keep"], c["reason"]) for c in want_candidates
    ]
    assert {c["keep"] for c in got.candidates} == {True, False}  # both sides of the rules
    for a, b in zip(got.candidates, want_candidates, strict=True):
        assert a["measures"].keys() == b["measures"].keys()
        np.testing.assert_allclose(list(a["measures"].values()), list(b["measures"].values()), atol=1e-3)
