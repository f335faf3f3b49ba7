"""The face-detector registry and the insightface SCRFD detector, on real photos."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from models.detectors import FaceDetections, create_detector, list_detectors
from models.detectors.insightface_scrfd import cuda_usable, select_providers
from tasks.face_filter.measures import box_iou


def rgb(path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])


@pytest.fixture(scope="module")
def detector():
    return create_detector("scrfd", device="auto")


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
    assert again.model is detector.model
    assert again.det_thresh == 0.3
    assert detector.version.startswith("scrfd:scrfd.onnx:")


def test_cuda_only_when_it_can_load(detector):
    if cuda_usable():
        assert detector.providers[0] == "CUDAExecutionProvider"
    else:
        assert detector.providers == ["CPUExecutionProvider"]
        assert select_providers("auto") == ("CPUExecutionProvider",)
        with pytest.raises(ValueError, match="cuda"):
            select_providers("cuda")
    with pytest.raises(ValueError, match="'tpu' is not one of"):
        select_providers("tpu")


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
