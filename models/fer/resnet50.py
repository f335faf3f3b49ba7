"""``resnet50``: the paper's refiner, a ResNet-50 with a 7-class head (paper, section 3.2).

No pretrained FER ResNet-50 can be fetched offline, so weights must be given: a torch checkpoint (a
``state_dict``, or a dict holding one under ``state_dict``/``model``, optionally with its ``labels``), an
``.onnx`` export, or an http(s) URL of either with its sha256. The benchmark flow's trained ResNet-50 is one
source. Input: 224x224 RGB with ImageNet normalisation; output: logits.

    >>> refiner = create_refiner("resnet50", weights="work/models/fer_r50.pt")   # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from models.fer.onnx_model import onnx_refiner
from models.fer.refiner import Backend, Device, InputSpec, Refiner, build_refiner, expressions
from models.fer.registry import register_refiner
from models.fer.weights import file_sha256, resolve_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resnet50_spec(labels: Sequence[str] | None = None, size: int = 224) -> InputSpec:
    return InputSpec((size, size), 3, IMAGENET_MEAN, IMAGENET_STD, tuple(labels or expressions()), "logits")


def build_resnet50(num_classes: int = 7):
    """A torchvision ResNet-50 with a ``num_classes`` head and random (seedable) initial weights."""
    from torchvision.models import resnet50

    return resnet50(weights=None, num_classes=num_classes)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, tuple[str, ...] | None]:
    """The state_dict in a torch checkpoint file, and the label order saved with it (if any)."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike: the file is not a usable checkpoint
        raise ValueError(f"{path}: not a readable torch checkpoint: {exc}") from None
    labels = None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict", obj.get("model")), dict):
        labels = obj.get("labels")
        obj = obj.get("state_dict", obj.get("model"))
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise ValueError(f"{path}: expected a state_dict (parameter name -> tensor)")
    state = {k.removeprefix("module."): v for k, v in obj.items()}  # DataParallel checkpoints
    return state, tuple(labels) if labels else None


@register_refiner("resnet50")
def resnet50(
    weights: str | os.PathLike | None = None,
    sha256: str | None = None,
    labels: Sequence[str] | None = None,
    backend: Backend = "torch",
    device: Device = "auto",
    batch_size: int = 32,
    cache_dir: str | os.PathLike | None = None,
) -> Refiner:
    """ResNet-50 from a checkpoint or ONNX file (path or URL). ``labels`` overrides the class order
    (default: the checkpoint's saved ``labels``, else the project's order)."""
    if weights is None:
        raise ValueError(
            "the 'resnet50' refiner needs weights=<state_dict .pt/.pth, .onnx, or an http(s) URL with sha256>;"
            " no pretrained FER ResNet-50 is available offline (use 'mini-xception', or train one)"
        )
    path = resolve_weights(weights, sha256, cache_dir)
    if path.suffix.lower() == ".onnx":
        if backend != "onnxruntime":
            raise ValueError(f"{path}: an ONNX model runs on backend 'onnxruntime', not {backend!r}")
        return onnx_refiner("resnet50", path, resnet50_spec(labels), None, device, batch_size)
    state, saved_labels = load_checkpoint(path)
    head = state.get("fc.weight")
    if head is None or head.shape[0] != len(expressions()):
        shape = None if head is None else tuple(head.shape)
        raise ValueError(
            f"{path}: expected a ResNet-50 state_dict with a 7-class fc head, got fc.weight {shape}"
        )
    module = build_resnet50(head.shape[0])
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(
            f"{path}: does not fit torchvision's ResNet-50: {str(exc).splitlines()[0]}"
        ) from None
    version = f"resnet50@{file_sha256(path)[:12]}"
    spec = resnet50_spec(labels or saved_labels)
    return build_refiner(
        "resnet50", spec, version, module=module, backend=backend, device=device, batch_size=batch_size
    )
