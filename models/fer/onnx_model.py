"""``onnx``: any ONNX FER model, given the input spec it was trained with, run by onnxruntime.

The way to bring one's own refiner (paper, section 3.2, uses a light-weight ResNet-50): export it to ONNX
and declare its input size, channels, normalisation and class names; the names are mapped to the project's
label order, so a model trained with another order needs no retraining.

    >>> refiner = create_refiner("onnx", weights="fer.onnx", size=112, channels=3,
    ...                          mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
    ...                          labels=("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"))
    ...                                                                    # doctest: +SKIP

Without ``labels``, the spec comes from a sidecar next to a local model file (``fer.onnx`` -> ``fer.json``,
the keys of :data:`SIDECAR_KEYS`), as ``models.zoo.export_refiner`` writes it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from models.fer.refiner import Device, InputSpec, Refiner, build_refiner
from models.fer.registry import register_refiner
from models.fer.weights import file_sha256, resolve_weights


def onnx_refiner(
    name: str,
    path: str | os.PathLike,
    spec: InputSpec,
    sha256: str | None = None,
    device: Device = "auto",
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
) -> Refiner:
    """A :class:`Refiner` over the ONNX model at ``path`` (a file or an http(s) URL with its sha256)."""
    local = resolve_weights(path, sha256, cache_dir)
    version = f"{name}@{file_sha256(local)[:12]}"
    return build_refiner(
        name,
        spec,
        version,
        onnx_model=str(local),
        backend="onnxruntime",
        device=device,
        batch_size=batch_size,
    )


#: The input-spec keys a sidecar JSON may hold (the ``onnx`` factory's arguments of the same names).
SIDECAR_KEYS = ("labels", "size", "channels", "mean", "std", "output", "layout")


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """Where the input-spec sidecar of a local ONNX model lives: the same name with ``.json``."""
    return Path(model_path).with_suffix(".json")


def read_sidecar(model_path: str | os.PathLike) -> dict | None:
    """The input spec saved next to a local ONNX model, or ``None`` where there is none."""
    path = sidecar_path(model_path)
    if "://" in str(model_path) or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable input-spec sidecar: {exc}") from None
    if not isinstance(data, dict) or "labels" not in data:
        raise ValueError(f"{path}: an input-spec sidecar needs at least 'labels'")
    return {k: data[k] for k in SIDECAR_KEYS if k in data}


@register_refiner("onnx")
def onnx(
    weights: str | os.PathLike | None = None,
    labels: Sequence[str] | None = None,
    size: int | tuple[int, int] = 224,
    channels: Literal[1, 3] = 3,
    mean: Sequence[float] = (0.485, 0.456, 0.406),
    std: Sequence[float] = (0.229, 0.224, 0.225),
    output: Literal["probs", "logits"] = "logits",
    layout: Literal["NCHW", "NHWC"] = "NCHW",
    sha256: str | None = None,
    backend: Literal["onnxruntime"] = "onnxruntime",
    device: Device = "auto",
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
) -> Refiner:
    """An ONNX model (``weights``: a file or an http(s) URL with its sha256) with a declared input spec;
    without ``labels``, the spec is read from the model's sidecar JSON (see :func:`read_sidecar`)."""
    if weights is None:
        raise ValueError("the 'onnx' refiner needs weights=<model.onnx, or an http(s) URL with sha256>")
    sidecar = read_sidecar(weights) if labels is None else None
    if sidecar is not None:
        labels = sidecar["labels"]
        size, channels = sidecar.get("size", size), sidecar.get("channels", channels)
        mean, std = sidecar.get("mean", mean), sidecar.get("std", std)
        output, layout = sidecar.get("output", output), sidecar.get("layout", layout)
    if labels is None:
        raise ValueError(
            "the 'onnx' refiner needs labels=<the model's class names in output order>"
            f" (or an input-spec sidecar {sidecar_path(weights).name} next to the model)"
        )
    if backend != "onnxruntime":
        raise ValueError(f"the 'onnx' refiner runs on backend 'onnxruntime' only, not {backend!r}")
    hw = (size, size) if isinstance(size, int) else tuple(size)
    spec = InputSpec(hw, channels, tuple(mean), tuple(std), tuple(labels), output, layout)
    return onnx_refiner("onnx", weights, spec, sha256, device, batch_size, cache_dir)
