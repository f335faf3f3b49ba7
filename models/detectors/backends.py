"""Where a detector graph runs: onnxruntime (CPU or its CUDA provider) or torch (the graph converted by
onnx2torch), on ``cpu`` or ``cuda``.

``device='auto'`` takes CUDA when a GPU is usable and says once per process when it falls back to the CPU;
``device='cuda'`` without a usable GPU is an error. ``backend='auto'`` on CUDA prefers onnxruntime's CUDA
provider where it loads (it needs CUDA and cuDNN libraries beside onnxruntime-gpu) and otherwise converts
the graph to torch, so one torch+CUDA install is enough for GPU detection; on the CPU it is onnxruntime.
Sessions and modules are cached per (file, backend, device), so a process loads each model once.

    >>> run = open_backend("scrfd.onnx", backend="auto", device="auto")   # doctest: +SKIP
    >>> outputs = run(images, 127.5, 128.0)        # N x H x W x 3 uint8 -> list of arrays
    >>> run.name, run.device
    ('onnxruntime', 'cpu')
"""

from __future__ import annotations

import ctypes
import functools
import logging

import numpy as np

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "onnxruntime", "torch")


def _driver_sees_gpu() -> bool:
    """Ask the CUDA driver (libcuda) directly: cheap, and false on machines without an NVIDIA GPU."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    count = ctypes.c_int(0)
    return cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0


@functools.lru_cache(maxsize=1)
def torch_cuda_usable() -> bool:
    """torch is installed and sees a CUDA GPU (the driver is asked first, so CPU-only machines never pay
    for importing torch)."""
    if not _driver_sees_gpu():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@functools.lru_cache(maxsize=1)
def ort_cuda_offered() -> bool:
    """onnxruntime lists its CUDA provider and the driver sees a GPU (whether it loads is known only
    once a session asks for it)."""
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers() and _driver_sees_gpu()


def resolve_device(device: str) -> str:
    """'cpu' or 'cuda' for a configured ``device``; 'cuda' without a usable GPU is a ValueError."""
    if device not in DEVICES:
        raise ValueError(f"face detector device {device!r} is not one of {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    usable = ort_cuda_offered() or torch_cuda_usable()
    if device == "cuda" and not usable:
        raise ValueError(
            "face detector device 'cuda' requested, but no CUDA GPU is usable here (neither onnxruntime's "
            "CUDA provider nor torch sees one); use device 'cpu' or 'auto'"
        )
    if not usable:
        _say_cpu_fallback()
        return "cpu"
    return "cuda"


@functools.lru_cache(maxsize=1)
def _say_cpu_fallback() -> None:
    log.warning("face detector device 'auto': no CUDA GPU is usable, detecting on the CPU")


class Backend:
    """A loaded graph: call it with N x H x W x 3 ``uint8`` images and their normalisation, get the graph's
    outputs for ``(images - mean) / std`` as N x 3 x H x W float32 (normalised where the graph runs, so a GPU
    receives a quarter of the bytes)."""

    name: str = ""
    device: str = ""

    def __call__(self, images: np.ndarray, mean: float, std: float) -> list[np.ndarray]:
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected N x H x W x 3 uint8 images, got {images.shape} {images.dtype}")
        return self.run(images, mean, std)

    def run(self, images: np.ndarray, mean: float, std: float) -> list[np.ndarray]:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name}/{self.device}"


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path: str, device: str) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.log_severity_level = 3  # no warnings about providers it cannot load: checked below
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else None
        self.session = onnxruntime.InferenceSession(
            path, opts, providers=providers or ["CPUExecutionProvider"]
        )
        if device == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise RuntimeError(f"{path}: onnxruntime's CUDA provider did not load (CUDA/cuDNN libraries?)")
        self.device = device
        self.input_name = self.session.get_inputs()[0].name

    def run(self, images: np.ndarray, mean: float, std: float) -> list[np.ndarray]:
        blob = ((images.astype(np.float32) - mean) / std).transpose(0, 3, 1, 2)
        return self.session.run(None, {self.input_name: np.ascontiguousarray(blob)})


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, path: str, device: str) -> None:
        try:
            from onnx2torch import convert
        except ImportError:
            raise RuntimeError(
                f"{path}: the torch backend converts the ONNX graph with onnx2torch, which is not installed "
                "(pip install onnx2torch)"
            ) from None
        import torch

        self.torch = torch
        self.module = convert(path).eval().to(device)
        self.device = device

    def run(self, images: np.ndarray, mean: float, std: float) -> list[np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device, non_blocking=True)
            x = ((x.float() - mean) / std).permute(0, 3, 1, 2).contiguous()
            out = self.module(x)
        out = out if isinstance(out, (list, tuple)) else [out]
        return [t.float().cpu().numpy() for t in out]


@functools.lru_cache(maxsize=8)
def open_backend(path: str, backend: str = "auto", device: str = "auto") -> Backend:
    """The graph at ``path`` loaded on ``backend`` and ``device`` (see the module docstring)."""
    if backend not in BACKENDS:
        raise ValueError(f"face detector backend {backend!r} is not one of {', '.join(BACKENDS)}")
    where = resolve_device(device)
    if backend == "torch":
        if where == "cuda" and not torch_cuda_usable():
            raise ValueError("face detector backend 'torch' on 'cuda': torch sees no CUDA GPU here")
        return TorchBackend(path, where)
    if backend == "onnxruntime" or where == "cpu":
        if where == "cuda" and not ort_cuda_offered():
            raise ValueError(
                "face detector backend 'onnxruntime' on 'cuda': its CUDA provider is not offered"
            )
        return OnnxRuntimeBackend(path, where)
    # auto on CUDA: onnxruntime's provider where it loads, else torch
    if ort_cuda_offered():
        try:
            return OnnxRuntimeBackend(path, "cuda")
        except RuntimeError as exc:
            if not torch_cuda_usable():
                raise ValueError(f"face detector on 'cuda': {exc}, and torch sees no CUDA GPU") from None
            log.warning("%s; running the graph through torch on CUDA instead", exc)
    return TorchBackend(path, "cuda")
