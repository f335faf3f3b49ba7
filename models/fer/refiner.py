"""One interface for every FER refiner: face crops in, 7 expression probabilities out (paper, section 3.2).

A :class:`Refiner` is an :class:`InputSpec` (how the model wants its pixels and in which order it names its
classes) plus a runner (a torch module or an onnxruntime session on the device it could actually use).
Crops are RGB ``uint8`` arrays of any size; probabilities come back in the project's label order
(``keywords/emotions.yaml``: Angry, Disgust, Fear, Happy, Neutral, Sad, Surprise), whatever the model's own.

    >>> refiner = create_refiner("mini-xception")                     # doctest: +SKIP
    >>> refiner.predict(crops).shape, refiner.device
    ((16, 7), 'cpu')
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from keywords.taxonomy import load_taxonomy

#: Names models commonly give the 7 basic expressions, mapped to ours (lower case).
LABEL_ALIASES = {
    "anger": "Angry",
    "angry": "Angry",
    "disgust": "Disgust",
    "disgusted": "Disgust",
    "fear": "Fear",
    "fearful": "Fear",
    "happy": "Happy",
    "happiness": "Happy",
    "neutral": "Neutral",
    "sad": "Sad",
    "sadness": "Sad",
    "surprise": "Surprise",
    "surprised": "Surprise",
}

Backend = Literal["torch", "onnxruntime"]
Device = Literal["auto", "cpu", "cuda"]


def expressions() -> tuple[str, ...]:
    """The project's label order (keywords/emotions.yaml)."""
    return load_taxonomy().expressions


def label_permutation(model_labels: Sequence[str]) -> np.ndarray:
    """Indices ``perm`` such that ``model_output[:, perm]`` is in the project's label order.

    Model labels are matched case-insensitively, with common synonyms (``anger``, ``happiness``...).
    """
    ours = expressions()
    mapped = []
    for label in model_labels:
        name = LABEL_ALIASES.get(label.strip().lower(), label.strip())
        match = [o for o in ours if o.lower() == name.lower()]
        if not match:
            raise ValueError(f"model label {label!r} is not one of the expressions {list(ours)}")
        mapped.append(match[0])
    if sorted(mapped) != sorted(ours):
        raise ValueError(f"model labels {list(model_labels)} must name each of {list(ours)} exactly once")
    return np.array([mapped.index(o) for o in ours])


