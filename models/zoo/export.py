"""Close the loop: a trained clip model becomes the FER refiner of the next candidate build (issue 7).

The paper refines candidate clips with a light ResNet-50 FER model (section 3.2); once the benchmark has
trained the 2D ResNet-50 (``r50``) on labelled clips, :func:`export_refiner` turns it into an ONNX model
the ``onnx`` refiner loads. A refiner scores single face crops ``(N, 3, 112, 112)``, while a clip model
reads ``(N, 3, T, 112, 112)``: the exported graph treats each crop as a *still clip*, the crop repeated
over the model's T frames (a clip with no motion, the closest a single frame gets to the training input;
the refine stage then averages the per-crop probabilities over each clip's sampled frames). Next to the
``.onnx`` goes a sidecar JSON with the input spec (size, channels, the training normalisation, the labels
in output order), which the ``onnx`` refiner reads when no ``model_options`` are given.

    >>> path = export_refiner(model, "work/models/fer_r50.onnx", n_frames=8)     # doctest: +SKIP
    >>> refine_overrides(path)                                                    # doctest: +SKIP
    ['refine.model=onnx', 'refine.backend=onnxruntime', 'refine.weights=work/models/fer_r50.onnx',
     'refine.model_options={"labels": [...], "size": 112, ...}']
    $ ferv --set refine.model=onnx --set refine.backend=onnxruntime \\
          --set refine.weights=work/models/fer_r50.onnx build-candidates --scene Crisis
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from models.fer.onnx_model import read_sidecar, sidecar_path
from models.fer.refiner import InputSpec, expressions

if TYPE_CHECKING:
    from torch import nn

#: ImageNet's per-channel mean and std, the default normalisation of face crops (x / 255 - mean) / std.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FACE_SIZE = 112  # paper, section 4.1: face crops are resized to 112x112


def still_clip(model: nn.Module, n_frames: int) -> nn.Module:
    """``model`` as a crop classifier: ``(N, 3, H, W)`` -> ``model(crop repeated over n_frames)``."""
    import torch
    from torch import nn

    class StillClip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, crops: torch.Tensor) -> torch.Tensor:
            return self.model(crops.unsqueeze(2).expand(-1, -1, n_frames, -1, -1))

    return StillClip()


def export_refiner(
    model: nn.Module,
    path: str | os.PathLike,
    n_frames: int | None = None,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    labels: Sequence[str] | None = None,
    size: int = FACE_SIZE,
) -> Path:
    """Export a one-stream clip model as an ONNX FER refiner at ``path``; returns ``path``.

    ``n_frames`` defaults to the model's own; ``mean``/``std`` must be the normalisation it was trained
    with and ``labels`` its class names in output order (default: the project's, keywords/emotions.yaml).
    The graph maps float crops ``(N, 3, size, size)``, normalised, to logits ``(N, num_classes)``, with a
    dynamic batch axis; the sidecar ``<path>.json`` holds the input spec. The caller's model is not
    touched (a CPU copy in eval mode is exported).
    """
    from data_catalog.io import atomic_write_bytes
    from models.fer.refiner import export_onnx

    if "scene" in getattr(model, "streams", ("face",)):
        raise ValueError("a two-stream model needs scene frames; only one-stream models can be refiners")
    n_frames = n_frames or getattr(model, "n_frames", None)
    if not n_frames or n_frames < 1:
        raise ValueError(f"n_frames must be a positive frame count, got {n_frames}")
    labels = tuple(labels or expressions())
    num_classes = getattr(model, "num_classes", len(labels))
    if num_classes != len(labels):
        raise ValueError(f"the model has {num_classes} classes but {len(labels)} labels were given")
    spec = InputSpec((size, size), 3, tuple(mean), tuple(std), labels, "logits")  # validates them
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"{path}: the refiner's file name must end in .onnx")
    path.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(still_clip(copy.deepcopy(model).cpu().eval(), n_frames), spec, str(path))
    sidecar = {
        "labels": list(spec.labels),
        "size": size,
        "channels": 3,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "output": "logits",
        "layout": "NCHW",
        "still_clip_frames": n_frames,  # each crop is repeated over this many frames inside the graph
        "architecture": getattr(model, "zoo_name", type(model).__name__),
    }
    atomic_write_bytes(sidecar_path(path), (json.dumps(sidecar, indent=2) + "\n").encode())
    return path


def refine_overrides(path: str | os.PathLike) -> list[str]:
    """The ``--set`` overrides that make the refine stage use the refiner exported at ``path``.

    ``model_options`` repeat the sidecar, so the overrides work even where the sidecar is not copied.
    """
    spec = read_sidecar(path)
    if spec is None:
        raise ValueError(
            f"{path}: no input-spec sidecar {sidecar_path(path).name}; export it with export_refiner"
        )
    return [
        "refine.model=onnx",
        "refine.backend=onnxruntime",
        f"refine.weights={path}",
        f"refine.model_options={json.dumps(spec)}",
    ]
