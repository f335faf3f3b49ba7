"""The shared report helpers: markdown tables and atomic report text."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from tasks.reporting import markdown_table, write_report_text


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
