"""The ``benchmark`` config section: protocol, sampling, augmentation and training (paper, section 4.1).

Defaults follow the paper: 80/20 split, faces 112x112 and scene frames 112x168, SGD with momentum 0.9 and
weight decay 1e-4, batch 32, 60 epochs, learning rate 1e-2 decayed by 0.95 per epoch ("lr as 0.95").
CPU runs set tiny values (``epochs``, ``max_steps_per_epoch``, ``n_frames``).

    >>> BenchmarkConfig(n_frames=4).face_size
    112
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from data_catalog.section import Section

#: Table 2's columns after All and the four scenarios: the paper's nine representative scenes.
PAPER_TABLE_SCENES = (
    "Social", "DailyLife", "Liveshow", "Talkshow", "Interview", "Contest", "Experiment", "Terror", "Crisis",
)  # fmt: skip


class BenchmarkConfig(Section):
    """Protocol, data and training settings of the benchmark."""

    # protocol
    seed: int = 0
    test_fraction: float = Field(0.2, gt=0, lt=1)
    models: list[str] = Field(default_factory=lambda: ["r18-lstm"])  # the flow's default model list
    setups: list[str] = Field(default_factory=lambda: ["All"])  # the flow's default setups
    # data (section 4.1)
    n_frames: int = Field(8, ge=2, le=16)
    frame_interval: int = Field(0, ge=0)  # frames between samples; 0 = spread over the whole clip
    face_size: int = Field(112, ge=16)
    scene_height: int = Field(112, ge=16)
    scene_width: int = Field(168, ge=16)
    augment: bool = True  # training only: random crop, illumination change, horizontal flip
    crop_scale: float = Field(0.8, gt=0, le=1)  # smallest side share a random crop keeps
    illumination: float = Field(0.3, ge=0, lt=1)  # brightness and contrast jitter, +-share
    flip: float = Field(0.5, ge=0, le=1)  # probability of a horizontal flip
    num_workers: int = Field(4, ge=0)  # long-lived loader workers per job (0: load in the training process)
    # Decode each clip once into a packed frame store (tasks/benchmark/pack.py) and augment whole batches
    # on the training device; off: decode JPEGs in the loader workers every epoch.
    packed: bool = True
    # training (section 4.1)
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-2, gt=0, le=1)  # the paper uses 1e-3 .. 1e-2
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    schedule: Literal["step", "cosine"] = "step"
    step_size: int = Field(1, ge=1)  # epochs between decays (step schedule)
    gamma: float = Field(0.95, gt=0, le=1)  # decay factor (step schedule)
    max_steps_per_epoch: int | None = Field(None, ge=1)  # cap for tiny runs
    amp: bool = True  # mixed precision, on CUDA only
    device: Literal["auto", "cpu", "cuda"] = "auto"
    init_checkpoint: str | None = None  # a state dict to start from (the pre-training ablation)
    model_options: dict[str, Any] = Field(default_factory=dict)  # passed to models.zoo.build
    # reports
    table_scenes: list[str] = Field(default_factory=lambda: list(PAPER_TABLE_SCENES))
    table3_model: str = "r50-lstm"  # the paper's Table 3 uses RS50-LSTM
    export_refiner: bool = True  # closed loop: export a trained 2D ResNet-50 as a FER refiner (ONNX)

    @model_validator(mode="after")
    def _scene_is_landscape(self) -> BenchmarkConfig:
        if self.scene_width < self.scene_height:
            raise ValueError(
                f"scene frames are landscape (section 4.1: 112x168); got {self.scene_height}x{self.scene_width}"
            )
        return self

    def resolved_device(self) -> str:
        """``'cuda'`` when asked for or available under ``auto``; a clear error when asked for and absent."""
        import torch

        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                "benchmark.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'"
            )
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device
