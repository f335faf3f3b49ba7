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
import os
import threading

import numpy as np

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "onnxruntime", "torch")


def usable_cpus() -> int:
    """The cores this process may run on (its affinity where the OS tells it, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
    receives a quarter of the bytes). :meth:`canvas` makes that input from frames of one shape."""

    name: str = ""
    device: str = ""

    def __call__(self, images, mean: float, std: float) -> list[np.ndarray]:
        if isinstance(images, np.ndarray) and (
            images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8
        ):
            raise ValueError(f"expected N x H x W x 3 uint8 images, got {images.shape} {images.dtype}")
        return self.run(images, mean, std)

    def canvas(
        self, images: list[np.ndarray], border: int, canvas: tuple[int, int], resized: tuple[int, int]
    ) -> np.ndarray:
        """Frames of one shape, each with a black border of ``border`` pixels, resized to ``resized`` (h, w)
        and placed at the top left of a black ``canvas`` (h, w): N x H x W x 3 ``uint8``, as insightface
        letterboxes (cv2's bilinear resize)."""
        return host_canvas(images, border, canvas, resized)

    def run(self, images, mean: float, std: float) -> list[np.ndarray]:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name}/{self.device}"


def host_canvas(
    images: list[np.ndarray], border: int, canvas: tuple[int, int], resized: tuple[int, int]
) -> np.ndarray:
    """:meth:`Backend.canvas` on the host, with OpenCV."""
    import cv2

    (canvas_h, canvas_w), (new_h, new_w) = canvas, resized
    out = np.zeros((len(images), canvas_h, canvas_w, 3), np.uint8)  # black border, as insightface pads
    for k, image in enumerate(images):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:  # else cv2 writes elsewhere
            raise ValueError(f"expected H x W x 3 uint8 frames, got {image.shape} {image.dtype}")
        padded = cv2.copyMakeBorder(image, *[border] * 4, cv2.BORDER_CONSTANT, value=0) if border else image
        cv2.resize(padded, (new_w, new_h), dst=out[k, :new_h, :new_w])
    return out


def device_canvas(images: list[np.ndarray], border: int, canvas: tuple[int, int], resized: tuple[int, int],
                  device: str):  # fmt: skip
    """:meth:`Backend.canvas` where torch runs the graph: the frames go to ``device`` as they are (one
    upload of their own bytes) and are padded, resized (bilinear, rounded to whole levels as cv2's
    ``uint8`` resize) and placed there. N x 3 x H x W float32 in 0..255 (not yet normalised)."""
    import torch
    import torch.nn.functional as F

    (canvas_h, canvas_w), (new_h, new_w) = canvas, resized
    x = torch.from_numpy(np.stack(images)).to(device, non_blocking=True)
    x = x.permute(0, 3, 1, 2).float()
    if border:
        x = F.pad(x, (border, border, border, border))
    if x.shape[2:] != (new_h, new_w):
        x = (
            F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
            .round_()
            .clamp_(0, 255)
        )
    return F.pad(x, (0, canvas_w - new_w, 0, canvas_h - new_h)).contiguous()


class OnnxRuntimeBackend(Backend):
    """On the CPU, a batch of at least as many images as cores is cut into one slice per core and the
    slices run at once, each on one thread: whole slices in parallel keep the cores busier than one batch
    on several threads (about 1.35x the frames per second on two cores), and each image's outputs are the
    same either way. A smaller call (a fixed-shape graph's single image) runs on all cores."""

    name = "onnxruntime"

    def __init__(self, path: str, device: str) -> None:
        self._path = path
        self.device = device
        self.workers = usable_cpus() if device == "cpu" else 1
        self.session = self._open()
        if device == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise RuntimeError(f"{path}: onnxruntime's CUDA provider did not load (CUDA/cuDNN libraries?)")
        self.input_name = self.session.get_inputs()[0].name
        self._lock = threading.Lock()
        #: the single-threaded session and its pool, opened when the first batch is cut. Like onnxruntime's
        #: own threads they do not survive a fork: processes that detect are spawned, never forked.
        self._slices = None

    def _open(self, threads: int = 0):
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.log_severity_level = 3  # no warnings about providers it cannot load: checked in __init__
        opts.intra_op_num_threads = threads  # 0: onnxruntime's default, one per core
        cuda = ["CUDAExecutionProvider"] if self.device == "cuda" else []
        return onnxruntime.InferenceSession(self._path, opts, providers=[*cuda, "CPUExecutionProvider"])

    def _sliced(self):
        with self._lock:
            if self._slices is None:
                from concurrent.futures import ThreadPoolExecutor

                pool = ThreadPoolExecutor(self.workers, thread_name_prefix="detect")
                self._slices = self._open(threads=1), pool
            return self._slices

    def _run(self, session, images: np.ndarray, mean: float, std: float) -> list[np.ndarray]:
        blob = np.empty((images.shape[0], 3, *images.shape[1:3]), np.float32)  # N x 3 x H x W, one pass
        np.subtract(images.transpose(0, 3, 1, 2), np.float32(mean), out=blob)
        blob /= np.float32(std)
        return session.run(None, {self.input_name: blob})

    def run(self, images: np.ndarray, mean: float, std: float) -> list[np.ndarray]:
        if self.workers < 2 or len(images) < self.workers:
            return self._run(self.session, images, mean, std)
        single, pool = self._sliced()
        slices = np.array_split(images, self.workers)
        parts = list(pool.map(lambda part: self._run(single, part, mean, std), slices))
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


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
        #: build the input canvas on the device (:func:`device_canvas`) rather than with OpenCV on the host:
        #: on a GPU, the host's per-frame copies and resizes would bound the frame rate
        self.canvas_on_device = device != "cpu"

    def canvas(
        self, images: list[np.ndarray], border: int, canvas: tuple[int, int], resized: tuple[int, int]
    ):
        if not self.canvas_on_device:
            return host_canvas(images, border, canvas, resized)
        with self.torch.inference_mode():
            return device_canvas(images, border, canvas, resized, self.device)

    def run(self, images, mean: float, std: float) -> list[np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            if isinstance(images, np.ndarray):  # a host canvas, N x H x W x 3 uint8
                images = torch.from_numpy(np.ascontiguousarray(images)).to(self.device, non_blocking=True)
                images = images.permute(0, 3, 1, 2).float()
            x = ((images - mean) / std).contiguous()
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
