"""The shared report helpers: markdown tables, atomic report text, headless figures."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from tasks.reporting import markdown_table, pyplot, save_figure, write_report_text


def test_markdown_table_formats_floats_and_keeps_other_cells():
    df = pd.DataFrame({"scene": ["Action", "Crowd"], "n": [3, 12], "kl": [0.01234, 1.0]}, index=[7, 9])
    assert markdown_table(df) == (
        "| scene | n | kl |\n|---|---|---|\n| Action | 3 | 0.012 |\n| Crowd | 12 | 1.000 |\n"
    )
    assert markdown_table(df[["kl"]], floatfmt=".1f").splitlines()[2] == "| 0.0 |"


def test_markdown_table_of_an_empty_frame_is_its_header():
    assert markdown_table(pd.DataFrame(columns=["a", "b"])) == "| a | b |\n|---|---|\n"


def test_report_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "reports" / "table.md"
    assert write_report_text(path, "first\n") == path
    write_report_text(str(path), "second ü\n")
    assert path.read_text(encoding="utf-8") == "second ü\n"
    assert os.listdir(path.parent) == ["table.md"]


def test_report_text_into_a_file_where_a_folder_should_be_fails_and_names_it(tmp_path):
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(OSError, match="blocker"):
        write_report_text(tmp_path / "blocker" / "table.md", "text")


def _figure():
    fig, ax = pyplot().subplots(figsize=(3, 2))
    ax.bar([0, 1, 2], [3, 1, 2])
    ax.set_title("clips")
    return fig


def test_save_figure_writes_the_png_savefig_writes_closes_the_figure_and_leaves_no_temporary(tmp_path):
    plt = pyplot()
    fig = _figure()
    fig.savefig(tmp_path / "direct.png", dpi=100)
    before = set(plt.get_fignums())
    path = save_figure(fig, tmp_path / "out" / "chart.png")
    assert path == tmp_path / "out" / "chart.png"
    assert path.read_bytes() == (tmp_path / "direct.png").read_bytes()
    assert set(plt.get_fignums()) == before - {fig.number}
    assert os.listdir(path.parent) == ["chart.png"]


def test_save_figure_passes_savefig_options_and_closes_the_figure_when_it_fails(tmp_path):
    from PIL import Image

    plt = pyplot()
    path = save_figure(_figure(), tmp_path / "tight.png", dpi=50, bbox_inches="tight")
    assert Image.open(path).size[0] < 3 * 50  # tight box at 50 dpi: narrower than the 3 in canvas
    fig = _figure()
    with pytest.raises(TypeError):
        save_figure(fig, tmp_path / "bad.png", no_such_option=1)
    assert fig.number not in plt.get_fignums()
    assert not (tmp_path / "bad.png").exists()
