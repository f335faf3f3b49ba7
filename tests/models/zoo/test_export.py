"""The closed loop (issue 7): a clip model exported as an ONNX FER refiner gives the torch model's
probabilities on real face crops, and the refine stage's config loads it."""

import json
import shutil

import numpy as np
import pytest
import torch

from models.fer import create_refiner
from models.zoo import build, export_refiner, refine_overrides
from models.zoo.export import IMAGENET_MEAN, IMAGENET_STD

pytestmark = pytest.mark.slow  # trains, detects or serves for real: seconds per test

N_FRAMES = 2


@pytest.fixture(scope="module")
def face_crops(demo_media) -> list[np.ndarray]:
    """112x112 RGB face crops: SCRFD faces on 6 frames spread over the demo video (crying to laughing)."""
    import av

    from models.detectors import create_detector
    from tasks.face_filter.crops import square_crop

    detector = create_detector("scrfd", device="cpu")
    crops = []
    with av.open(str(demo_media("wolfgang-langer"))) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 80 == 0:
                image = frame.to_ndarray(format="rgb24")
                faces = detector.detect(image)
                assert len(faces), f"no face on frame {i}"
                crops.append(square_crop(image, faces.boxes[0], margin=0.2, size=112))
            if len(crops) == 6:
                break
    return crops


def normalise(crops: list[np.ndarray]) -> torch.Tensor:
    x = np.stack(crops).astype(np.float32) / 255.0
    x = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


@pytest.fixture(scope="module")
def r50(face_crops) -> torch.nn.Module:
    """The 2D ResNet-50 baseline with batch-norm statistics taken from real faces (as after training)."""
    torch.manual_seed(0)
    model = build("r50", n_frames=N_FRAMES)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average: one pass sets the statistics exactly
    clips = normalise(face_crops).unsqueeze(2).repeat(1, 1, N_FRAMES, 1, 1)
    with torch.no_grad():
        model.train()(clips)
    return model.eval()


@pytest.fixture(scope="module")
def exported(r50, tmp_path_factory):
    return export_refiner(r50, tmp_path_factory.mktemp("refiner") / "fer_r50.onnx")


@pytest.fixture(scope="module")
def torch_probs(r50, face_crops) -> np.ndarray:
    """The reference: each crop as a still clip through the torch model, softmax."""
    clips = normalise(face_crops).unsqueeze(2).repeat(1, 1, N_FRAMES, 1, 1)
    with torch.no_grad():
        return torch.softmax(r50(clips), dim=1).numpy()


@pytest.mark.slow
def test_exported_refiner_gives_the_torch_models_probabilities_on_real_faces(
    exported, torch_probs, face_crops
):
    refiner = create_refiner("onnx", weights=exported, device="cpu")  # the input spec from the sidecar
    assert json.loads(exported.with_suffix(".json").read_text())["architecture"] == "r50"
    probs = refiner.predict(face_crops)
    assert probs.shape == (6, 7) and refiner.spec.size == (112, 112)
    assert np.abs(probs - torch_probs).max() < 1e-4
    # a meaningful comparison: confident, and different from one face to the next
    assert (torch_probs.max(axis=1) - torch_probs.min(axis=1)).min() > 0.05
    assert torch_probs.std(axis=0).max() > 1e-3
    # one batch axis of any size
    assert np.abs(refiner.predict(face_crops, batch_size=1) - probs).max() < 1e-5


def test_refine_overrides_configure_the_next_build_candidates_run(
    exported, torch_probs, face_crops, tmp_path
):
    from flows.config import load_config

    overrides = refine_overrides(exported)
    assert overrides[:3] == ["refine.model=onnx", "refine.backend=onnxruntime", f"refine.weights={exported}"]
    cfg = load_config(overrides=[*overrides, "refine.device=cpu"])
    assert np.abs(cfg.refine.create().predict(face_crops) - torch_probs).max() < 1e-4

    # the model_options make the sidecar optional; without either, the error says what is missing
    alone = tmp_path / "copied.onnx"
    shutil.copy(exported, alone)
    cfg = load_config(
        overrides=[*overrides[:2], f"refine.weights={alone}", overrides[3], "refine.device=cpu"]
    )
    assert np.abs(cfg.refine.create().predict(face_crops[:2]) - torch_probs[:2]).max() < 1e-4
    with pytest.raises(ValueError, match="copied.json"):
        create_refiner("onnx", weights=alone, device="cpu")


def test_export_leaves_the_model_alone_and_refuses_what_cannot_be_a_refiner(r50, tmp_path):
    assert not r50.training and next(r50.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="two-stream"):
        export_refiner(build("ts-i3d", n_frames=2), tmp_path / "ts.onnx")
    with pytest.raises(ValueError, match=r"\.onnx"):
        export_refiner(r50, tmp_path / "fer.pt")
    with pytest.raises(ValueError, match="7 classes but 2 labels"):
        export_refiner(r50, tmp_path / "fer.onnx", labels=("Happy", "Sad"))
    with pytest.raises(ValueError, match="no input-spec sidecar"):
        refine_overrides(tmp_path / "missing.onnx")
