"""The benchmark's tables and figures from ``results`` rows (paper, section 4.3 and 4.4).

- Table 2: one row per model (the paper's names and order), WAR/UAR in percent for All, the 4 scenarios
  and the chosen scenes, with the model's parameter count next to the model-zoo README's. ``breakdown``
  cells are the All-trained model scored on each group of the All test side; ``setups`` cells are models
  trained and tested on each setup (the 27-setup protocol).
- Table 3: the cross-scenario matrix, source scenario (train side) x target scenario (test side).
- Figure 5(b): confusion matrices as PNG; Figure 6: the pre-training, frames (2..16) and one- vs
  two-stream ablations, plotted from whatever variants the results hold.

    >>> paths = write_reports(catalog.read("results", latest=True), "work/reports/benchmark", cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from keywords.taxonomy import load_taxonomy
from tasks.reporting import markdown_table, pyplot, save_figure, write_report_text

if TYPE_CHECKING:
    from tasks.benchmark.config import BenchmarkConfig

ALL = "All"
OVERALL = "overall"
TABLE_MODES = ("breakdown", "setups")


def variant_name(n_frames: int, init_checkpoint: str | None = None) -> str:
    """The ``results.variant`` of a run: ``f<frames>``, with ``-init`` when it started from a checkpoint."""
    return f"f{n_frames}" + ("-init" if init_checkpoint else "")


def _paper_names() -> dict[str, str]:
    from models.zoo import TABLE2

    return {e.name: e.paper_name for e in TABLE2}


def _model_order(models: list[str]) -> list[str]:
    from models.zoo import TABLE2

    order = [e.name for e in TABLE2]
    return sorted(models, key=lambda m: (order.index(m) if m in order else len(order), m))


def _cell(row: pd.Series | None) -> str:
    if row is None or row["status"] != "ok":
        return "-"
    return f"{100 * row['war']:.2f}/{100 * row['uar']:.2f}"


def _ok(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["status"] == "ok"]


def table_columns(results: pd.DataFrame, scenes: list[str]) -> list[str]:
    """All, the scenarios, then ``scenes``: those with at least one result."""
    tax = load_taxonomy()
    groups = set(results["group"]) | {f"scene={s}" for s in results["test_setup"]}
    groups |= {f"scenario={s}" for s in results["test_setup"]}
    wanted = [ALL, *tax.scenarios, *scenes]
    return [c for c in wanted if c == ALL or f"scenario={c}" in groups or f"scene={c}" in groups]


def _group(column: str) -> str:
    tax = load_taxonomy()
    if column == ALL:
        return OVERALL
    return f"scenario={column}" if column in tax.scenarios else f"scene={column}"


def table2(results: pd.DataFrame, variant: str, scenes: list[str], mode: str = "breakdown") -> pd.DataFrame:
    """Table 2 as strings ``'WAR/UAR'`` (percent): index = the paper's model names, one column per setup,
    plus ``Average`` (the mean over the models with a value) and the parameter counts in millions."""
    from models.zoo import TABLE2

    if mode not in TABLE_MODES:
        raise ValueError(f"unknown Table 2 mode {mode!r}; use one of {', '.join(TABLE_MODES)}")
    rows = results[results["variant"] == variant]
    if mode == "breakdown":
        rows = rows[(rows["train_setup"] == ALL) & (rows["test_setup"] == ALL)]
    else:
        rows = rows[rows["train_setup"] == rows["test_setup"]]
    columns = table_columns(_ok(rows), scenes)
    readme = {e.name: e.readme_params for e in TABLE2}
    names = _paper_names()
    out, scores = {}, {c: [] for c in columns}
    for model in _model_order(sorted(set(rows["model"]))):
        mine = _ok(rows[rows["model"] == model])  # a model whose runs failed keeps its row, with '-'
        line = {}
        for col in columns:
            if mode == "breakdown":
                hit = mine[mine["group"] == _group(col)]
            else:
                hit = mine[(mine["train_setup"] == col) & (mine["group"] == OVERALL)]
            row = hit.iloc[0] if len(hit) else None
            line[col] = _cell(row)
            if row is not None:
                scores[col].append((row["war"], row["uar"]))
        params = rows.loc[rows["model"] == model, "n_params"].dropna()
        line["Params (M)"] = f"{params.iloc[0] / 1e6:.1f}" if len(params) else "-"
        line["README (M)"] = f"{readme[model]:.0f}" if readme.get(model) is not None else "-"
        out[names.get(model, model)] = line
    if out:
        avg = {c: (f"{100 * np.mean([w for w, _ in v]):.2f}/{100 * np.mean([u for _, u in v]):.2f}" if v else "-")
               for c, v in scores.items()}  # fmt: skip
        out["Average"] = {**avg, "Params (M)": "", "README (M)": ""}
    frame = pd.DataFrame.from_dict(out, orient="index", columns=[*columns, "Params (M)", "README (M)"])
    frame.index.name = "Method"
    return frame


def table3(results: pd.DataFrame, model: str, variant: str) -> pd.DataFrame:
    """Table 3 as strings ``'WAR/UAR'``: rows = source scenario (trained on), columns = target (tested on)."""
    rows = _ok(results[(results["model"] == model) & (results["variant"] == variant)])
    rows = rows[rows["group"] == OVERALL]
    codes = [c for c in load_taxonomy().scenarios if c in set(rows["train_setup"]) | set(rows["test_setup"])]
    frame = pd.DataFrame("-", index=pd.Index(codes, name="Source"), columns=codes)
    for r in rows.itertuples():
        if r.train_setup in codes and r.test_setup in codes:
            frame.loc[r.train_setup, r.test_setup] = f"{100 * r.war:.2f}/{100 * r.uar:.2f}"
    return frame


def _draw_confusion(ax, confusion: np.ndarray, title: str) -> None:
    labels = load_taxonomy().expressions
    cm = np.asarray(confusion, dtype=np.float64).reshape(len(labels), len(labels))
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xticks(range(len(labels)), labels, rotation=45, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted", fontsize=7)
    ax.set_ylabel("true", fontsize=7)
    ax.set_title(title, fontsize=8)


def confusion_figure(rows: pd.DataFrame, path: str | os.PathLike, title: str) -> Path:
    """Row-normalised confusion matrices (Figure 5(b)), one panel per ``results`` row (its ``group``)."""
    plt = pyplot()
    n = len(rows)
    if n == 0:
        raise ValueError(f"{path}: no results rows to draw")
    cols = min(n, 5)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(3.2 * cols, 3.2 * ((n + cols - 1) // cols)),
                             squeeze=False)  # fmt: skip
    for ax, r in zip(axes.flat, rows.itertuples(), strict=False):
        _draw_confusion(
            ax, np.asarray(r.confusion), f"{r.group}: WAR {100 * r.war:.1f} / UAR {100 * r.uar:.1f}"
        )
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path, dpi=110, bbox_inches="tight")


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def ablation_figure(results: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Figure 6 from the results on the All setup: WAR with and without pre-training (left), WAR over the
    number of frames (middle), one- vs two-stream per scene (right). A panel without runs says so."""
    plt = pyplot()
    rows = _ok(results)
    rows = rows[(rows["train_setup"] == ALL) & (rows["test_setup"] == ALL)]
    overall = rows[rows["group"] == OVERALL]
    names = _paper_names()
    fig, (left, mid, right) = plt.subplots(1, 3, figsize=(15, 4))

    init = overall.assign(init=overall["variant"].str.endswith("-init"))
    pairs = [
        m for m in _model_order(sorted(set(init["model"]))) if init[init["model"] == m]["init"].nunique() == 2
    ]
    if pairs:
        x = np.arange(len(pairs))
        for k, (flag, label) in enumerate(((False, "from scratch"), (True, "pre-trained"))):
            vals = [100 * init[(init["model"] == m) & (init["init"] == flag)]["war"].mean() for m in pairs]
            left.bar(x + (k - 0.5) * 0.4, vals, 0.4, label=label)
        left.set_xticks(x, [names.get(m, m) for m in pairs], fontsize=7)
        left.legend(fontsize=7)
    else:
        _empty(left, "no runs with and without init_checkpoint")
    left.set_title("pre-training", fontsize=9)

    frames = init[~init["init"]]
    swept = [
        m
        for m in _model_order(sorted(set(frames["model"])))
        if frames[frames["model"] == m]["n_frames"].nunique() > 1
    ]
    for m in swept:
        line = frames[frames["model"] == m].sort_values("n_frames")
        mid.plot(line["n_frames"], 100 * line["war"], marker="o", label=names.get(m, m))
    if swept:
        mid.set_xlabel("frames", fontsize=8)
        mid.legend(fontsize=7)
    else:
        _empty(mid, "no model run with more than one frame count")
    mid.set_title("sampled frames", fontsize=9)

    one = rows[~rows["variant"].str.endswith("-init") & rows["group"].str.startswith("scene=")]
    two = [
        m
        for m in sorted(set(one["model"]))
        if m.startswith("ts-") and m.removeprefix("ts-") in set(one["model"])
    ]
    if two:
        scenes = sorted(set(one["group"]))
        x = np.arange(len(scenes))
        width = 0.8 / (2 * len(two))
        for k, m in enumerate(two):
            for j, name in enumerate((m.removeprefix("ts-"), m)):
                mine = one[one["model"] == name].groupby("group")["war"].mean()
                right.bar(x - 0.4 + (2 * k + j + 0.5) * width, [100 * mine.get(s, np.nan) for s in scenes], width,
                          label=names.get(name, name))  # fmt: skip
        right.set_xticks(x, [s.removeprefix("scene=") for s in scenes], rotation=45, fontsize=7)
        right.legend(fontsize=7)
    else:
        _empty(right, "no one- and two-stream pair")
    right.set_title("scene information", fontsize=9)
    for ax in (left, mid, right):
        ax.set_ylabel("WAR (%)", fontsize=8)
    return save_figure(fig, path, dpi=110, bbox_inches="tight")


