"""The ``face_filter`` config section: detector, rule list, budget and crop settings (paper 3.2, 4.1).

The rules are an ordered list of ``{name, threshold}`` entries, so a preset or user file can reorder,
retune or drop them; a clip is kept when it passes every rule, and the first rule it fails is its reason.

    face_filter:
      detector: {name: scrfd, device: auto, size: 640, batch: 16}
      rules:
        - {name: face_presence, threshold: 0.75}
        - {name: dominant_face, threshold: 2.0}
      target: 1800          # final clips per scene; the filter keeps budget_factor x target
      targets: {Interview: 2500}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from data_catalog.section import Section
from tasks.face_filter.rules import RULES, RuleSpec, default_rules


class DetectorSettings(Section):
    """Which registered detector to build (``models.detectors``) and how."""

    name: str = Field(default="scrfd", description="a registered detector (models.detectors.list_detectors)")
    model_path: Path | None = Field(
        default=None, description="scrfd: an ONNX file; default: the scrfd-2.5g-kps asset"
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="family-specific arguments, e.g. {pack: buffalo_l, root: ~/.insightface} for insightface-pack",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto: CUDA when a GPU is usable, else the CPU (said once); cuda: or fail"
    )
    backend: Literal["auto", "onnxruntime", "torch"] = Field(
        default="auto",
        description="auto: onnxruntime, or on CUDA torch where onnxruntime's CUDA provider does not load",
    )
    det_thresh: float = Field(default=0.5, gt=0, lt=1, description="detections below this score are ignored")
    nms_thresh: float = Field(default=0.4, gt=0, lt=1)
    size: int = Field(
        default=640, ge=32, le=4096, description="detector input long side; frames keep their aspect"
    )
    batch: int = Field(default=16, ge=1, le=1024, description="sampled frames per detector call")
    pad: float = Field(default=0.1, ge=0, le=1, description="black border before detection, x longer side")

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        from models.detectors import list_detectors

        if value not in list_detectors():
            raise ValueError(f"unknown detector {value!r}; registered: {', '.join(list_detectors())}")
        return value

    def kwargs(self) -> dict[str, Any]:
        """Arguments for ``create_detector(self.name, **kwargs)``."""
        out: dict[str, Any] = {
            "device": self.device,
            "backend": self.backend,
            "size": self.size,
            "batch": self.batch,
            "det_thresh": self.det_thresh,
            "nms_thresh": self.nms_thresh,
            "pad": self.pad,
        }
        if self.model_path is not None:
            out["model_path"] = self.model_path
        return {**out, **self.options}


class CropSettings(Section):
    """Face crops and scene frames of kept clips (paper 4.1: 224 x 224 faces, 336 x 504 scenes)."""

    face_size: int = Field(default=224, ge=16, description="side of the square face crops, pixels")
    margin: float = Field(
        default=0.3, ge=0, le=3, description="added around the face box: crop side = (1 + margin) x box side"
    )
    scene_height: int = Field(default=336, ge=16)
    scene_width: int = Field(default=504, ge=16)
    scene_fit: Literal["letterbox", "crop"] = Field(
        default="letterbox",
        description="letterbox keeps the whole frame (black bars); crop fills the size, cutting the sides",
    )
    jpeg_quality: int = Field(default=95, ge=1, le=100)


class FaceFilterConfig(Section):
    """Stage 3: detect faces on each clip's sampled frames, apply the rule list, keep the best
    ``budget_factor x target`` clips per scene by face quality (the target is ``subsample.targets``), and write their crops."""

    detector: DetectorSettings = Field(default_factory=DetectorSettings)
    rules: list[RuleSpec] = Field(default_factory=default_rules)
    budget_factor: float = Field(default=20.0, gt=0, description="paper 3.2: twenty-fold the final scale")
    crops: CropSettings = Field(default_factory=CropSettings)

    @field_validator("rules")
    @classmethod
    def _unique(cls, value: list[RuleSpec]) -> list[RuleSpec]:
        names = [r.name for r in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rules listed more than once: {dupes}; known rules: {', '.join(RULES)}")
        return value

    def budget_for(self, target: int) -> int:
        """How many clips the filter keeps for a scene whose final target is ``target`` clips:
        ``ceil(budget_factor x target)``. The target itself is ``subsample.target_for(scene)``."""
        if target < 1:
            raise ValueError(f"target must be >= 1 clip, got {target}")
        return math.ceil(self.budget_factor * target)
