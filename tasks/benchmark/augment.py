"""Batch augmentation of packed frames, on the device that trains (issue 11).

A packed batch holds uint8 frames ``(B, T, H, W, 3)`` at the stored size and, per clip, the draw of
``tasks.benchmark.data._Augment`` as ``(side, x, y, brightness, contrast, flip)``. Each clip's frames are
cropped and resized to the model's size in one call (bilinear with antialiasing, where the JPEG path uses
INTER_AREA); brightness and contrast change each frame around its mean, pixels are clipped to 0..255
and normalised for the whole batch at once, as the JPEG path does per frame
(``tasks.benchmark.data._load``). Evaluation batches carry the identity draw ``(1, 0, 0, 1, 1, 0)``: the
whole frame, resized. On CUDA all of it runs on the GPU; on the CPU, in the training process.

    >>> face, scene = device_inputs(batch, cfg, "cuda")                         # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from tasks.benchmark.data import MEAN, STD

if TYPE_CHECKING:
    from tasks.benchmark.config import BenchmarkConfig


def _resize(clip: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(T, 3, h, w)`` uint8 -> ``(T, 3, *size)`` float, bilinear with antialiasing (close to INTER_AREA
    when shrinking), rounded to whole levels as cv2's uint8 resize is. The CPU has a fast uint8 kernel."""
    if clip.device.type == "cpu":
        x = clip.contiguous(memory_format=torch.channels_last)
        return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False).float()
    x = F.interpolate(clip.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255)


def _crops_looped(frames: torch.Tensor, aug: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop and resize one clip at a time with :func:`_resize` (the CPU's fast uint8 kernel):
    ``(B, T, H, W, 3)`` uint8 -> ``(B, 3, T, *size)`` float, flipped by the draw."""
    b, t, h, w, _ = frames.shape
    out = torch.empty(b, 3, t, *size, device=frames.device)
    for k, (side, ox, oy, _, _, flip) in enumerate(aug.tolist()):
        ch, cw = max(1, round(h * side)), max(1, round(w * side))  # as tasks.benchmark.data._load crops
        y0, x0 = round(oy * h), round(ox * w)
        clip = _resize(frames[k, :, y0 : y0 + ch, x0 : x0 + cw].permute(0, 3, 1, 2), size).transpose(0, 1)
        out[k] = clip.flip(-1) if flip > 0.5 else clip  # a flip leaves the frame's mean as it is
    return out


def _crops_batched(frames: torch.Tensor, aug: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """As :func:`_crops_looped`, with every frame of the batch cropped and resized by one ``roi_align``
    (the same boxes; each output pixel averages ``ceil(crop / size)`` bilinear samples per axis where
    :func:`_resize` weighs them with a triangle): a handful of kernels per batch instead of a few per clip,
    so a GPU is not kept waiting on the host to launch them."""
    from torchvision.ops import roi_align

    b, t, h, w, _ = frames.shape
    boxes = []
    for k, (side, ox, oy, *_rest) in enumerate(aug.tolist()):
        ch, cw = max(1, round(h * side)), max(1, round(w * side))
        y0, x0 = round(oy * h), round(ox * w)
        boxes += [[k * t + i, x0, y0, x0 + cw, y0 + ch] for i in range(t)]
    rois = torch.tensor(boxes, dtype=torch.float32).to(frames.device, non_blocking=True)
    x = frames.reshape(b * t, h, w, 3).permute(0, 3, 1, 2).float()
    out = roi_align(x, rois, size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    out = out.round_().clamp_(0, 255).view(b, t, 3, *size).transpose(1, 2)  # (B, 3, T, *size)
    flip = (aug[:, 5] > 0.5).to(frames.device, non_blocking=True).view(b, 1, 1, 1, 1)
    return torch.where(flip, out.flip(-1), out).contiguous()


def augment_frames(frames: torch.Tensor, aug: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``frames`` ``(B, T, H, W, 3)`` uint8 -> ``(B, 3, T, *size)`` float: each clip cropped by its draw in
    ``aug`` ``(B, 6)`` (a CPU tensor), resized, changed in brightness and contrast around each frame's
    mean, flipped, and normalised with :data:`MEAN` and :data:`STD`. On a GPU the crops are taken in one
    call (:func:`_crops_batched`), on the CPU clip by clip (:func:`_crops_looped`)."""
    b = frames.shape[0]
    crops = _crops_looped if frames.device.type == "cpu" else _crops_batched
    out = crops(frames, aug, size)
    # In place over the batch (fresh buffers of this size cost more than the arithmetic on a CPU):
    # (x - m) * contrast + m * brightness = x * contrast + m * (brightness - contrast), m each frame's mean.
    gains = aug.to(out.device, torch.float32, non_blocking=True)
    bright, contrast = gains[:, 3].view(b, 1, 1, 1, 1), gains[:, 4].view(b, 1, 1, 1, 1)
    mean = out.mean(dim=(1, 3, 4), keepdim=True)
    out.mul_(contrast).add_(mean * (bright - contrast)).clamp_(0, 255)
    sd = torch.tensor(STD, device=out.device).view(1, 3, 1, 1, 1) * 255
    mu = torch.tensor(MEAN, device=out.device).view(1, 3, 1, 1, 1) * 255
    return out.sub_(mu).div_(sd)


def device_inputs(
    batch: dict, cfg: BenchmarkConfig, device: str, scene: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The model's face (and scene) tensors of a batch on ``device``: JPEG-path batches are moved as they
    are, packed batches are augmented there (:func:`augment_frames`)."""
    face = batch["face"].to(device, non_blocking=True)
    scn = batch["scene"].to(device, non_blocking=True) if scene else None
    if face.dtype != torch.uint8:
        return face, scn
    aug = batch["aug"]  # crop boxes are read on the host: no wait for the device
    face = augment_frames(face, aug, (cfg.face_size, cfg.face_size))
    if scn is not None:
        scn = augment_frames(scn, aug, (cfg.scene_height, cfg.scene_width))
    return face, scn
