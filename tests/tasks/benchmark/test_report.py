"""Tables 2 and 3, the confusion matrices and the Figure 6 ablations from results rows."""

import numpy as np
import pandas as pd
import pytest

from data_catalog.io import to_table
from data_catalog.schemas import get_manifest
from tasks.benchmark.config import BenchmarkConfig
from tasks.benchmark.report import ablation_figure, table2, table3, write_reports


def _row(model, group, war, uar, train="All", test="All", variant="f8", n_frames=8, **kw):
    cm = np.diag([3, 1, 0, 4, 2, 0, 1]).reshape(-1).tolist()
    return {"model": model, "variant": variant, "train_setup": train, "test_setup": test, "group": group,
            "status": "ok", "war": war, "uar": uar, "n_clips": 11, "confusion": cm, "n_frames": n_frames,
            "streams": "face+scene" if model.startswith("ts-") else "face", "n_params": 11_190_855, **kw}  # fmt: skip


@pytest.fixture
def results() -> pd.DataFrame:
    rows = []
    for model, base in (("r18", 0.40), ("ts-r18-lstm", 0.45), ("r18-lstm", 0.42)):
        for group, delta in (
            ("overall", 0),
            ("scenario=DL", 0.01),
            ("scene=Social", -0.02),
            ("scene=Terror", -0.05),
        ):
            rows.append(_row(model, group, base + delta, base - 0.1 + delta))
    for source, target, war in (
        ("DL", "DL", 0.37),
        ("DL", "WIS", 0.30),
        ("WIS", "WIS", 0.40),
        ("WIS", "DL", 0.27),
    ):
        rows.append(_row("r50-lstm", "overall", war, war - 0.1, train=source, test=target))
    for n in (2, 4, 16):
        rows.append(_row("r18-lstm", "overall", 0.3 + n / 100, 0.2, variant=f"f{n}", n_frames=n))
    rows.append(_row("r18", "overall", 0.38, 0.28, variant="f8-init", init_checkpoint="pre.pt"))
    rows.append({**_row("vgg13", "overall", None, None), "status": "failed", "reason": "out_of_memory"})
    table = to_table(get_manifest("results"), [{**r, "run_id": "bm-x", "config_hash": "h", "stage": "benchmark",
                     "tool_versions": "{}", "created_at": pd.Timestamp.now(tz="UTC")} for r in rows])  # fmt: skip
    return table.to_pandas()


def test_table2_has_the_paper_layout_and_order(results):
    t = table2(results, "f8", ["Social", "DailyLife", "Terror"])
    assert list(t.index) == ["R18", "VGG13", "R18-LSTM", "Two-stream R18-LSTM", "Average"]
    assert list(t.columns) == ["All", "DL", "Social", "Terror", "Params (M)", "README (M)"]
    assert t.loc["R18", "All"] == "40.00/30.00" and t.loc["R18", "Terror"] == "35.00/25.00"
    assert t.loc["VGG13", "All"] == "-"  # failed: shown, not scored
    assert t.loc["Average", "All"] == "42.33/32.33"
    assert t.loc["R18", "Params (M)"] == "11.2" and t.loc["R18", "README (M)"] == "17"


def test_table2_per_setup_cells_come_from_trainings_on_each_setup(results):
    t = table2(results, "f8", [], mode="setups")
    assert t.loc["R50-LSTM", "DL"] == "37.00/27.00" and t.loc["R18", "DL"] == "-"
    with pytest.raises(ValueError, match="unknown Table 2 mode"):
        table2(results, "f8", [], mode="nope")


def test_table3_is_source_by_target(results):
    t = table3(results, "r50-lstm", "f8")
    assert list(t.index) == ["DL", "WIS"] and list(t.columns) == ["DL", "WIS"]
    assert t.loc["DL", "WIS"] == "30.00/20.00" and t.loc["WIS", "DL"] == "27.00/17.00"


@pytest.mark.slow
def test_reports_write_tables_confusions_and_ablations(results, tmp_path):
    report = write_reports(results, tmp_path, BenchmarkConfig(table_scenes=["Social", "Terror"]))
    names = {p.relative_to(tmp_path).as_posix() for p in report.files}
    assert {"table2.csv", "table2.md", "table3.csv", "table3.md", "ablations.png", "benchmark.md"} <= names
    assert "confusion/confusion_r18_f8_All_All.png" in names
    assert "| R18 | 40.00/30.00 |" in report.markdown and "out_of_memory" in report.markdown
    assert all((tmp_path / n).stat().st_size > 500 for n in names if n.endswith(".png"))


def test_ablation_panels_say_when_they_have_no_runs(results, tmp_path):
    only = results[results["model"] == "r50-lstm"]
    assert ablation_figure(only, tmp_path / "empty.png").stat().st_size > 1000
