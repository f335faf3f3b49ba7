"""Evaluating a trained model on a setup's test side: WAR and UAR overall, per scenario and per scene.

The predictions of one pass over the test clips are scored on every group they contain (paper, Table 2:
``overall``, ``scenario=<code>``, ``scene=<name>``); each group is one ``results`` row with its confusion
matrix (Figure 5(b)) and per-class recalls. A class absent from a group is left out of its UAR
(:mod:`tasks.benchmark.metrics`).

    >>> preds = predict(model, test_clips, cfg)                                  # doctest: +SKIP
    >>> rows = group_scores(preds)
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from tasks.benchmark.loader import JobLoader
from tasks.benchmark.metrics import Scores, scores
from tasks.benchmark.train import NUM_CLASSES, forward, model_streams

if TYPE_CHECKING:
    from tasks.benchmark.config import BenchmarkConfig
    from tasks.benchmark.pack import PackedStore

OVERALL = "overall"


@torch.inference_mode()
def predict(
    model: torch.nn.Module,
    clips: pd.DataFrame,
    cfg: BenchmarkConfig,
    *,
    n_frames: int | None = None,
    device: str | None = None,
    progress: bool = False,
    loader: JobLoader | None = None,
    store: PackedStore | None = None,
) -> pd.DataFrame:
    """``clips`` with ``pred`` (class index) and ``probs`` (7 softmax probabilities), without augmentation
    and with centred frame sampling. Batches come from ``loader`` (a job's long-lived workers) or else from
    a loader of ``clips`` made here, reading packed frames from ``store`` when given."""
    from tqdm import tqdm

    device = device or cfg.resolved_device()
    model = model.to(device).eval()
    clips = clips.reset_index(drop=True)
    own = JobLoader(clips, cfg, n_frames=n_frames, store=store) if loader is None else nullcontext(loader)
    use_amp = cfg.amp and device == "cuda"  # float16 on every GPU: finer than bfloat16 for the scores
    probs = np.zeros((len(clips), NUM_CLASSES), np.float32)
    with own as loader:
        if n_frames is not None and loader.n_frames != n_frames:
            raise ValueError(f"the loader samples {loader.n_frames} frames, the model takes {n_frames}")
        row_of = {p: k for k, p in enumerate(loader.positions(clips))}
        batches = loader.eval_batches(clips, scene="scene" in model_streams(model))
        for batch in tqdm(batches, total=len(loader), desc="evaluate", unit="batch", disable=not progress):
            with torch.autocast(device_type=device, dtype=torch.float16, enabled=use_amp):
                logits = forward(model, batch, device, cfg)
            rows = [row_of[p] for p in batch["index"].tolist()]
            probs[rows] = torch.softmax(logits.float(), dim=1).cpu().numpy()
    out = clips.copy()
    out["pred"] = probs.argmax(axis=1)
    out["probs"] = list(probs)
    return out


def groups_of(preds: pd.DataFrame) -> dict[str, pd.Series]:
    """Masks of the test groups present: overall, each scenario, each scene."""
    groups = {OVERALL: pd.Series(True, index=preds.index)}
    for scenario in sorted(set(preds["scenario"])):
        groups[f"scenario={scenario}"] = preds["scenario"] == scenario
    for scene in sorted(set(preds["scene"])):
        groups[f"scene={scene}"] = preds["scene"] == scene
    return groups


def group_scores(preds: pd.DataFrame) -> dict[str, Scores]:
    """WAR/UAR per group of ``preds`` (columns ``label_index``, ``pred``, ``scene``, ``scenario``)."""
    return {
        name: scores(preds.loc[mask, "label_index"], preds.loc[mask, "pred"], NUM_CLASSES)
        for name, mask in groups_of(preds).items()
    }


def score_rows(results: dict[str, Scores]) -> list[dict]:
    """``results`` manifest columns for each group's scores (status ``ok``)."""
    return [
        {
            "group": name,
            "status": "ok",
            "war": s.war,
            "uar": s.uar,
            "n_clips": s.n_clips,
            "recall": s.recall.tolist(),
            "confusion": s.confusion.reshape(-1).tolist(),
        }
        for name, s in results.items()
    ]
