"""The baseline zoo: the 16 models of the paper's Table 2 behind one registry (paper, section 4.2).

Every model maps ``face`` clips ``(B, 3, T, 112, 112)`` (and, for two-stream models, ``scene`` clips
``(B, 3, T, 112, 168)``) to logits ``(B, num_classes)``; its ``streams`` attribute says which it reads.
Weights start random (the paper trains from scratch); ``init_checkpoint`` loads a state dict instead (the
pre-training ablation, Figure 6). Importing this package is light; torch loads on the first ``build``.

    >>> from models.zoo import TABLE2, build, list_models
    >>> list_models("*lstm")
    ['r18-lstm', 'r50-lstm', 'ts-r18-lstm', 'ts-vgg13-lstm', 'vgg13-lstm', 'vgg16-lstm']
    >>> model = build("ts-vgg13-lstm", num_classes=7, n_frames=8)   # doctest: +SKIP
    >>> model(face, scene).shape                                     # doctest: +SKIP
    torch.Size([2, 7])

A family registers its factories on ``models.zoo.base.ZOO``; adding a model touches one file.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from models.zoo.export import export_refiner, refine_overrides
from models.zoo.table2 import TABLE2, ZooEntry

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "TABLE2",
    "ZooEntry",
    "build",
    "export_refiner",
    "list_models",
    "param_count",
    "refine_overrides",
]


def _registry():
    """The zoo registry with every family registered (imports torch and the family modules once)."""
    from models.zoo import c3d, frames2d, i3d, lstm, r3d, two_stream  # noqa: F401  (they register)
    from models.zoo.base import ZOO

    return ZOO


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted; ``pattern`` is a shell-style filter such as ``'ts-*'``."""
    return _registry().names(pattern)


def build(
    name: str,
    num_classes: int = 7,
    n_frames: int = 8,
    init_checkpoint: str | os.PathLike | None = None,
    **kw,
) -> nn.Module:
    """The model registered as ``name`` for clips of ``n_frames`` frames (2..16).

    ``ts-<name>`` also builds the two-stream version of any one-stream model that Table 2 lacks (e.g.
    ``ts-vgg16``); ``kw`` go to the family's factory (``dropout``, ``hidden_size`` for the LSTMs).
    """
    from models.zoo.base import check_sizes, load_init_checkpoint
    from models.zoo.two_stream import two_stream_model

    registry = _registry()
    check_sizes(num_classes, n_frames)
    base = name.removeprefix("ts-")
    if name not in registry.names() and name.startswith("ts-") and base in registry.names():
        model = two_stream_model(base, num_classes=num_classes, n_frames=n_frames, **kw)
    else:
        model = registry.create(name, num_classes=num_classes, n_frames=n_frames, **kw)
    model.zoo_name = name  # what it was built as (reports, the exported refiner's sidecar)
    if init_checkpoint is not None:
        load_init_checkpoint(model, init_checkpoint)
    return model


def param_count(name: str, num_classes: int = 7, n_frames: int = 8) -> int:
    """Trainable parameters of ``build(name, ...)``, counted without allocating weights (meta device)."""
    import torch

    from models.zoo.base import count_params

    with torch.device("meta"):
        return count_params(build(name, num_classes, n_frames))
