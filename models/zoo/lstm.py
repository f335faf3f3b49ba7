"""2D ConvNet-LSTM baselines: R18-, R50-, VGG13-, VGG16-LSTM (paper, section 4.2; Table 2, rows 5-8).

"We position an LSTM layer with 1024 hidden units and batch normalization layer (as proposed by Cooijmans
et al.) after the last average pooling layer of 2D ConvNets. A fully connected layer is added on top as the
classifier." :class:`BNLSTM` is that recurrent batch-normalised LSTM (Cooijmans et al., 2017): the
input-to-hidden and hidden-to-hidden terms and the cell state are each batch-normalised, with statistics
kept per time step (shared scale and shift), gains initialised to 0.1. The clip's feature is the last hidden
state. ``lstm_model`` wraps any registered 2D backbone (``models.zoo.frames2d.BACKBONES_2D``).

    >>> build("r18-lstm", n_frames=8)(torch.zeros(2, 3, 8, 112, 112)).shape   # doctest: +SKIP
    torch.Size([2, 7])
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from models.zoo.base import ZOO, ClipClassifier, frames_to_batch
from models.zoo.frames2d import BACKBONES_2D


class StepBatchNorm(nn.Module):
    """Batch norm over ``(B, F)`` with running statistics per time step and one shared affine map.

    Steps past ``max_steps`` use the last step's statistics (Cooijmans et al., section 4).
    """

    def __init__(self, num_features: int, max_steps: int, gain: float = 0.1, shift: bool = True) -> None:
        super().__init__()
        self.max_steps = max_steps
        self.momentum, self.eps = 0.1, 1e-5
        self.weight = nn.Parameter(torch.full((num_features,), gain))
        self.bias = nn.Parameter(torch.zeros(num_features)) if shift else None
        self.register_buffer("running_mean", torch.zeros(max_steps, num_features))
        self.register_buffer("running_var", torch.ones(max_steps, num_features))

    def forward(self, x: torch.Tensor, step: int) -> torch.Tensor:
        t = min(step, self.max_steps - 1)
        return F.batch_norm(
            x, self.running_mean[t], self.running_var[t], self.weight, self.bias,
            self.training, self.momentum, self.eps,
        )  # fmt: skip


class BNLSTM(nn.Module):
    """One LSTM layer with recurrent batch normalisation; ``(B, T, input_size) -> (B, hidden_size)``."""

    def __init__(self, input_size: int, hidden_size: int = 1024, max_steps: int = 16) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Linear(input_size, 4 * hidden_size, bias=False)
        self.weight_hh = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))
        # the two gate terms get no shift of their own: ``bias`` is it
        self.bn_ih = StepBatchNorm(4 * hidden_size, max_steps, shift=False)
        self.bn_hh = StepBatchNorm(4 * hidden_size, max_steps, shift=False)
        self.bn_c = StepBatchNorm(hidden_size, max_steps)
        # batch norm makes the scale of both terms irrelevant; the recurrent map starts orthogonal per gate
        with torch.no_grad():
            for gate in self.weight_hh.weight.split(hidden_size):
                nn.init.orthogonal_(gate)
            self.bias[hidden_size : 2 * hidden_size] = 1.0  # forget gate: remember by default

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h = x.new_zeros(b, self.hidden_size)
        c = x.new_zeros(b, self.hidden_size)
        wx = self.weight_ih(x)  # all steps at once
        for step in range(t):
            gates = self.bn_ih(wx[:, step], step) + self.bn_hh(self.weight_hh(h), step) + self.bias
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(self.bn_c(c, step))
        return h


class FrameLSTM(nn.Module):
    """Clip encoder: one 2D embedding per frame, then a :class:`BNLSTM` over time -> ``(B, hidden)``."""

    def __init__(self, frame_net: nn.Module, n_frames: int, hidden_size: int = 1024) -> None:
        super().__init__()
        self.frame_net = frame_net
        self.lstm = BNLSTM(frame_net.out_dim, hidden_size, max_steps=n_frames)
        self.out_dim: int = hidden_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.frame_net(frames_to_batch(x)).reshape(x.shape[0], x.shape[2], -1)
        return self.lstm(feats)


def lstm_model(
    backbone: str, num_classes: int = 7, n_frames: int = 8, hidden_size: int = 1024, dropout: float = 0.5
) -> ClipClassifier:
    """The "2D ConvNet-LSTM" baseline over any registered 2D backbone."""
    encoder = FrameLSTM(BACKBONES_2D.create(backbone), n_frames, hidden_size)
    return ClipClassifier(encoder, num_classes, n_frames, dropout)


for _name in BACKBONES_2D.names():
    ZOO.register(f"{_name}-lstm")(functools.partial(lstm_model, _name))
