"""Helpers the stages' reports share: markdown tables, atomic writes of report text, headless figures.

The subsampling report, the dataset report, the release card, the benchmark tables and the build summary
all render pandas frames as GitHub-flavoured markdown, write text files next to their CSVs and draw PNG
charts without a display; they do it here, one way.

    >>> print(markdown_table(pd.DataFrame({"scene": ["Action"], "kl": [0.01234]})), end="")
    | scene | kl |
    |---|---|
    | Action | 0.012 |
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from data_catalog.io import atomic_write_bytes


def markdown_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured markdown table of ``df`` (no index); floats formatted with ``floatfmt``."""

    def cell(v: object) -> str:
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_report_text(path: str | os.PathLike, text: str) -> Path:
    """Write a report file (UTF-8) atomically: a temporary sibling renamed over ``path``; returns the path."""
    path = Path(path)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def pyplot():
    """``matplotlib.pyplot`` on the headless Agg backend (reports are drawn on machines without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 100, **savefig_kwargs) -> Path:
    """Render ``fig`` as PNG to ``path`` atomically (a temporary sibling renamed over it), close it and
    return the path; ``savefig_kwargs`` go to :meth:`matplotlib.figure.Figure.savefig` (``bbox_inches``)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, **savefig_kwargs)
    finally:
        pyplot().close(fig)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path
