"""C3D (Tran et al., 2015), the 3D ConvNet baseline of Table 2 (paper, section 4.2, "3D ConvNet").

The original network: eight 3x3x3 convolutions (64, 128, 256, 256, 512, 512, 512, 512), five max pools
(the first spatial only), fc6 and fc7 of 4096 units with dropout; the clip feature is fc7. The paper notes
3D ConvNets need "extra adjustments of network and output structures" for DFER; ours are two:
- temporal pooling stops halving once one frame is left, so clips of 2 to 16 frames all fit (at 16 frames
  this is the original);
- an adaptive average pool to 1 x 4 x 4 before fc6, so the 112x168 scene frames of the two-stream model
  meet the same fc6 as the 112x112 faces (at 16 frames of 112x112 it is the identity).

    >>> build("c3d", n_frames=16)(torch.zeros(2, 3, 16, 112, 112)).shape   # doctest: +SKIP
    torch.Size([2, 7])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.zoo.base import ZOO, ClipClassifier


class Pool3d(nn.Module):
    """C3D's 2x2x2 max pool (``temporal=False``: 1x2x2), never pooling time below one frame."""

    def __init__(self, temporal: bool = True, padding: tuple[int, int, int] = (0, 0, 0)) -> None:
        super().__init__()
        self.temporal = temporal
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kt = 2 if self.temporal and x.shape[2] >= 2 else 1
        return F.max_pool3d(x, (kt, 2, 2), (kt, 2, 2), self.padding)


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv3d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]


class C3DEncoder(nn.Module):
    """C3D up to fc7 (after its ReLU): clip ``(B, 3, T, H, W)`` -> ``(B, 4096)``."""

    def __init__(self, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv(3, 64), Pool3d(temporal=False),
            *_conv(64, 128), Pool3d(),
            *_conv(128, 256), *_conv(256, 256), Pool3d(),
            *_conv(256, 512), *_conv(512, 512), Pool3d(),
            *_conv(512, 512), *_conv(512, 512), Pool3d(padding=(0, 1, 1)),
            nn.AdaptiveAvgPool3d((1, 4, 4)),
        )  # fmt: skip
        self.fc6 = nn.Linear(512 * 4 * 4, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = 4096
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).flatten(1)
        x = self.dropout(F.relu(self.fc6(x)))
        return F.relu(self.fc7(x))


@ZOO.register("c3d")
def c3d(num_classes: int = 7, n_frames: int = 8, dropout: float = 0.5) -> ClipClassifier:
    """C3D with a ``num_classes`` head (fc8)."""
    return ClipClassifier(C3DEncoder(dropout), num_classes, n_frames, dropout)
