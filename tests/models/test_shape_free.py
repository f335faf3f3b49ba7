"""The shape-free SCRFD graph: equal to the original at 640 x 640, free in batch, height and width, cached
by sha256; a graph it cannot free keeps its fixed shape with a warning naming the file."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import numpy_helper

from data_catalog.assets import asset_path
from models.detectors import create_detector
from models.detectors.insightface_scrfd import reference_detector
from models.detectors.scrfd import MEAN, STD
from models.detectors.shape_free import fixed_input_shape, sha256_of, shape_free_graph
from tasks.face_filter.measures import box_iou


@pytest.fixture(scope="module")
def source():
    return asset_path("scrfd-2.5g-kps")


@pytest.fixture(scope="module")
def freed(source, tmp_path_factory):
    return shape_free_graph(source, tmp_path_factory.mktemp("shape-free"))


def session(path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(sess: onnxruntime.InferenceSession, x: np.ndarray) -> list[np.ndarray]:
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})


def photo_blob(demo_media, h: int, w: int) -> np.ndarray:
    image = cv2.resize(cv2.imread(str(demo_media("multi-face-image")))[:, :, ::-1], (w, h))
    return ((image.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]


def test_rewritten_graph_equals_the_original_at_640(source, freed, demo_media):
    assert fixed_input_shape(onnx.load(str(source))) == (1, 3, 640, 640)
    assert fixed_input_shape(onnx.load(str(freed))) is None
    x = photo_blob(demo_media, 640, 640)
    original, rewritten = run(session(source), x), run(session(freed), x)
    assert len(original) == len(rewritten) == 9  # scores, boxes, landmarks at strides 8, 16, 32
    for a, b in zip(original, rewritten, strict=True):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-4
    assert (
        max(s.max() for s in original[:3]) > 0.5
    )  # the photo's faces are in it: a real comparison, not of empty maps


def test_rewritten_graph_takes_any_batch_and_stride_multiple(freed, demo_media):
    sess = session(freed)
    x = photo_blob(demo_media, 384, 640)
    batch = np.concatenate([x, x[:, :, ::-1, :], x])
    single, many = run(sess, x), run(sess, batch)
    for a, b in zip(single, many, strict=True):
        assert b.shape[0] == 3 and b.shape[1:] == a.shape[1:]
        assert np.abs(b[0] - a[0]).max() <= 1e-4 and np.abs(b[2] - a[0]).max() <= 1e-4
    assert single[0].shape == (1, 384 // 8 * 640 // 8 * 2, 1)


def test_rewrite_is_cached_by_the_source_sha256(source, freed):
    assert freed.name == f"{sha256_of(source)}.onnx"
    stamp = freed.stat().st_mtime_ns
    assert shape_free_graph(source, freed.parent) == freed
    assert freed.stat().st_mtime_ns == stamp  # read, not rewritten
    assert not list(freed.parent.glob("*.tmp"))


def unfreeable(source, path):
    """The SCRFD graph with one Reshape's target computed by a node instead of a constant."""
    model = onnx.load(str(source))
    graph = model.graph
    node = next(n for n in graph.node if n.op_type == "Reshape")
    target = next(i for i in graph.initializer if i.name == node.input[1])
    const = onnx.helper.make_node(
        "Constant", [], ["computed_shape"], value=numpy_helper.from_array(numpy_helper.to_array(target))
    )
    graph.node.insert(0, const)
    node.input[1] = "computed_shape"
    onnx.save(model, str(path))
    return path


def test_graph_that_cannot_be_rewritten_keeps_its_fixed_shape_with_a_warning(
    source, tmp_path, caplog, demo_media
):
    odd = unfreeable(source, tmp_path / "odd-scrfd.onnx")
    with caplog.at_level(logging.WARNING, logger="models.detectors.shape_free"):
        assert shape_free_graph(odd, tmp_path / "cache") is None
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "odd-scrfd.onnx" in warning and "fixed input shape" in warning and "computed" in warning
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())

    det = create_detector("scrfd", model_path=odd, device="cpu", batch=8, cache_dir=tmp_path / "cache")
    assert det.fixed_input == (640, 640) and det.batch == 1
    assert det.version.endswith("@640x640/onnxruntime/cpu")
    image = np.ascontiguousarray(cv2.imread(str(demo_media("multi-face-image")))[:, :, ::-1])
    fixed, ref = det.detect(image), reference_detector().detect(image)
    assert len(fixed) == len(ref) == 5
    assert np.abs(fixed.boxes - ref.boxes).max() < 1e-3  # the fixed-shape path is insightface's letterbox


def test_unfreed_detector_is_insightface_exactly(demo_media):
    image = np.ascontiguousarray(cv2.imread(str(demo_media("multi-face-image")))[:, :, ::-1])
    ours = create_detector("scrfd", device="cpu", shape_free=False).detect(image)
    ref = reference_detector().detect(image)
    np.testing.assert_allclose(ours.boxes, ref.boxes, atol=1e-3)
    np.testing.assert_allclose(ours.scores, ref.scores, atol=1e-5)
    np.testing.assert_allclose(ours.landmarks, ref.landmarks, atol=1e-3)


def test_native_aspect_and_batches_find_the_same_faces(demo_media):
    image = np.ascontiguousarray(cv2.imread(str(demo_media("multi-face-image")))[:, :, ::-1])
    ref = reference_detector().detect(image)
    one = create_detector("scrfd", device="cpu", batch=1)
    many = create_detector("scrfd", device="cpu", batch=4)
    flipped = np.ascontiguousarray(image[:, ::-1])
    singles = [one.detect(im) for im in (image, flipped, image)]
    batched = many.detect_batch([image, flipped, image])
    assert one.layout(*image.shape[:2]) == (448, 640, 426, 640)  # 667 x 1000 (+ border) -> 640 wide
    for a, b in zip(singles, batched, strict=True):
        assert len(a) == len(b) == 5
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)
    for box, ref_box in zip(singles[0].boxes, ref.boxes, strict=True):
        assert box_iou(box, ref_box) >= 0.95


@pytest.mark.parametrize("workers", [2, 3])
def test_a_batch_cut_into_slices_per_core_gives_each_image_the_same_outputs(freed, demo_media, workers):
    from models.detectors.backends import OnnxRuntimeBackend

    image = cv2.resize(cv2.imread(str(demo_media("multi-face-image")))[:, :, ::-1], (640, 384))
    images = np.stack([image, image[:, ::-1], image[::-1], image, image[:, ::-1]])
    backend = OnnxRuntimeBackend(str(freed), "cpu")
    backend.workers = 1
    whole = backend(images, MEAN, STD)
    backend.workers = workers
    sliced = backend(images, MEAN, STD)
    assert backend._slices is not None  # the slices ran on their own single-threaded session
    for a, b in zip(whole, sliced, strict=True):
        assert a.shape == b.shape and a.shape[0] == len(images)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert max(scores.max() for scores in whole[:3]) > 0.5  # faces in it: a real comparison
