"""Two-stream baselines: face + scene (paper, section 4.2, "Two-Stream Networks"; Table 2, rows 12-16).

"Inspired by CAER, we feed sequences of cropped face images and scene frames into the Two-Stream 3D
ConvNets and 2D ConvNet-LSTM." :class:`TwoStream` wraps any registered one-stream model: it builds it twice,
keeps the two encoders (face crops at 112x112, whole frames at 112x168: section 4.1), concatenates their
features (late fusion) and classifies them with one dropout + linear head. The five of Table 2 are
registered as ``ts-<backbone>``; ``two_stream_model`` builds the others (Figure 6's one- vs two-stream
ablation).

    >>> model = build("ts-r18-lstm", n_frames=8)                             # doctest: +SKIP
    >>> model(torch.zeros(2, 3, 8, 112, 112), torch.zeros(2, 3, 8, 112, 168)).shape
    torch.Size([2, 7])
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from models.zoo.base import ZOO, check_clip, check_sizes

#: Table 2's two-stream rows: C3D, I3D, 3D-R18, R18-LSTM and VGG13-LSTM.
PAPER_TWO_STREAM = ("c3d", "i3d", "r3d-18", "r18-lstm", "vgg13-lstm")


class TwoStream(nn.Module):
    """Face encoder + scene encoder, features concatenated, dropout, linear head -> logits."""

    streams: tuple[str, ...] = ("face", "scene")

    def __init__(
        self, face: nn.Module, scene: nn.Module, num_classes: int, n_frames: int, dropout: float = 0.5
    ) -> None:
        super().__init__()
        check_sizes(num_classes, n_frames)
        self.face_encoder = face
        self.scene_encoder = scene
        self.n_frames = n_frames
        self.num_classes = num_classes
        self.feature_dim: int = face.out_dim + scene.out_dim
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def forward(self, face: torch.Tensor, scene: torch.Tensor | None = None) -> torch.Tensor:
        if scene is None:
            raise ValueError("scene: a two-stream model needs the scene frames (B, 3, T, 112, 168)")
        check_clip(face, "face", self.n_frames)
        check_clip(scene, "scene", self.n_frames)
        if scene.shape[0] != face.shape[0]:
            raise ValueError(f"scene: batch of {scene.shape[0]} clips, face has {face.shape[0]}")
        feats = torch.cat([self.face_encoder(face), self.scene_encoder(scene)], dim=1)
        return self.head(self.dropout(feats))


def two_stream_model(
    backbone: str, num_classes: int = 7, n_frames: int = 8, dropout: float = 0.5, **kw
) -> TwoStream:
    """Two streams of the registered one-stream model ``backbone`` (``kw`` go to both)."""
    if backbone.startswith("ts-"):
        raise ValueError(f"{backbone!r} is two-stream already; give a one-stream backbone")
    face, scene = (ZOO.create(backbone, num_classes=num_classes, n_frames=n_frames, **kw) for _ in "fs")
    return TwoStream(face.encoder, scene.encoder, num_classes, n_frames, dropout)


for _name in PAPER_TWO_STREAM:
    ZOO.register(f"ts-{_name}")(functools.partial(two_stream_model, _name))
