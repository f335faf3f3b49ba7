"""3D-R18 (Tran et al., 2018), the 3D ResNet-18 of Table 2 (paper, section 4.2, "3D ConvNet").

torchvision's ``r3d_18`` with random weights (the paper trains from scratch) up to its global average pool
(512); strided convolutions and the adaptive pool take 2 to 16 frames and 112x168 scene frames as they are.

    >>> build("r3d-18", n_frames=8)(torch.zeros(2, 3, 8, 112, 112)).shape   # doctest: +SKIP
    torch.Size([2, 7])
"""

from __future__ import annotations

import torch
from torch import nn

from models.zoo.base import ZOO, ClipClassifier


class R3D18Encoder(nn.Module):
    """torchvision's r3d_18 without its fc: clip ``(B, 3, T, H, W)`` -> ``(B, 512)``."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models.video import r3d_18

        net = r3d_18(weights=None)
        self.out_dim: int = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@ZOO.register("r3d-18")
def r3d18(num_classes: int = 7, n_frames: int = 8, dropout: float = 0.5) -> ClipClassifier:
    """3D-R18 with a ``num_classes`` head."""
    return ClipClassifier(R3D18Encoder(), num_classes, n_frames, dropout)
