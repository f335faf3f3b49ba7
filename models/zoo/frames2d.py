"""2D ConvNet baselines R18, R50, VGG13, VGG16 (paper, section 4.2, "2D ConvNet"; Table 2, rows 1-4).

"Features of all frames can be extracted and flattened into embeddings, which are concatenated and fed
into a classifier": each frame goes through the same 2D network (torchvision's, random weights: the
paper trains from scratch), the T embeddings are concatenated (so the head is built for ``n_frames``) and
a linear layer classifies the clip. Embeddings: ResNets' global average pool (512 / 2048); VGGs' fc7
(4096, torchvision's classifier without its last layer, whose parameter count matches the README's).

The per-frame networks are a registry of their own, ``BACKBONES_2D``, that ``models.zoo.lstm`` wraps too.

    >>> build("vgg13", n_frames=8)(torch.zeros(2, 3, 8, 112, 112)).shape   # doctest: +SKIP
    torch.Size([2, 7])
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from models.registry import Registry
from models.zoo.base import ZOO, ClipClassifier, frames_to_batch

#: Per-frame 2D networks: ``(N, 3, H, W) -> (N, out_dim)``, built by name.
BACKBONES_2D: Registry[nn.Module] = Registry("2D backbone")


class ResNetEmbedding(nn.Module):
    """A torchvision ResNet up to its global average pool."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        from torchvision.models import resnet18, resnet50

        net = {18: resnet18, 50: resnet50}[depth](weights=None)
        self.out_dim: int = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class VGGEmbedding(nn.Module):
    """A torchvision VGG up to fc7 (after its ReLU); its adaptive pool makes any input size >= 32 fit."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        from torchvision.models import vgg13, vgg16

        net = {13: vgg13, 16: vgg16}[depth](weights=None)
        net.classifier = net.classifier[:-2]  # drop the last dropout and the 1000-way layer
        self.out_dim: int = 4096
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


BACKBONES_2D.register("r18")(functools.partial(ResNetEmbedding, 18))
BACKBONES_2D.register("r50")(functools.partial(ResNetEmbedding, 50))
BACKBONES_2D.register("vgg13")(functools.partial(VGGEmbedding, 13))
BACKBONES_2D.register("vgg16")(functools.partial(VGGEmbedding, 16))


class FrameConcat(nn.Module):
    """Clip encoder: one 2D embedding per frame, concatenated in time order -> ``(B, T * D)``."""

    def __init__(self, frame_net: nn.Module, n_frames: int) -> None:
        super().__init__()
        self.frame_net = frame_net
        self.out_dim: int = n_frames * frame_net.out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_net(frames_to_batch(x)).reshape(x.shape[0], -1)


def frames2d_model(
    backbone: str, num_classes: int = 7, n_frames: int = 8, dropout: float = 0.5
) -> ClipClassifier:
    """The "2D ConvNet" baseline over any registered 2D backbone (``BACKBONES_2D.names()``)."""
    return ClipClassifier(
        FrameConcat(BACKBONES_2D.create(backbone), n_frames), num_classes, n_frames, dropout
    )


for _name in BACKBONES_2D.names():
    ZOO.register(_name)(functools.partial(frames2d_model, _name))
