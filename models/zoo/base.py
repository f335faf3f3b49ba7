"""What every baseline of the zoo is made of: a clip encoder and a linear head (paper, section 4.2).

An *encoder* maps a clip ``(B, 3, T, H, W)`` to one feature vector ``(B, D)`` and says its ``out_dim``; a
:class:`ClipClassifier` puts dropout and a linear layer on top. Keeping the two apart is what lets the
two-stream models (``models.zoo.two_stream``) wrap any registered backbone: they take the encoders of two
one-stream models and fuse their features late.

    >>> model = ClipClassifier(encoder, num_classes=7, n_frames=8)      # doctest: +SKIP
    >>> model(torch.zeros(2, 3, 8, 112, 112)).shape
    torch.Size([2, 7])
"""

from __future__ import annotations

import os

import torch
from torch import nn

from models.registry import Registry

#: The zoo's registry; ``models.zoo.build`` and ``models.zoo.list_models`` read it.
ZOO: Registry[nn.Module] = Registry("zoo model")

#: The frame counts the benchmark uses (paper, Figure 6: 2 to 16 frames).
MIN_FRAMES, MAX_FRAMES = 2, 16


def check_clip(x: torch.Tensor, stream: str, n_frames: int) -> None:
    """A ``ValueError`` naming ``stream`` unless ``x`` is a float clip ``(B, 3, n_frames, H, W)``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{stream}: expected a tensor (B, 3, {n_frames}, H, W), got {type(x).__name__}")
    if x.ndim != 5 or x.shape[1] != 3 or x.shape[2] != n_frames or not x.is_floating_point():
        raise ValueError(
            f"{stream}: expected a float tensor (B, 3, {n_frames}, H, W), got {x.dtype} {tuple(x.shape)}"
        )


def check_sizes(num_classes: int, n_frames: int) -> None:
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if not MIN_FRAMES <= n_frames <= MAX_FRAMES:
        raise ValueError(f"n_frames must be in {MIN_FRAMES}..{MAX_FRAMES}, got {n_frames}")


class ClipClassifier(nn.Module):
    """A one-stream model: ``encoder`` (clip -> ``(B, out_dim)``), dropout, linear head -> logits.

    ``forward`` takes ``scene`` too, so a data loader can feed every model the same way; one-stream
    models ignore it (``streams`` says what a model reads).
    """

    streams: tuple[str, ...] = ("face",)

    def __init__(self, encoder: nn.Module, num_classes: int, n_frames: int, dropout: float = 0.5) -> None:
        super().__init__()
        check_sizes(num_classes, n_frames)
        self.encoder = encoder
        self.n_frames = n_frames
        self.num_classes = num_classes
        self.feature_dim: int = encoder.out_dim
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def forward(self, face: torch.Tensor, scene: torch.Tensor | None = None) -> torch.Tensor:
        check_clip(face, "face", self.n_frames)
        return self.head(self.dropout(self.encoder(face)))


def count_params(model: nn.Module) -> int:
    """Trainable parameters (what the model-zoo README counts)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def frames_to_batch(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B * T, C, H, W)``: every frame through a 2D network at once."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


def load_init_checkpoint(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Initialise ``model`` from the state dict at ``path`` (pre-training ablation, paper Figure 6).

    Every parameter and buffer must be there with its shape, except the classifier (``head.*``): a model
    pre-trained on another label set keeps its fresh head. Returns the names left at their initial values.
    """
    from models.fer.resnet50 import load_checkpoint

    state, _ = load_checkpoint(path)
    own = model.state_dict()
    fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    left = [k for k in own if k not in fits]
    wrong = [k for k in left if not k.startswith("head.")]
    if wrong:
        shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise ValueError(
            f"{path}: not a checkpoint of this architecture: {len(wrong)} entries missing or of another"
            f" shape ({shown})"
        )
    model.load_state_dict(fits, strict=False)
    return left
