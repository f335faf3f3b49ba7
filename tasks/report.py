"""Dataset statistics as the paper's Figure 4 draws them (paper, section 3.3), for any catalog.

Left: clips per scene split by expression (stacked bars, scenes grouped by scenario). Right: clip
duration per scene (box plots). Labels come from :func:`~data_catalog.formats.labels.current_labels`
(annotated or imported labels; before annotation, the selected clips' predicted labels); durations from
the ``clips`` manifest. When ``selections`` exist, the subsampling report (target vs achieved) is written
too. Everything lands in ``<storage.root>/reports/``.

    >>> result = render_report(Catalog(root / "catalog"), root / "reports", cfg.subsample)   # doctest: +SKIP
    >>> [p.name for p in result.files]
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from keywords.taxonomy import load_taxonomy

if TYPE_CHECKING:  # pandas and the catalog load inside the functions: `ferv --help` imports this module
    import pandas as pd

    from data_catalog.formats.labels import LabelSet
    from data_catalog.io import Catalog
    from tasks.subsample import SubsampleConfig

#: Duration bins of the paper's Figure 4 (right), in seconds.
DURATION_BINS = (0.0, 1.0, 2.0, 3.0, 4.0, math.inf)


@dataclass(frozen=True)
class Figure4Stats:
    """Clips per scene and expression (index: scenes in taxonomy order), durations per labelled clip."""

    expressions: pd.DataFrame
    durations: pd.DataFrame
    label_source: str


@dataclass(frozen=True)
class ReportResult:
    label_source: str
    n_clips: int
    files: list[Path]


def figure4_stats(catalog: Catalog, labels: LabelSet | None = None) -> Figure4Stats:
    """Count labelled clips per scene and expression, and join each labelled clip's duration; ``labels``
    default to :func:`~data_catalog.formats.labels.current_labels` (a release card passes its own clips)."""
    import pandas as pd

    from data_catalog.formats.labels import current_labels

    tax = load_taxonomy()
    labels = labels if labels is not None else current_labels(catalog)
    frame = labels.frame
    scenes = [s for s in tax.scene_names if s in set(frame["scene"])]
    scenes += sorted(set(frame["scene"]) - set(scenes))
    counts = (
        pd.crosstab(frame["scene"], frame["label"]).reindex(index=scenes, columns=tax.expressions).fillna(0)
        if len(frame)
        else pd.DataFrame(columns=list(tax.expressions), dtype=int)
    ).astype(int)
    clips = catalog.read("clips", latest=True)[["clip_id", "duration"]]
    durations = frame[["clip_id", "scene", "label"]].merge(clips, on="clip_id", how="inner")
    return Figure4Stats(counts, durations, labels.source)


def _scenario_of(scene: str) -> str:
    tax = load_taxonomy()
    return tax.scene(scene).scenario if scene in tax.scene_names else "?"


def expression_table(stats: Figure4Stats) -> pd.DataFrame:
    """Per scene: scenario, counts per expression, total and the share of each expression."""
    import numpy as np

    counts = stats.expressions
    table = counts.copy()
    table.insert(0, "scenario", [_scenario_of(s) for s in counts.index])
    table["total"] = counts.sum(axis=1)
    for e in counts.columns:
        table[f"{e}_share"] = (counts[e] / table["total"].replace(0, np.nan)).round(4)
    return table.rename_axis("scene").reset_index()


def duration_table(stats: Figure4Stats) -> pd.DataFrame:
    """Per scene: clip count, mean / quartiles / extremes of duration, and counts per duration bin."""
    import pandas as pd

    d = stats.durations
    labels = [
        f"{lo:g}-{hi:g}s" if math.isfinite(hi) else f">={lo:g}s"
        for lo, hi in itertools.pairwise(DURATION_BINS)
    ]
    rows = []
    for scene in stats.expressions.index:
        sec = d.loc[d["scene"] == scene, "duration"]
        binned = pd.cut(sec, DURATION_BINS, right=False, labels=labels).value_counts()
        rows.append(
            {
                "scene": scene,
                "scenario": _scenario_of(scene),
                "n": len(sec),
                "mean": round(float(sec.mean()), 3) if len(sec) else math.nan,
                "q1": round(float(sec.quantile(0.25)), 3) if len(sec) else math.nan,
                "median": round(float(sec.median()), 3) if len(sec) else math.nan,
                "q3": round(float(sec.quantile(0.75)), 3) if len(sec) else math.nan,
                "min": round(float(sec.min()), 3) if len(sec) else math.nan,
                "max": round(float(sec.max()), 3) if len(sec) else math.nan,
                **{b: int(binned.get(b, 0)) for b in labels},
            }
        )
    return pd.DataFrame(rows)


def _plot_expressions(stats: Figure4Stats, path: Path) -> None:
    import numpy as np

    from tasks.reporting import pyplot, save_figure

    plt = pyplot()

    counts = stats.expressions
    fig, ax = plt.subplots(figsize=(max(8, 0.5 * len(counts) + 3), 5))
    bottom = np.zeros(len(counts))
    pos = np.arange(len(counts))
    colors = plt.get_cmap("tab10").colors
    for i, expression in enumerate(counts.columns):
        ax.bar(pos, counts[expression], bottom=bottom, label=expression, color=colors[i % len(colors)])
        bottom += counts[expression].to_numpy()
    ax.set_xticks(pos, [f"{s} ({_scenario_of(s)})" for s in counts.index], rotation=70, fontsize=8)
    ax.set_ylabel("clips")
    ax.set_title(
        f"Expressions per scene ({len(stats.durations) or int(bottom.sum())} clips; labels: {stats.label_source})"
    )
    ax.legend(fontsize=8, ncols=2)
    fig.tight_layout()
    save_figure(fig, path)


def _plot_durations(stats: Figure4Stats, path: Path) -> None:
    from tasks.reporting import pyplot, save_figure

    plt = pyplot()

    scenes = list(stats.expressions.index)
    data = [stats.durations.loc[stats.durations["scene"] == s, "duration"].to_numpy() for s in scenes]
    fig, ax = plt.subplots(figsize=(max(8, 0.5 * len(scenes) + 3), 5))
    shown = [(i, d) for i, d in enumerate(data) if len(d)]
    if shown:
        ax.boxplot([d for _, d in shown], positions=[i for i, _ in shown], widths=0.6)
    ax.set_xticks(range(len(scenes)), [f"{s} ({_scenario_of(s)})" for s in scenes], rotation=70, fontsize=8)
    ax.set_xlim(-0.7, len(scenes) - 0.3)
    ax.set_ylabel("clip duration (s)")
    ax.set_title("Clip duration per scene")
    fig.tight_layout()
    save_figure(fig, path)


def render_report(
    catalog: Catalog, out_dir: str | Path, subsample_cfg: SubsampleConfig | None = None
) -> ReportResult:
    """Write Figure 4's charts (``figure4_expressions.png``, ``figure4_durations.png``), their tables
    (``figure4_expressions.csv``, ``figure4_durations.csv``, ``figure4.md``) and, when ``selections`` exist,
    the subsampling report (see :func:`tasks.subsample.write_subsample_report`)."""
    from tasks.reporting import markdown_table
    from tasks.subsample import SubsampleConfig, subsample_summary, write_subsample_report

    stats = figure4_stats(catalog)
    if stats.expressions.empty:
        raise ValueError(
            f"{catalog.root}: nothing to report: no 'labels' rows and no selected clips in 'selections'"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    expr, dur = expression_table(stats), duration_table(stats)
    files = [out / "figure4_expressions.csv", out / "figure4_durations.csv", out / "figure4.md"]
    expr.to_csv(files[0], index=False)
    dur.to_csv(files[1], index=False)
    counts_only = expr[["scene", "scenario", *stats.expressions.columns, "total"]]
    files[2].write_text(
        f"# Dataset statistics (paper, Figure 4)\n\nLabels: `{stats.label_source}`; "
        f"{int(expr['total'].sum())} clips, {len(stats.durations)} with a duration.\n\n"
        "## Expressions per scene\n\n" + markdown_table(counts_only) + "\n## Clip duration per scene (s)\n\n"
        + markdown_table(dur),
        encoding="utf-8",
    )  # fmt: skip
    pngs = [out / "figure4_expressions.png", out / "figure4_durations.png"]
    _plot_expressions(stats, pngs[0])
    _plot_durations(stats, pngs[1])
    files += pngs
    summary = subsample_summary(catalog, subsample_cfg or SubsampleConfig())
    if len(summary):
        files += write_subsample_report(summary, out)
    return ReportResult(stats.label_source, int(expr["total"].sum()), files)