@dataclass(frozen=True)
class BenchmarkReport:
    """What :func:`write_reports` wrote, and the markdown it put in ``benchmark.md``."""

    markdown: str
    files: list[Path]


def write_reports(
    results: pd.DataFrame, out_dir: str | os.PathLike, cfg: BenchmarkConfig, *, mode: str = "breakdown",
    variant: str | None = None, title: str = "Benchmark",
) -> BenchmarkReport:  # fmt: skip
    """Table 2 and 3 (markdown + CSV) of ``variant`` (default: the config's frames and init), confusion
    PNGs per trained model and the Figure 6 ablations under ``out_dir``; returns the markdown and files."""
    out = Path(out_dir)
    variant = variant or variant_name(cfg.n_frames, cfg.init_checkpoint)
    files: list[Path] = []
    t2 = table2(results, variant, cfg.table_scenes, mode)
    files += [
        write_report_text(out / "table2.csv", t2.to_csv()),
        write_report_text(out / "table2.md", markdown_table(t2.reset_index())),
    ]
    parts = [f"# {title}\n", f"## Table 2 ({variant}, {mode}; WAR/UAR %)\n", markdown_table(t2.reset_index())]
    cross = _ok(results[(results["train_setup"] != results["test_setup"]) & (results["variant"] == variant)])
    if len(cross):
        model = (
            cfg.table3_model if cfg.table3_model in set(cross["model"]) else sorted(set(cross["model"]))[0]
        )
        t3 = table3(results, model, variant)
        files += [
            write_report_text(out / "table3.csv", t3.to_csv()),
            write_report_text(out / "table3.md", markdown_table(t3.reset_index())),
        ]
        parts += [
            f"## Table 3 (cross-scenario, {model}, {variant}; WAR/UAR %)\n",
            markdown_table(t3.reset_index()),
        ]
    ok = _ok(results)
    for (model, var, train, test), rows in ok.groupby(["model", "variant", "train_setup", "test_setup"]):
        shown = rows[rows["group"].isin([OVERALL, *(f"scene={s}" for s in cfg.table_scenes)])]
        name = f"confusion_{model}_{var}_{train}_{test}.png"
        files.append(confusion_figure(shown, out / "confusion" / name, f"{model} {var}: {train} -> {test}"))
    if len(ok):
        files.append(ablation_figure(results, out / "ablations.png"))
        parts += ["## Figures\n", "- confusion matrices (Figure 5(b)): `confusion/`",
                  "- ablations (Figure 6): `ablations.png`", ""]  # fmt: skip
    failed = results[results["status"] != "ok"]
    if len(failed):
        parts += [
            "## Failed runs\n",
            markdown_table(failed[["model", "variant", "train_setup", "test_setup", "reason"]]),
        ]
    markdown = "\n".join(parts)
    files.append(write_report_text(out / "benchmark.md", markdown))
    return BenchmarkReport(markdown, files)
