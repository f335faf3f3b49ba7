"""Same decisions from the faster detector: on the demo and test footage, every backend and size keeps the
clips that insightface's own SCRFD at 640 x 640 (one frame at a time, the face filter's detector before
batching) keeps, with the same rule failing on the others, and the dominant face boxes agree (IoU >= 0.95
at 640; >= 0.9 at 480 and 320)."""

from __future__ import annotations

import math

import pytest

from models.detectors import create_detector
from models.detectors.insightface_scrfd import reference_detector
from tasks.face_filter.config import FaceFilterConfig
from tasks.face_filter.detect import detect_clips
from tasks.face_filter.measures import box_iou, measure_clip
from tasks.face_filter.rules import apply_rules
from tasks.segment import SegmentConfig, segment_video

pytestmark = pytest.mark.slow

#: variant -> (detector options, every how many clips it sees, least IoU of its dominant boxes with the
#: reference's). Smaller inputs move box edges by a pixel or two of a coarser grid: IoU 0.92-0.97 (all >= 0.9).
VARIANTS = {
    "onnxruntime-640": ({"backend": "onnxruntime", "size": 640, "batch": 16}, 1, 0.95),
    "torch-640": ({"backend": "torch", "size": 640, "batch": 16}, 3, 0.95),  # eager torch is slow on CPU
    # torch with its input canvas padded and resized by torch, as on a GPU (a bilinear a level off cv2's)
    "torch-640-device-canvas": ({"backend": "torch", "size": 640, "batch": 16}, 3, 0.95),
    "onnxruntime-480": ({"backend": "onnxruntime", "size": 480, "batch": 16}, 1, 0.9),
    "onnxruntime-320": ({"backend": "onnxruntime", "size": 320, "batch": 16}, 1, 0.9),
}


@pytest.fixture(scope="module")
def samples(videos, demo_media):  # noqa: F811
    """(scale, clip) of every clip of the demo video and the test footage (whose closeup is the demo's
    first 4 s: the whole demo instead)."""
    footage = {**videos, "closeup": demo_media("wolfgang-langer"), "single": demo_media("single-face")}
    out = []
    for name, path in footage.items():
        seg = segment_video(path, name, "Interview", SegmentConfig(), seed=0)
        clips = list(seg.clips)
        assert seg.media["status"] == "ok", seg.media
        out.extend((seg.media["width"] / c.frames[0].image.shape[1], c) for c in clips)
    return out


def decide(samples, detector, together: bool) -> dict:
    """clip id -> (keep, reason, the dominant face box per sampled frame or None). ``together``: the clips
    of a video go through the detector in one call (the shard path), else one clip at a time (as before)."""
    rules = FaceFilterConfig().rules
    groups: dict[object, list] = {}
    for k, (scale, sample) in enumerate(samples):
        groups.setdefault(sample.clip["video_id"] if together else k, []).append((scale, sample))
    out = {}
    for group in groups.values():
        found = detect_clips([s for _, s in group], detector, group[0][0])
        for (_, sample), faces in zip(group, found, strict=True):
            verdict = apply_rules(measure_clip(faces), rules)
            boxes = [f.detections.boxes[0] if len(f.detections) else None for f in faces.frames]
            out[sample.clip["clip_id"]] = (verdict.keep, verdict.reason, boxes)
    return out


@pytest.fixture(scope="module")
def reference(samples):
    return decide(samples, reference_detector(), together=False)


def test_footage_has_clips_on_both_sides_of_the_rules(reference):
    keeps = [keep for keep, _, _ in reference.values()]
    assert len(keeps) >= 15 and any(keeps) and not all(keeps)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_backend_and_size_keeps_the_same_clips_with_agreeing_boxes(
    samples, reference, variant, monkeypatch
):
    options, every, least_iou = VARIANTS[variant]
    detector = create_detector("scrfd", device="cpu", **options)
    if variant.endswith("device-canvas"):
        monkeypatch.setattr(detector.backend, "canvas_on_device", True)  # the backend is shared: restored
    got = decide(samples[::every], detector, together=True)
    changed = {c: (reference[c][:2], got[c][:2]) for c in got if got[c][:2] != reference[c][:2]}
    assert not changed, f"{variant}: decisions differ from the reference on {changed}"
    worst = math.inf
    for clip_id, (_, _, boxes) in got.items():
        for mine, ref in zip(boxes, reference[clip_id][2], strict=True):
            assert (mine is None) == (ref is None), f"{variant}: {clip_id}: a face on one side only"
            if mine is not None:
                worst = min(worst, box_iou(mine, ref))
    assert worst >= least_iou, f"{variant}: a dominant face box has IoU {worst:.3f} with the reference's"
