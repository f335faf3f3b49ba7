"""insightface 2.x detectors: SCRFD from an ONNX file, or the detection model of an insightface pack.

``scrfd`` loads one ONNX file, by default the SCRFD-2.5G-KPS weights of the asset registry
(``asset_path("scrfd-2.5g-kps")``, shipped in the ``scrfd`` sdist, so it works offline). Users with
internet, or with a pack on disk, can use ``insightface-pack`` with a pack name or directory (e.g.
``buffalo_l``), loaded through ``FaceAnalysis(name=..., allowed_modules=['detection'])``. Either way the
model is loaded once per process and reused (sessions are cached by path and execution providers).

The CUDA execution provider is requested only when it can load (onnxruntime lists it, the driver sees a
GPU and torch agrees); otherwise the CPU provider is used without onnxruntime's noisy failed attempt at CUDA.

    >>> det = create_detector("scrfd", device="cpu", pad=0.1)            # doctest: +SKIP
    >>> det.detect(rgb_frame).boxes
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from models.detectors.base import FaceDetector
from models.detectors.registry import register_detector

DEVICES = ("auto", "cpu", "cuda")
DEFAULT_ASSET = "scrfd-2.5g-kps"


def _driver_sees_gpu() -> bool:
    """Ask the CUDA driver (libcuda) directly: cheap, and false on machines without an NVIDIA GPU."""
    import ctypes

    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    count = ctypes.c_int(0)
    return cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0


@functools.lru_cache(maxsize=1)
def cuda_usable() -> bool:
    """True when onnxruntime offers CUDA and it can load: a GPU the driver sees, and (where torch is
    installed) torch agrees, which also means the CUDA runtime libraries onnxruntime needs are present.
    The driver is asked first so that CPU-only machines never pay for importing torch."""
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers() or not _driver_sees_gpu():
        return False
    try:
        import torch
    except ImportError:
        return True
    return bool(torch.cuda.is_available())


def select_providers(device: str = "auto") -> tuple[str, ...]:
    """onnxruntime execution providers for ``device`` ('auto', 'cpu' or 'cuda')."""
    if device not in DEVICES:
        raise ValueError(f"device {device!r} is not one of {', '.join(DEVICES)}")
    if device == "cpu" or (device == "auto" and not cuda_usable()):
        return ("CPUExecutionProvider",)
    if device == "cuda" and not cuda_usable():
        raise ValueError("device 'cuda' requested, but onnxruntime cannot use CUDA on this machine")
    return ("CUDAExecutionProvider", "CPUExecutionProvider")


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


@functools.lru_cache(maxsize=8)
def _load_onnx(path: str, providers: tuple[str, ...], nms_thresh: float) -> Any:
    from insightface.model_zoo import get_model

    model = get_model(path, providers=list(providers))
    if model is None or getattr(model, "taskname", None) != "detection":
        raise ValueError(f"{path}: not a face detection model that insightface recognises")
    model.prepare(-1 if providers == ("CPUExecutionProvider",) else 0, nms_thresh=nms_thresh)
    return model


@functools.lru_cache(maxsize=8)
def _load_pack(pack: str, root: str, providers: tuple[str, ...], nms_thresh: float) -> Any:
    from insightface.app import FaceAnalysis

    app = FaceAnalysis(name=pack, root=root, allowed_modules=["detection"], providers=list(providers))
    model = app.det_model
    model.prepare(-1 if providers == ("CPUExecutionProvider",) else 0, nms_thresh=nms_thresh)
    return model


class InsightFaceDetector(FaceDetector):
    """An insightface SCRFD-family model: boxes, scores and 5 landmarks per face."""

    def __init__(
        self,
        model: Any,
        version: str,
        name: str,
        det_thresh: float = 0.5,
        det_size: int = 640,
        pad: float = 0.0,
    ) -> None:
        super().__init__(pad=pad)
        if not 0.0 < det_thresh < 1.0:
            raise ValueError(f"det_thresh must be in (0, 1), got {det_thresh}")
        if det_size < 32:
            raise ValueError(f"det_size must be at least 32 pixels, got {det_size}")
        self.model = model
        self.name = name
        self._version = version
        self.det_thresh = det_thresh
        # Static-shape models (the bundled SCRFD is 640 x 640) ignore this; dynamic packs use it.
        self.det_size = (det_size, det_size)

    @property
    def version(self) -> str:
        return self._version

    @property
    def providers(self) -> list[str]:
        return list(self.model.session.get_providers())

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        bgr = np.ascontiguousarray(image[:, :, ::-1])  # insightface models take OpenCV's BGR order
        det, kps = self.model.detect(bgr, input_size=self.det_size, det_thresh=self.det_thresh)
        return det[:, :4], det[:, 4], kps


@register_detector("scrfd")
def scrfd(
    model_path: str | os.PathLike | None = None,
    device: str = "auto",
    det_thresh: float = 0.5,
    nms_thresh: float = 0.4,
    det_size: int = 640,
    pad: float = 0.1,
) -> InsightFaceDetector:
    """SCRFD from an ONNX file (default: the ``scrfd-2.5g-kps`` asset, fetched into the cache if missing)."""
    if model_path is None:
        from data_catalog.assets import asset_path

        path = asset_path(DEFAULT_ASSET)
    else:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"face detector model {path}: no such file")
    model = _load_onnx(str(path.resolve()), select_providers(device), float(nms_thresh))
    version = f"scrfd:{path.name}:{_file_digest(path)}"
    return InsightFaceDetector(model, version, "scrfd", det_thresh, det_size, pad)


@register_detector("insightface-pack")
def insightface_pack(
    pack: str = "buffalo_l",
    root: str | os.PathLike = "~/.insightface",
    device: str = "auto",
    det_thresh: float = 0.5,
    nms_thresh: float = 0.4,
    det_size: int = 640,
    pad: float = 0.1,
) -> InsightFaceDetector:
    """The detection model of an insightface pack: a pack name under ``root`` (downloaded by insightface
    when it is missing and the network allows) or a directory holding the pack's ``*.onnx`` files."""
    root = str(Path(root).expanduser())
    model = _load_pack(str(pack), root, select_providers(device), float(nms_thresh))
    version = f"insightface-pack:{pack}:{Path(model.model_file).name}"
    return InsightFaceDetector(model, version, "insightface-pack", det_thresh, det_size, pad)
