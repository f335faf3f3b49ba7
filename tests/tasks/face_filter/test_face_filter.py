"""Stage 3 on real footage: the rule list keeps clips of a clear single face and drops the others with
the rule that failed; quality ranking and the budget; crops around the face track."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tasks.face_filter.config import FaceFilterConfig
from tasks.face_filter.crops import CropJob, fit_scene, interpolate_boxes, square_crop, write_video_crops
from tasks.face_filter.detect import detect_clip, face_rows
from tasks.face_filter.measures import measure_clip, yaw_degrees
from tasks.face_filter.rank import apply_budget, face_quality
from tasks.face_filter.rules import RULES, RuleSpec, apply_rules, default_rules
from tasks.segment import SegmentConfig, segment_video


@pytest.fixture(scope="module")
def filtered(videos, detector):
    """name -> list of (clip row, ClipFaces, measures, verdict), computed once per video."""
    cache: dict[str, list] = {}
    samples: dict[str, object] = {}
    rules = FaceFilterConfig().rules

    def run(name: str) -> list:
        if name not in cache:
            seg = segment_video(videos[name], name, "Interview", SegmentConfig(), seed=0)
            out = []
            for sample in seg.clips:
                faces = detect_clip(sample, detector, seg.media["width"] / sample.frames[0].image.shape[1])
                measures = measure_clip(faces)
                out.append((sample.clip, faces, measures, apply_rules(measures, rules)))
                samples[sample.clip["clip_id"]] = sample
            assert seg.media["status"] == "ok", seg.media
            cache[name] = out
        return cache[name]

    run.samples = samples  # the sampled frames, by clip id
    return run


@pytest.mark.slow
def test_no_face_video_clips_all_fail_the_presence_rule(filtered):
    clips = filtered("no_face")
    assert clips
    for _, _, measures, verdict in clips:
        assert (verdict.keep, verdict.reason, verdict.value) == (False, "face_presence", 0.0)
        assert measures["presence"] == 0.0
        assert math.isnan(measures["face_px"])


@pytest.mark.slow
def test_close_up_of_one_woman_is_kept(filtered):
    clips = filtered("closeup")
    assert len(clips) >= 2
    for _, _, measures, verdict in clips:
        assert verdict.keep, (verdict, measures)
        assert measures["presence"] == 1.0 and measures["dominance"] == 100.0
        assert measures["yaw"] < 30 and measures["face_frac"] > 0.5


@pytest.mark.slow
def test_group_photo_fails_the_dominant_face_rule(filtered):
    clips = filtered("multi")
    assert clips
    for _, _, measures, verdict in clips:
        assert verdict.reason == "dominant_face"
        assert measures["max_faces"] == 5 and 1.0 <= verdict.value < 2.0


@pytest.mark.parametrize("name", ["face_noface", "noface_face"])
@pytest.mark.slow
def test_face_then_no_face_gives_clips_on_both_sides_of_the_rule(filtered, name):
    reasons = {verdict.reason for _, _, _, verdict in filtered(name)}
    assert None in reasons and "face_presence" in reasons


@pytest.mark.slow
def test_faces_rows_match_the_manifest(filtered):
    from data_catalog.io import to_table
    from data_catalog.lineage import RunContext
    from data_catalog.schemas import get_manifest

    clip, faces, _, _ = filtered("multi")[0]
    rows = face_rows(faces)
    assert len(rows) == 5 * len(faces.frames)
    lineage = RunContext.create({}).lineage("face_filter")
    table = to_table(get_manifest("faces"), [{**r, **lineage} for r in rows])
    df = table.to_pandas()
    assert set(df["face_index"]) == {0, 1, 2, 3, 4}
    first = df[df["frame_index"] == df["frame_index"].min()].sort_values("face_index")
    areas = ((first.x2 - first.x1) * (first.y2 - first.y1)).to_numpy()
    assert np.all(np.diff(areas) <= 0) and len(first["landmarks"].iloc[0]) == 10


@pytest.mark.slow
def test_blur_fails_the_sharpness_rule(filtered, detector):
    import cv2

    from tasks.media import Frame
    from tasks.segment import ClipSample

    clip, faces, measures, _ = filtered("closeup")[0]
    sample = filtered.samples[clip["clip_id"]]
    blurred = ClipSample(
        clip, [Frame(f.index, f.time, cv2.GaussianBlur(f.image, (0, 0), 6)) for f in sample.frames]
    )
    m = measure_clip(detect_clip(blurred, detector, faces.scale))
    assert m["presence"] == 1.0 and m["sharpness"] < measures["sharpness"] / 3
    verdict = apply_rules(m, default_rules())
    assert (verdict.reason, verdict.value) == ("sharpness", m["sharpness"])


def test_yaw_from_landmarks_is_zero_when_frontal_and_grows_with_turn():
    frontal = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], float)
    assert yaw_degrees(frontal) == pytest.approx(0.0, abs=1e-6)
    turned = frontal.copy()
    turned[2, 0] = 62  # nose towards the right column
    assert 25 < yaw_degrees(turned) < 45
    profile = frontal.copy()
    profile[2, 0] = 75
    assert yaw_degrees(profile) == pytest.approx(90.0)
    # Roll does not change the estimate: rotate the frontal face by 30 degrees.
    a = math.radians(30)
    rot = frontal @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    assert abs(yaw_degrees(rot)) < 1e-6


def test_rules_report_the_first_failure_and_nan_fails():
    good = {
        "presence": 1.0,
        "cut_change": 0.1,
        "score": 0.9,
        "dominance": 100.0,
        "face_px": 200.0,
        "face_frac": 0.5,
        "yaw": 5.0,
        "sharpness": 0.3,
        "track_iou": 0.9,
        "track_shift": 0.05,
    }
    assert apply_rules(good, default_rules()).keep
    bad = {**good, "yaw": 70.0, "sharpness": 0.01}
    verdict = apply_rules(bad, default_rules())
    assert (verdict.keep, verdict.reason, verdict.value) == (False, "max_yaw", 70.0)
    reordered = [RuleSpec(name="sharpness", threshold=0.05), RuleSpec(name="max_yaw", threshold=45)]
    assert apply_rules(bad, reordered).reason == "sharpness"
    assert apply_rules({**good, "score": math.nan}, default_rules()).reason == "min_score"
    assert [r.name for r in default_rules()] == list(RULES)


def test_config_rejects_unknown_or_repeated_rules():
    with pytest.raises(ValueError, match="unknown face rule 'smile'.*face_presence"):
        FaceFilterConfig(rules=[{"name": "smile", "threshold": 1}])
    with pytest.raises(ValueError, match="more than once"):
        FaceFilterConfig(rules=[{"name": "max_yaw", "threshold": 1}, {"name": "max_yaw", "threshold": 2}])
    cfg = FaceFilterConfig()
    assert cfg.budget_for(7) == 140 and cfg.budget_for(3) == 60
    with pytest.raises(ValueError, match="target must be >= 1"):
        cfg.budget_for(0)


def test_budget_keeps_the_best_and_marks_the_rest_over_budget():
    df = pd.DataFrame(
        {
            "clip_id": ["a", "b", "c", "d", "e"],
            "keep": [True, True, False, True, True],
            "reason": [None, None, "face_presence", None, None],
            "value": [None, None, 0.0, None, None],
            "quality": [0.5, 0.9, 0.0, 0.7, 0.7],
        }
    )
    out = apply_budget(df, budget=2).set_index("clip_id")
    assert list(out.loc[["b", "d", "e", "a"], "rank"]) == [1, 2, 3, 4]  # ties broken by clip id
    assert pd.isna(out.loc["c", "rank"])
    assert list(out[out["keep"]].index) == ["b", "d"]
    assert out.loc["e", "reason"] == "over_budget" and out.loc["e", "value"] == 3
    assert out.loc["c", "reason"] == "face_presence"
    assert apply_budget(df, budget=10)["keep"].sum() == 4  # fewer than the budget: all stay


@pytest.mark.slow
def test_quality_prefers_large_sharp_frontal_faces(filtered):
    closeup = [face_quality(m) for _, _, m, _ in filtered("closeup")]
    assert all(0.3 < q <= 1 for q in closeup)
    assert face_quality(filtered("no_face")[0][2]) == 0.0
    m = filtered("closeup")[0][2]
    assert face_quality({**m, "yaw": 60.0}) < face_quality(m)
    assert face_quality({**m, "sharpness": 0.01}) < face_quality(m)


@pytest.mark.slow
def test_crops_have_the_paper_sizes_and_contain_the_face(filtered, videos, detector, tmp_path):
    import cv2

    from tasks.face_filter.config import CropSettings

    clip, faces, _, _ = filtered("closeup")[0]
    rows = [r for r in face_rows(faces) if r["face_index"] == 0]
    job = CropJob(
        clip["clip_id"],
        clip["start_frame"],
        clip["end_frame"],
        np.array([r["frame_index"] for r in rows]),
        np.array([[r["x1"], r["y1"], r["x2"], r["y2"]] for r in rows]),
        rows[0]["frame_width"],
    )
    (res,) = write_video_crops(videos["closeup"], [job], tmp_path, "Interview", CropSettings())
    assert res.error is None and res.n_crops == clip["n_frames"]
    face_files = sorted((tmp_path / "faces" / "Interview" / clip["clip_id"]).iterdir())
    scene_files = sorted((tmp_path / "scenes" / "Interview" / clip["clip_id"]).iterdir())
    assert [p.name for p in face_files][:2] == ["00001.jpg", "00002.jpg"]
    assert len(face_files) == len(scene_files) == clip["n_frames"]
    for path in face_files[:: max(1, len(face_files) // 4)]:
        crop = cv2.imread(str(path))[:, :, ::-1]
        assert crop.shape == (224, 224, 3)
        dets = detector.detect(np.ascontiguousarray(crop))
        assert len(dets) == 1 and dets.areas[0] > 0.25 * 224 * 224
    assert cv2.imread(str(scene_files[0])).shape == (336, 504, 3)
    # A second call finds both folders complete and writes nothing.
    mtime = face_files[0].stat().st_mtime_ns
    (again,) = write_video_crops(videos["closeup"], [job], tmp_path, "Interview", CropSettings())
    assert again == res and face_files[0].stat().st_mtime_ns == mtime
    assert not [p for p in (tmp_path / "faces" / "Interview").iterdir() if p.name.startswith(".")]


def test_crop_geometry():
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 90:110] = 255
    crop = square_crop(image, np.array([90, 40, 110, 60.0]), margin=1.0, size=40)
    assert crop.shape == (40, 40, 3) and crop[20, 20].min() == 255 and crop[2, 2].max() == 0
    edge = square_crop(image, np.array([-10, -10, 10, 10.0]), margin=0.0, size=20)
    assert edge.shape == (20, 20, 3)  # off the frame: black fill, no error
    box = fit_scene(np.full((360, 640, 3), 200, np.uint8), 336, 504, "letterbox")
    assert box.shape == (336, 504, 3) and box[0].max() == 0 and box[168].min() == 200
    cut = fit_scene(np.full((360, 640, 3), 200, np.uint8), 336, 504, "crop")
    assert cut.shape == (336, 504, 3) and cut.min() == 200
    boxes = interpolate_boxes(
        np.array([10, 20]), np.array([[0, 0, 10, 10], [10, 0, 20, 10.0]]), np.arange(5, 26)
    )
    assert boxes[0, 0] == 0 and boxes[10, 0] == 5 and boxes[-1, 0] == 10
