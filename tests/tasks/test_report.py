import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from PIL import Image
from typer.testing import CliRunner

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from data_catalog.schemas import get_manifest
from flows.cli import app
from tasks.report import figure4_stats, render_report
from tasks.subsample import SubsampleConfig, subsample_scene

COUNTS = {  # scene -> expression -> clips
    "Terror": {"Fear": 12, "Angry": 6, "Neutral": 8},
    "Liveshow": {"Happy": 15, "Neutral": 5, "Surprise": 4},
    "Argue": {"Angry": 10, "Sad": 3, "Disgust": 2},
}


def _write(catalog: Catalog, manifest: str, rows: list[dict], scene: str) -> None:
    table = pa.Table.from_pylist(rows, schema=get_manifest(manifest).schema)
    catalog.write(manifest, table, scene=scene, run_id="run-report")


def _clip(clip_id: str, scene: str, seconds: float, ctx: RunContext) -> dict:
    frames = round(seconds * 25)
    return {
        "clip_id": clip_id, "video_id": clip_id.split("_")[0], "scene": scene, "start_time": 0.0,
        "end_time": frames / 25, "start_frame": 0, "end_frame": frames, "n_frames": frames, "fps": 25.0,
        "duration": frames / 25, **ctx.lineage("segment"),
    }  # fmt: skip


@pytest.fixture
def catalog(tmp_path):
    """Scored clips in three scenes, subsampled to 2 x 6 per scene, with random 0.5-4 s durations."""
    cat = Catalog(tmp_path / "catalog")
    ctx = RunContext.create({}, run_id="run-report")
    rng = np.random.default_rng(0)
    for scene, counts in COUNTS.items():
        clips, scores = [], []
        for label, n in counts.items():
            for i in range(n):
                clip_id = f"{scene.lower()}{label.lower()}{i}_0-10"
                clips.append(_clip(clip_id, scene, float(rng.uniform(0.5, 4.0)), ctx))
                scores.append(
                    {"clip_id": clip_id, "scene": scene, "status": "ok", "probs": [1 / 7] * 7, "label": label,
                     "confidence": 0.4, "entropy": 1.2, "n_frames": 16, "model_name": "m", "device": "cpu",
                     **ctx.lineage("refine")}
                )  # fmt: skip
        _write(cat, "clips", clips, scene)
        _write(cat, "fer_scores", scores, scene)
        subsample_scene(scene, SubsampleConfig(targets={scene: 6}), ctx, cat)
    return cat


def _is_a_real_chart(path) -> bool:
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(np.int32)
    colours = len(np.unique((pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]))
    return path.stat().st_size > 10_000 and pixels.shape[0] > 200 and pixels.shape[1] > 400 and colours > 20


@pytest.mark.slow
def test_report_draws_figure4_from_the_selected_clips(catalog, tmp_path):
    result = render_report(catalog, tmp_path / "reports", SubsampleConfig(targets={s: 6 for s in COUNTS}))
    assert result.label_source == "selections" and result.n_clips == 36
    names = {p.name for p in result.files}
    assert {
        "figure4_expressions.png",
        "figure4_durations.png",
        "figure4.md",
        "figure4_expressions.csv",
    } <= names
    assert {"subsample.csv", "subsample_target_vs_achieved.png", "subsample_divergence.png"} <= names
    for png in (p for p in result.files if p.suffix == ".png"):
        assert _is_a_real_chart(png), png.name

    table = pd.read_csv(tmp_path / "reports" / "figure4_expressions.csv").set_index("scene")
    assert table.index.tolist() == ["Argue", "Liveshow", "Terror"]  # taxonomy order: DL, SIA, AI
    sel = catalog.read("selections")
    chosen = sel[sel["selected"]]
    assert table.loc["Terror", "Fear"] == ((chosen["scene"] == "Terror") & (chosen["label"] == "Fear")).sum()
    assert table["total"].tolist() == [12, 12, 12]

    durations = pd.read_csv(tmp_path / "reports" / "figure4_durations.csv").set_index("scene")
    clips = catalog.read("clips").set_index("clip_id").loc[chosen["clip_id"]]
    assert durations.loc["Liveshow", "median"] == pytest.approx(
        clips[clips["scene"] == "Liveshow"]["duration"].median(), abs=1e-3
    )
    bins = [c for c in durations.columns if c.endswith("s")]
    assert durations[bins].sum(axis=1).tolist() == [12, 12, 12]
    assert "| Terror | AI |" in (tmp_path / "reports" / "figure4.md").read_text()

    summary = pd.read_csv(tmp_path / "reports" / "subsample.csv")
    assert summary.groupby("scene")["achieved"].sum().tolist() == [12, 12, 12]


def test_labels_manifest_wins_over_predictions(catalog):
    ctx = RunContext.create({}, run_id="run-report")
    rows = [
        {"clip_id": "terrorfear0_0-10", "scene": "Terror", "scenario": "AI", "label": "Sad", "label_index": 5,
         "source": "wwta", **ctx.lineage("annotate")}
    ]  # fmt: skip
    _write(catalog, "labels", rows, "Terror")
    stats = figure4_stats(catalog)
    assert stats.label_source == "labels" and stats.expressions.loc["Terror", "Sad"] == 1
    assert stats.expressions.to_numpy().sum() == 1 and len(stats.durations) == 1


def test_empty_catalog_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="nothing to report"):
        render_report(Catalog(tmp_path), tmp_path / "reports")


@pytest.mark.slow
def test_ferv_report_writes_into_the_storage_reports_folder(catalog, tmp_path):
    root = catalog.root.parent
    result = CliRunner().invoke(
        app, ["--set", f"storage.root={root}", "--set", "subsample.factor=1", "report"]
    )
    assert result.exit_code == 0, result.output
    assert "36 clips (labels: selections)" in result.output
    assert (root / "reports" / "figure4_expressions.png").is_file()
    assert (root / "reports" / "subsample_divergence.png").is_file()