@dataclass(frozen=True)
class InputSpec:
    """What a model expects: input size (h, w), channels (1 = grayscale, 3 = RGB), layout, the
    normalisation ``(x / 255 - mean) / std`` per channel, its class names in output order, and whether
    its output is already a probability (``probs``) or needs a softmax (``logits``)."""

    size: tuple[int, int]
    channels: Literal[1, 3]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    labels: tuple[str, ...]
    output: Literal["probs", "logits"] = "logits"
    layout: Literal["NCHW", "NHWC"] = "NCHW"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be (height, width) in pixels, got {self.size}")
        for name in ("mean", "std"):
            if len(getattr(self, name)) not in (1, self.channels):
                raise ValueError(f"{name} needs 1 or {self.channels} values, got {getattr(self, name)}")
        if any(s == 0 for s in self.std):
            raise ValueError(f"std must not contain 0, got {self.std}")
        if self.output not in ("probs", "logits"):
            raise ValueError(f"output must be 'probs' or 'logits', got {self.output!r}")
        if self.layout not in ("NCHW", "NHWC"):
            raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {self.layout!r}")
        label_permutation(self.labels)

    def preprocess(self, crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """RGB uint8 crops of any size -> one float32 batch in the model's layout.

        Grayscale is OpenCV's (0.299 R + 0.587 G + 0.114 B, rounded to uint8) and resizing is OpenCV's
        bilinear on uint8, the same steps the Keras mini-Xception was trained and is used with.
        """
        import cv2

        h, w = self.size
        out = np.empty((len(crops), h, w, self.channels), np.float32)
        for i, crop in enumerate(crops):
            crop = np.asarray(crop)
            if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3 or min(crop.shape[:2]) < 1:
                raise ValueError(
                    f"crop {i}: expected an RGB uint8 array of shape (H, W, 3), got {crop.dtype} {crop.shape}"
                )
            img = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[..., None] if self.channels == 1 else crop
            if img.shape[:2] != (h, w):
                img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, self.channels)
            out[i] = img
        mean = np.asarray(self.mean, np.float32)
        std = np.asarray(self.std, np.float32)
        out = (out / np.float32(255.0) - mean) / std
        return np.ascontiguousarray(out if self.layout == "NHWC" else out.transpose(0, 3, 1, 2))


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class Refiner:
    """A FER model ready to score crops. ``run`` maps a preprocessed batch to the model's raw output."""

    name: str
    spec: InputSpec
    run: Callable[[np.ndarray], np.ndarray]
    backend: Backend
    device: str
    version: str  # e.g. 'mini-xception@1a2b3c4d5e6f': the name and the weights' sha256 prefix
    batch_size: int = 64
    module: Any = field(default=None, repr=False)  # the torch module, when there is one

    @property
    def labels(self) -> tuple[str, ...]:
        return expressions()

    def predict(self, crops: Sequence[np.ndarray] | np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """7-class probabilities, shape ``(len(crops), 7)``, in the project's label order."""
        batch_size = batch_size or self.batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        perm = label_permutation(self.spec.labels)
        outs = []
        for start in range(0, len(crops), batch_size):
            raw = np.asarray(self.run(self.spec.preprocess(crops[start : start + batch_size])), np.float32)
            if raw.ndim != 2 or raw.shape[1] != len(perm):
                raise ValueError(
                    f"{self.name}: model output has shape {raw.shape}, expected (N, {len(perm)})"
                )
            outs.append(raw if self.spec.output == "probs" else softmax(raw))
        if not outs:
            return np.zeros((0, len(perm)), np.float32)
        return np.concatenate(outs)[:, perm].astype(np.float32)


def torch_device(device: Device = "auto") -> str:
    """``'cuda'`` when asked for or (``auto``) when torch can use it, else ``'cpu'``."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no CUDA device")
    return "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"


def torch_runner(module, device: str) -> Callable[[np.ndarray], np.ndarray]:
    """Run ``module`` (in eval mode, on ``device``) on numpy batches without autograd."""
    import torch

    module.eval().to(device)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(batch).to(device)).float().cpu().numpy()

    return run


def onnx_session(model: str | bytes, device: Device = "auto"):
    """An onnxruntime session on CUDA when its provider actually loads (``auto``), else on CPU, quietly.

    onnxruntime-gpu lists the CUDA provider even where CUDA or cuDNN cannot load and then logs errors
    and falls back; we silence that and read back which provider the session really uses.
    Returns ``(session, device)``.
    """
    import onnxruntime as ort

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    providers = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.log_severity_level = 4
    ort.set_default_logger_severity(4)
    session = ort.InferenceSession(model, options, providers=providers)
    used = "cuda" if "CUDAExecutionProvider" in session.get_providers() else "cpu"
    if device == "cuda" and used != "cuda":
        raise ValueError("device 'cuda' was asked for but onnxruntime's CUDA provider could not load")
    return session, used


def onnx_runner(session) -> Callable[[np.ndarray], np.ndarray]:
    """Run a single-input onnxruntime session on numpy batches; returns its first output."""
    name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {name: batch})[0]

    return run


def export_onnx(module, spec: InputSpec, path: str | None = None) -> bytes:
    """Export a torch module (on CPU) to ONNX with a dynamic batch axis; returns the model bytes and also
    writes them to ``path`` when given."""
    import torch

    h, w = spec.size
    shape = (1, spec.channels, h, w) if spec.layout == "NCHW" else (1, h, w, spec.channels)
    buf = io.BytesIO()
    module = module.eval().to("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            module,
            torch.zeros(shape),
            buf,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    data = buf.getvalue()
    if path is not None:
        from pathlib import Path

        from data_catalog.io import atomic_write_bytes

        atomic_write_bytes(Path(path), data)
    return data


def build_refiner(
    name: str,
    spec: InputSpec,
    version: str,
    *,
    module=None,
    onnx_model: str | bytes | None = None,
    backend: Backend = "torch",
    device: Device = "auto",
    batch_size: int = 64,
) -> Refiner:
    """Wrap a torch ``module`` or an ONNX model in a :class:`Refiner` on the chosen backend and device.

    A torch module may run on either backend (``onnxruntime`` exports it in memory first); an ONNX model
    runs on onnxruntime only.
    """
    if backend not in ("torch", "onnxruntime"):
        raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}")
    if backend == "torch":
        if module is None:
            raise ValueError(f"{name}: an ONNX model runs on backend 'onnxruntime' only, not 'torch'")
        dev = torch_device(device)
        run = torch_runner(module, dev)
    else:
        model = onnx_model if onnx_model is not None else export_onnx(module, spec)
        session, dev = onnx_session(model, device)
        run = onnx_runner(session)
    return Refiner(name, spec, run, backend, dev, version, batch_size, module)
