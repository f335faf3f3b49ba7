"""I3D (Carreira and Zisserman, 2017), the inflated Inception-v1 of Table 2 (paper, section 4.2).

Inception-v1 with every filter and pool inflated to 3D, batch norm after each convolution and the
TensorFlow "SAME" padding of the original (computed per input, so 2 to 16 frames and the 112x168 scene
frames all fit). The clip feature is the global average of Mixed_5c (1024); the original's 1x1x1 logits
convolution over the averaged feature is the linear head of :class:`models.zoo.base.ClipClassifier`.

    >>> build("i3d", n_frames=8)(torch.zeros(2, 3, 8, 112, 112)).shape   # doctest: +SKIP
    torch.Size([2, 7])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.zoo.base import ZOO, ClipClassifier

Triple = tuple[int, int, int]

# Inception modules: name, input channels, (1x1, 3x3 reduce, 3x3, 3x3' reduce, 3x3', pool proj)
MIXED = {
    "3b": (192, (64, 96, 128, 16, 32, 32)),
    "3c": (256, (128, 128, 192, 32, 96, 64)),
    "4b": (480, (192, 96, 208, 16, 48, 64)),
    "4c": (512, (160, 112, 224, 24, 64, 64)),
    "4d": (512, (128, 128, 256, 24, 64, 64)),
    "4e": (512, (112, 144, 288, 32, 64, 64)),
    "4f": (528, (256, 160, 320, 32, 128, 128)),
    "5b": (832, (256, 160, 320, 32, 128, 128)),
    "5c": (832, (384, 192, 384, 48, 128, 128)),
}


def same_padding(x: torch.Tensor, kernel: Triple, stride: Triple) -> torch.Tensor:
    """Zero-pad ``x`` (B, C, T, H, W) the way TensorFlow's ``padding='SAME'`` does."""
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride), strict=True):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3d(nn.Module):
    """Conv3d (SAME padding, no bias) + batch norm + ReLU."""

    def __init__(self, cin: int, cout: int, kernel: Triple = (1, 1, 1), stride: Triple = (1, 1, 1)) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv3d(cin, cout, kernel, stride, bias=False)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(same_padding(x, self.kernel, self.stride))))


class MaxPoolSame(nn.Module):
    """Max pool with SAME padding (zeros: the inputs are post-ReLU, so zero is the minimum)."""

    def __init__(self, kernel: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(same_padding(x, self.kernel, self.stride), self.kernel, self.stride)


class Mixed(nn.Module):
    """An inflated Inception module: four branches concatenated along channels."""

    def __init__(self, cin: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        w0, w1a, w1, w2a, w2, w3 = widths
        k3 = (3, 3, 3)
        self.b0 = Unit3d(cin, w0)
        self.b1 = nn.Sequential(Unit3d(cin, w1a), Unit3d(w1a, w1, k3))
        self.b2 = nn.Sequential(Unit3d(cin, w2a), Unit3d(w2a, w2, k3))
        self.b3 = nn.Sequential(MaxPoolSame(k3, (1, 1, 1)), Unit3d(cin, w3))
        self.out_dim = w0 + w1 + w2 + w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1(x), self.b2(x), self.b3(x)], dim=1)


class I3DEncoder(nn.Module):
    """I3D up to the global average of Mixed_5c: clip ``(B, 3, T, H, W)`` -> ``(B, 1024)``."""

    def __init__(self) -> None:
        super().__init__()
        spatial_pool = ((1, 3, 3), (1, 2, 2))
        layers: list[nn.Module] = [
            Unit3d(3, 64, (7, 7, 7), (2, 2, 2)),
            MaxPoolSame(*spatial_pool),
            Unit3d(64, 64),
            Unit3d(64, 192, (3, 3, 3)),
            MaxPoolSame(*spatial_pool),
        ]
        pools = {"4b": ((3, 3, 3), (2, 2, 2)), "5b": ((2, 2, 2), (2, 2, 2))}  # before these modules
        for name, (cin, widths) in MIXED.items():
            if name in pools:
                layers.append(MaxPoolSame(*pools[name]))
            layers.append(Mixed(cin, widths))
        layers.append(nn.AdaptiveAvgPool3d(1))
        self.features = nn.Sequential(*layers)
        self.out_dim = 1024

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)


@ZOO.register("i3d")
def i3d(num_classes: int = 7, n_frames: int = 8, dropout: float = 0.5) -> ClipClassifier:
    """I3D with a ``num_classes`` head."""
    return ClipClassifier(I3DEncoder(), num_classes, n_frames, dropout)
