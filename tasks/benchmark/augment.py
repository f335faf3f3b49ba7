"""Batch augmentation of packed frames, on the device that trains (issue 11).

A packed batch holds uint8 frames ``(B, T, H, W, 3)`` at the stored size and, per clip, the draw of
:class:`tasks.benchmark.data.Augment` as ``(side, x, y, brightness, contrast, flip)``. One ``grid_sample``
crops, flips and resizes every clip of the batch to the model's size (bilinear); brightness and contrast
change each frame around its mean, then pixels are clipped to 0..255 and normalised, as the JPEG path does
per frame (:func:`tasks.benchmark.data._load`). Evaluation batches carry the identity draw
``(1, 0, 0, 1, 1, 0)``: the whole frame, resized.

    >>> face, scene = device_inputs(batch, cfg, "cuda")                         # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from tasks.benchmark.data import MEAN, STD

if TYPE_CHECKING:
    from tasks.benchmark.config import BenchmarkConfig


def augment_frames(frames: torch.Tensor, aug: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``frames`` ``(B, T, H, W, 3)`` uint8 -> ``(B, 3, T, *size)`` float, cropped, flipped, resized and
    jittered per clip by ``aug`` ``(B, 6)``, normalised with :data:`MEAN` and :data:`STD`."""
    b, t, h, w, _ = frames.shape
    x = frames.permute(0, 1, 4, 2, 3).reshape(b * t, 3, h, w).float()
    side, ox, oy, bright, contrast, flip = aug.to(x.device, torch.float32).unbind(1)
    # The crop box [o, o + side] of the frame in grid coordinates (-1..1); a flip mirrors the x axis.
    sx = torch.where(flip > 0.5, -side, side)
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 0, 2] = sx, 2 * ox + side - 1
    theta[:, 1, 1], theta[:, 1, 2] = side, 2 * oy + side - 1
    theta = theta.repeat_interleave(t, dim=0)
    grid = F.affine_grid(theta, [b * t, 3, *size], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    gain = lambda v: v.repeat_interleave(t).view(-1, 1, 1, 1)  # noqa: E731  per clip -> per frame
    out = ((out - mean) * gain(contrast) + mean * gain(bright)).clamp_(0, 255)
    mu = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1) * 255
    sd = torch.tensor(STD, device=x.device).view(1, 3, 1, 1) * 255
    out = (out - mu) / sd
    return out.view(b, t, 3, *size).permute(0, 2, 1, 3, 4).contiguous()


def device_inputs(
    batch: dict, cfg: BenchmarkConfig, device: str, scene: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The model's face (and scene) tensors of a batch on ``device``: JPEG-path batches are moved as they
    are, packed batches are augmented there (:func:`augment_frames`)."""
    face = batch["face"].to(device, non_blocking=True)
    scn = batch["scene"].to(device, non_blocking=True) if scene else None
    if face.dtype != torch.uint8:
        return face, scn
    aug = batch["aug"].to(device, non_blocking=True)
    face = augment_frames(face, aug, (cfg.face_size, cfg.face_size))
    if scn is not None:
        scn = augment_frames(scn, aug, (cfg.scene_height, cfg.scene_width))
    return face, scn
