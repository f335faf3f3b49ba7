"""insightface 2.x detectors: SCRFD from an ONNX file, or the detection model of an insightface pack.

``scrfd`` loads one ONNX file, by default the SCRFD-2.5G-KPS weights of the asset registry
(``asset_path("scrfd-2.5g-kps")``, shipped in the ``scrfd`` sdist, so it works offline). Users with
internet, or with a pack on disk, can use ``insightface-pack`` with a pack name or directory (e.g.
``buffalo_l``), whose detection model insightface's ``FaceAnalysis`` finds. Either way the graph is made
shape-free once (cached by its sha256 under ``<asset cache>/derived/shape-free``) and runs as a
:class:`models.detectors.scrfd.ScrfdDetector`: frames at their own aspect, long side ``size``, ``batch``
at a time, on the ``backend`` and ``device`` of :mod:`models.detectors.backends`.

:class:`InsightFaceDetector` is the detector as insightface runs it (fixed 640 x 640 letterbox, one image
at a time); it is kept as the reference the shape-free detector is checked and benchmarked against.

    >>> det = create_detector("scrfd", device="cpu", size=640, batch=16, pad=0.1)   # doctest: +SKIP
    >>> det.detect_batch(rgb_frames)[0].boxes
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from models.detectors.backends import open_backend
from models.detectors.base import FaceDetector
from models.detectors.registry import register_detector
from models.detectors.scrfd import ScrfdDetector

DEFAULT_ASSET = "scrfd-2.5g-kps"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


@functools.lru_cache(maxsize=8)
def _load_onnx(path: str, nms_thresh: float) -> Any:
    """insightface's own SCRFD on the CPU (the reference)."""
    from insightface.model_zoo import get_model

    model = get_model(path, providers=["CPUExecutionProvider"])
    if model is None or getattr(model, "taskname", None) != "detection":
        raise ValueError(f"{path}: not a face detection model that insightface recognises")
    model.prepare(-1, nms_thresh=nms_thresh)
    return model


@functools.lru_cache(maxsize=8)
def _pack_model_file(pack: str, root: str) -> str:
    from insightface.app import FaceAnalysis

    app = FaceAnalysis(
        name=pack, root=root, allowed_modules=["detection"], providers=["CPUExecutionProvider"]
    )
    return str(app.det_model.model_file)


@functools.lru_cache(maxsize=8)
def _prepared_graph(path: str, shape_free: bool, cache_dir: str) -> tuple[str, int, tuple[int, int] | None]:
    """(graph to run, its number of outputs, its fixed H x W or None when free), once per process."""
    import onnx

    from models.detectors.shape_free import fixed_input_shape, shape_free_graph

    freed = shape_free_graph(path, cache_dir) if shape_free else None
    model = onnx.load(str(freed or path), load_external_data=False)
    fixed = None if freed is not None else fixed_input_shape(model)
    if fixed is not None and len(fixed) != 4:
        raise ValueError(f"{path}: expected an N x 3 x H x W detector input, found {fixed}")
    return str(freed or path), len(model.graph.output), None if fixed is None else (fixed[2], fixed[3])


def build_scrfd(
    path: Path,
    name: str,
    version: str,
    *,
    device: str,
    backend: str,
    size: int,
    batch: int,
    det_thresh: float,
    nms_thresh: float,
    pad: float,
    shape_free: bool,
    cache_dir: str | os.PathLike | None,
) -> ScrfdDetector:
    """An SCRFD graph file as a batched, shape-free :class:`ScrfdDetector` (fixed shape where it cannot
    be freed, with a warning naming the file)."""
    from data_catalog.cache import resolve_cache_dir

    cache = resolve_cache_dir(cache_dir) / "derived" / "shape-free"
    graph, n_outputs, fixed = _prepared_graph(str(path.resolve()), bool(shape_free), str(cache))
    runner = open_backend(graph, backend, device)
    return ScrfdDetector(
        runner,
        version,
        name,
        n_outputs=n_outputs,
        fixed_input=fixed,
        size=size,
        batch=batch,
        det_thresh=det_thresh,
        nms_thresh=nms_thresh,
        pad=pad,
    )


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


def reference_detector(
    model_path: str | os.PathLike | None = None,
    det_thresh: float = 0.5,
    nms_thresh: float = 0.4,
    pad: float = 0.1,
) -> InsightFaceDetector:
    """insightface's own SCRFD at its fixed 640 x 640, one image at a time, on the CPU: the detector the
    face filter ran before it was batched, kept to check and benchmark the current one against."""
    from data_catalog.assets import asset_path

    path = Path(model_path) if model_path is not None else asset_path(DEFAULT_ASSET)
    model = _load_onnx(str(path.resolve()), float(nms_thresh))
    version = f"scrfd:{path.name}:{_file_digest(path)}"
    return InsightFaceDetector(model, version, "scrfd-reference", det_thresh, 640, pad)


@register_detector("scrfd")
def scrfd(
    model_path: str | os.PathLike | None = None,
    device: str = "auto",
    backend: str = "auto",
    size: int = 640,
    batch: int = 16,
    det_thresh: float = 0.5,
    nms_thresh: float = 0.4,
    pad: float = 0.1,
    shape_free: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> ScrfdDetector:
    """SCRFD from an ONNX file (default: the ``scrfd-2.5g-kps`` asset, fetched into the cache if missing)."""
    if model_path is None:
        from data_catalog.assets import asset_path

        path = asset_path(DEFAULT_ASSET, cache_dir)
    else:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"face detector model {path}: no such file")
    version = f"scrfd:{path.name}:{_file_digest(path)}"
    return build_scrfd(
        path,
        "scrfd",
        version,
        device=device,
        backend=backend,
        size=size,
        batch=batch,
        det_thresh=det_thresh,
        nms_thresh=nms_thresh,
        pad=pad,
        shape_free=shape_free,
        cache_dir=cache_dir,
    )


@register_detector("insightface-pack")
def insightface_pack(
    pack: str = "buffalo_l",
    root: str | os.PathLike = "~/.insightface",
    device: str = "auto",
    backend: str = "auto",
    size: int = 640,
    batch: int = 16,
    det_thresh: float = 0.5,
    nms_thresh: float = 0.4,
    pad: float = 0.1,
    shape_free: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> ScrfdDetector:
    """The detection model of an insightface pack: a pack name under ``root`` (downloaded by insightface
    when it is missing and the network allows) or a directory holding the pack's ``*.onnx`` files."""
    path = Path(_pack_model_file(str(pack), str(Path(root).expanduser())))
    return build_scrfd(
        path,
        "insightface-pack",
        f"insightface-pack:{pack}:{path.name}",
        device=device,
        backend=backend,
        size=size,
        batch=batch,
        det_thresh=det_thresh,
        nms_thresh=nms_thresh,
        pad=pad,
        shape_free=shape_free,
        cache_dir=cache_dir,
    )
