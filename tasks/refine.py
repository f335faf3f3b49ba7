"""Stage 4a, refine: score every kept candidate clip with a FER model (paper, section 3.2).

"We utilize a pre-trained light-weight ResNet-50 FER detector to refine these clips and generate candidate
clips with expression predictions." For each clip kept by the face filter, a uniform sample of its face
crops goes through the configured refiner (``models.fer``); the per-frame probabilities are averaged into
one 7-class distribution, written to ``fer_scores`` with its label, confidence and entropy. A clip whose
crops cannot be read is a ``failed`` row with a reason, not an exception.

    >>> ref = refine_scene("Terror", RefineConfig(), ctx, Catalog("work/catalog"))   # doctest: +SKIP
    >>> ref.rows
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from data_catalog.section import Section
from models.fer.registry import list_refiners

if TYPE_CHECKING:
    from data_catalog.io import Catalog, PartRef
    from data_catalog.lineage import RunContext

STAGE = "refine"


class RefineConfig(Section):
    """The FER refiner and how it samples each clip."""

    model: str = "mini-xception"  # a registered refiner (models.fer.list_refiners())
    weights: str | None = None  # path or http(s) URL; None = the model's default (mini-xception's asset)
    weights_sha256: str | None = None  # required for a URL, checked for a path when given
    model_options: dict[str, Any] = Field(default_factory=dict)  # e.g. the 'onnx' model's input spec
    backend: Literal["torch", "onnxruntime"] = "torch"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(64, ge=1)
    frames_per_clip: int = Field(16, ge=1)  # sampled uniformly over the clip's face crops
    aggregation: Literal["mean", "log_mean"] = "mean"  # arithmetic or geometric mean over frames

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        import models.fer  # noqa: F401  (registers the families; light, heavy imports are deferred)

        if value not in list_refiners():
            raise ValueError(f"unknown FER refiner {value!r}; registered: {', '.join(list_refiners())}")
        return value

    def create(self, cache_dir: str | os.PathLike | None = None):
        """The configured :class:`models.fer.Refiner`; ``cache_dir`` (``storage.cache_dir``) holds fetched
        weights and assets."""
        from models.fer import create_refiner

        kwargs = dict(self.model_options, cache_dir=cache_dir)
        if self.weights is not None:
            kwargs.update(weights=self.weights, sha256=self.weights_sha256)
        return create_refiner(
            self.model, backend=self.backend, device=self.device, batch_size=self.batch_size, **kwargs
        )


def sample_indices(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` frame indices spread uniformly over ``n`` frames (the centre of each of k segments)."""
    if n <= k:
        return np.arange(n)
    return ((np.arange(k) + 0.5) * n / k).astype(int)


def aggregate(probs: np.ndarray, how: str = "mean") -> np.ndarray:
    """One distribution from per-frame ones: their mean, or their normalised geometric mean."""
    if how == "mean":
        out = probs.mean(axis=0)
    elif how == "log_mean":
        out = np.exp(np.log(np.clip(probs, 1e-12, 1.0)).mean(axis=0))
    else:
        raise ValueError(f"aggregation must be 'mean' or 'log_mean', got {how!r}")
    return (out / out.sum()).astype(np.float32)


def entropy(p: np.ndarray) -> float:
    """Shannon entropy in nats (0 = certain, log 7 = uniform)."""
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def load_clip_crops(face_dir: str | os.PathLike | None, k: int) -> tuple[list[np.ndarray], str | None]:
    """A uniform sample of ``k`` RGB crops from a folder of JPEGs, or ``([], reason)``."""
    import cv2

    if not face_dir:
        return [], "no_face_dir"
    folder = Path(face_dir)
    if not folder.is_dir():
        return [], "face_dir_missing"
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if not files:
        return [], "no_face_crops"
    crops = []
    for i in sample_indices(len(files), k):
        bgr = cv2.imdecode(np.fromfile(files[i], np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            return [], "unreadable_crop"
        crops.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return crops, None


def _existing(catalog: Catalog, scene: str, run_id: str, part: str) -> PartRef:
    import pyarrow.parquet as pq

    from data_catalog.io import PartRef

    path = catalog.part_path("fer_scores", scene, run_id, part)
    return PartRef("fer_scores", scene, run_id, part, str(path), pq.ParquetFile(path).metadata.num_rows)


def refine_scene(
    scene: str,
    cfg: RefineConfig,
    ctx: RunContext,
    catalog: Catalog,
    *,
    part: str = "0000",
    refiner=None,
    input_run_id: str | None = None,
) -> PartRef:
    """Score the scene's kept candidates and write one ``fer_scores`` part; a finished part is skipped.

    Candidates are read from run ``input_run_id`` (the build-candidates flow passes its own run), or the
    latest row per clip over all runs when None.

    ``refiner`` lets a caller reuse a loaded model across scenes (default: ``cfg.create()``).
    """
    from tqdm.auto import tqdm

    if catalog.has_part("fer_scores", scene, ctx.run_id, part):
        return _existing(catalog, scene, ctx.run_id, part)
    table = catalog.read_table("candidates", scene=scene, run_id=input_run_id, latest=True)
    clips = [r for r in table.select(["clip_id", "keep", "face_dir"]).to_pylist() if r["keep"]]
    rows: list[dict] = []
    if clips:
        refiner = refiner or cfg.create()
        lineage = ctx.lineage(STAGE, model_version=refiner.version)
        common = {"scene": scene, "model_name": refiner.name, "device": refiner.device, **lineage}
        pending: list[tuple[str, list[np.ndarray]]] = []

        def flush() -> None:
            crops = [c for _, clip_crops in pending for c in clip_crops]
            probs = refiner.predict(crops, cfg.batch_size)
            start = 0
            for clip_id, clip_crops in pending:
                p = aggregate(probs[start : start + len(clip_crops)], cfg.aggregation)
                start += len(clip_crops)
                best = int(p.argmax())
                rows.append(
                    {
                        "clip_id": clip_id,
                        "status": "ok",
                        "reason": None,
                        "probs": p.tolist(),
                        "label": refiner.labels[best],
                        "confidence": float(p[best]),
                        "entropy": entropy(p),
                        "n_frames": len(clip_crops),
                        **common,
                    }
                )
            pending.clear()

        for clip in tqdm(clips, desc=f"refine {scene}", unit="clip"):
            crops, reason = load_clip_crops(catalog.resolve_path(clip["face_dir"]), cfg.frames_per_clip)
            if reason:
                failed = dict.fromkeys(("probs", "label", "confidence", "entropy"))
                rows.append(
                    {
                        "clip_id": clip["clip_id"],
                        "status": "failed",
                        "reason": reason,
                        **failed,
                        "n_frames": 0,
                        **common,
                    }
                )
                continue
            pending.append((clip["clip_id"], crops))
            # Batch frames across clips so small clips still fill the model's batch.
            if sum(len(c) for _, c in pending) >= cfg.batch_size:
                flush()
        if pending:
            flush()
    return catalog.write("fer_scores", rows, scene=scene, run_id=ctx.run_id, part=part)
