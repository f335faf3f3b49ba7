"""What the page draws comes from the catalog: the dominant face's boxes, relative to the clip."""

from __future__ import annotations

import pandas as pd

from tasks.annotate.web.manifests import face_track, read_batch
from tests.tasks.annotate.web.conftest import BATCH, TITLE


def test_face_track_keeps_the_dominant_face_in_clip_time_and_frame_fractions():
    faces = pd.DataFrame(
        {
            "time": [10.5, 10.0, 10.0],
            "face_index": [0, 0, 1],
            "x1": [64.0, 32.0, 0.0],
            "y1": [36.0, 18.0, 0.0],
            "x2": [320.0, 160.0, 10.0],
            "y2": [180.0, 90.0, 10.0],
            "frame_width": [640, 640, 640],
            "frame_height": [360, 360, 360],
        }
    )
    assert face_track(faces, start_time=10.0) == [[0.0, 0.05, 0.05, 0.25, 0.25], [0.5, 0.1, 0.1, 0.5, 0.5]]


def test_read_batch_joins_titles_and_tracks_of_every_clip(batch, footage):
    data = read_batch(batch, BATCH)
    assert len(data.tasks) == 24 and set(data.tasks["clip_id"]) == set(footage.clip_ids)
    assert set(data.titles.values()) == {TITLE}
    for clip_id in footage.clip_ids:
        track = data.boxes[clip_id]
        assert len(track) == 2 and all(0 <= t < 1.0 for t, *_ in track)  # 2 sampled frames of <= 1 s
        assert all(0 < x1 < x2 < 1 and y1 < y2 for _, x1, y1, x2, y2 in track)
    assert all(p and p.endswith(".mp4") for p in data.tasks["clip_path"])
