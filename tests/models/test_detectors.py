"""The face-detector registry and the SCRFD detector (shape-free, batched, any backend), on real photos."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from models.detectors import FaceDetections, backends, create_detector, list_detectors
from models.detectors.backends import (
    device_canvas,
    host_canvas,
    ort_cuda_offered,
    resolve_device,
    torch_cuda_usable,
)
from tasks.face_filter.measures import box_iou


def rgb(path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])


@pytest.fixture(scope="module")
def multi_face(demo_media) -> np.ndarray:
    return rgb(demo_media("multi-face-image"))


@pytest.fixture(scope="module")
def single_face(demo_media) -> np.ndarray:
    return rgb(demo_media("single-face-image"))


def test_registry_lists_and_builds_by_name():
    assert list_detectors() == ["insightface-pack", "scrfd"]
    assert list_detectors("scrfd*") == ["scrfd"]
    with pytest.raises(ValueError, match="unknown face detector 'mtcnn'.*scrfd"):
        create_detector("mtcnn")


def test_scrfd_finds_every_face_with_landmarks_largest_first(detector, multi_face):
    dets = detector.detect(multi_face)
    assert isinstance(dets, FaceDetections)
    assert len(dets) == 5  # the five people of the group photo
    assert (dets.width, dets.height) == (multi_face.shape[1], multi_face.shape[0])
    assert np.all(np.diff(dets.areas) <= 0)
    assert np.all(dets.scores >= 0.5)
    assert dets.landmarks.shape == (5, 5, 2)
    for box, pts in zip(dets.boxes, dets.landmarks, strict=True):
        inside = (pts[:, 0] >= box[0]) & (pts[:, 0] <= box[2]) & (pts[:, 1] >= box[1]) & (pts[:, 1] <= box[3])
        assert inside.all()
        assert pts[0, 0] < pts[1, 0]  # left eye left of right eye: upright faces


def test_no_face_on_a_blank_image(detector):
    assert len(detector.detect(np.full((360, 640, 3), 128, np.uint8))) == 0


def test_padding_maps_boxes_back_to_the_original_image(single_face):
    plain = create_detector("scrfd", device="cpu", pad=0.0).detect(single_face)
    padded = create_detector("scrfd", device="cpu", pad=0.3).detect(single_face)
    assert len(plain) == len(padded) == 1
    assert box_iou(plain.boxes[0], padded.boxes[0]) > 0.8
    assert np.abs(plain.landmarks[0] - padded.landmarks[0]).max() < 0.1 * (
        plain.boxes[0, 2] - plain.boxes[0, 0]
    )


def test_model_is_loaded_once_per_process(detector):
    again = create_detector("scrfd", device="auto", det_thresh=0.3)
    assert again.backend is detector.backend
    assert again.det_thresh == 0.3
    assert detector.version.startswith("scrfd:scrfd.onnx:")


def test_version_says_which_backend_and_device_ran(detector):
    gpu = ort_cuda_offered() or torch_cuda_usable()
    assert detector.version.endswith(f"@640/{detector.backend.name}/{'cuda' if gpu else 'cpu'}")
    cpu = create_detector("scrfd", device="cpu", size=480)
    assert cpu.version.endswith("@480/onnxruntime/cpu")


@pytest.mark.skipif(ort_cuda_offered() or torch_cuda_usable(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_a_clear_error_and_auto_says_it_runs_on_cpu_once(caplog):
    with pytest.raises(ValueError, match="device 'cuda' requested, but no CUDA GPU is usable"):
        create_detector("scrfd", device="cuda")
    backends._say_cpu_fallback.cache_clear()
    with caplog.at_level("WARNING", logger="models.detectors.backends"):
        assert resolve_device("auto") == "cpu"
        assert resolve_device("auto") == "cpu"
        create_detector("scrfd", device="auto", size=320)
    said = [r.getMessage() for r in caplog.records if "detecting on the CPU" in r.getMessage()]
    assert said == ["face detector device 'auto': no CUDA GPU is usable, detecting on the CPU"]


def test_unknown_device_or_backend_is_named():
    with pytest.raises(ValueError, match="device 'tpu' is not one of auto, cpu, cuda"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="backend 'tensorrt' is not one of auto, onnxruntime, torch"):
        create_detector("scrfd", device="cpu", backend="tensorrt")


def test_insightface_pack_directory_loads_its_detection_model(tmp_path, demo_media, detector, multi_face):
    from data_catalog.assets import asset_path

    pack = tmp_path / "pack"
    pack.mkdir()
    shutil.copy(asset_path("scrfd-2.5g-kps"), pack / "det_2.5g.onnx")
    det = create_detector("insightface-pack", pack=str(pack), device="cpu")
    assert len(det.detect(multi_face)) == len(detector.detect(multi_face))


def test_bad_inputs_are_clear_errors(detector, tmp_path):
    with pytest.raises(ValueError, match="expected an H x W x 3 uint8 RGB image"):
        detector.detect(np.zeros((64, 64), np.uint8))
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        create_detector("scrfd", model_path=tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="pad must be"):
        create_detector("scrfd", pad=2.0)
    with pytest.raises(ValueError, match="size .* at least 32 pixels, got 16"):
        create_detector("scrfd", device="cpu", size=16)
    with pytest.raises(ValueError, match="batch must be at least 1 image, got 0"):
        create_detector("scrfd", device="cpu", batch=0)


@pytest.mark.skipif(not (ort_cuda_offered() or torch_cuda_usable()), reason="no CUDA GPU on this machine")
def test_cuda_backends_find_the_faces_the_cpu_finds(multi_face):
    cpu = create_detector("scrfd", device="cpu").detect_batch([multi_face] * 3)
    auto = create_detector("scrfd", device="auto", batch=64)
    assert auto.backend.device == "cuda"
    choices = ["torch"] if not ort_cuda_offered() else ["torch", "onnxruntime"]
    for backend in choices:
        try:
            gpu = create_detector("scrfd", device="cuda", backend=backend, batch=64)
        except RuntimeError as exc:  # onnxruntime's CUDA provider offered but its libraries missing
            assert backend == "onnxruntime" and "did not load" in str(exc)
            continue
        for a, b in zip(cpu, gpu.detect_batch([multi_face] * 3), strict=True):
            assert len(a) == len(b) == 5
            assert all(box_iou(x, y) >= 0.99 for x, y in zip(a.boxes, b.boxes, strict=True))


@pytest.mark.parametrize("border", [0, 64])
def test_the_device_canvas_is_the_host_canvas_within_a_level(demo_media, border):
    """Where torch runs the graph the frames are padded and resized there (run here on the CPU): the same
    canvas as OpenCV's on the host, up to the bilinear's rounding."""
    from tasks.media import decode_frames

    frames = [f.image for f in decode_frames(demo_media("wolfgang-langer"), np.arange(0, 40, 10))]
    h, w = frames[0].shape[:2]
    for canvas, resized in (
        ((416, 640), (407, 640)),
        ((224, 320), (203, 320)),
        ((h + 2 * border,) * 2, (h + 2 * border, w + 2 * border)),
    ):
        if resized[1] > canvas[1]:
            canvas = (canvas[0], resized[1])
        host = host_canvas(frames, border, canvas, resized).astype(np.int16)
        dev = (
            device_canvas(frames, border, canvas, resized, "cpu").permute(0, 2, 3, 1).numpy().astype(np.int16)
        )
        assert dev.shape == host.shape
        diff = np.abs(dev - host)
        assert diff.mean() < 0.3 and diff.max() <= 2, (canvas, resized, diff.mean(), diff.max())
        assert not dev[:, resized[0] :].any() and not dev[:, :, resized[1] :].any()  # black beyond the image


@pytest.mark.parametrize(
    ("shape", "border", "canvas", "resized"),
    [
        ((360, 640), 64, (416, 640), (406, 640)),
        ((640, 360), 0, (640, 384), (640, 360)),
        ((640, 360), 10, (640, 640), (640, 372)),
    ],
)
def test_the_host_canvas_is_the_padded_frame_resized_into_black(demo_media, shape, border, canvas, resized):
    photo = cv2.imread(str(demo_media("multi-face-image")))[:, :, ::-1]
    frames = [
        np.ascontiguousarray(cv2.resize(photo, shape[::-1])),
        np.ascontiguousarray(cv2.resize(photo[::-1], shape[::-1])),
    ]
    out = host_canvas(frames, border, canvas, resized)
    for frame, got in zip(frames, out, strict=True):
        want = np.zeros((*canvas, 3), np.uint8)
        want[: resized[0], : resized[1]] = cv2.resize(
            np.pad(frame, ((border, border), (border, border), (0, 0))), resized[::-1]
        )
        np.testing.assert_array_equal(got, want)
