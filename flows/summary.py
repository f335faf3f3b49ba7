"""The run summary a user opens after ``build-candidates``: counts per stage, rejections per rule, every
failed input with its reason, expression distributions, with PNG figures; also published as a Prefect
markdown artifact.

Written to ``<storage.root>/reports/<scene>/summary.md`` (figures beside it).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_catalog.io import Catalog, atomic_write_bytes
from data_catalog.lineage import RunContext
from data_catalog.sql import connect
from flows.config import PipelineConfig

STAGE_COUNTS = """
select 'videos downloaded' as step, count(*) as n from videos where scene = $scene and status = 'downloaded'
union all select 'videos readable', count(*) from media where run_id = $run and status = 'ok'
union all select 'clips (0.5-4 s)', count(*) from clips where run_id = $run
union all select 'faces detected (sampled frames)', count(*) from faces where run_id = $run
union all select 'clips kept by the face filter', count(*) from candidates where run_id = $run and keep
union all select 'clips scored by the FER refiner', count(*) from fer_scores where run_id = $run and status = 'ok'
union all select 'clips selected for annotation', count(*) from selections where run_id = $run and selected
union all select 'clip files encoded', count(clip_path) from selections where run_id = $run and selected
"""
REJECTIONS = """
select coalesce(reason, 'kept') as rule, count(*) as clips from candidates where run_id = $run
group by 1 order by clips desc
"""
MEDIA_FAILURES = """
select reason, count(*) as videos from media where run_id = $run and status <> 'ok' group by 1 order by 2 desc
"""
#: Every input that did not make it, and why: the crawl's failed videos (each video's latest row) and the
#: segment stage's unreadable videos or videos that gave no clip, with their reason and message.
FAILED_INPUTS = """
select * from (
    select 'crawl' as stage, video_id, coalesce(local_path, url) as input, reason, error from videos
    where scene = $scene
    qualify row_number() over (partition by video_id order by created_at desc) = 1 and status = 'failed'
    union all
    select 'segment', video_id, path, reason, error from media
    where run_id = $run and (status <> 'ok' or reason is not null)
) order by stage, video_id
"""
DISTRIBUTION = """
select label, count(*) as scored, count(*) filter (where selected) as selected
from selections where run_id = $run group by 1 order by 1
"""


def _md(df: pd.DataFrame) -> str:
    from tasks.reporting import markdown_table

    return markdown_table(df) if len(df) else "_none_\n"


def _one_line(df: pd.DataFrame) -> pd.DataFrame:
    """Messages on one table row: newlines and pipes would break the markdown table."""
    if df.empty:
        return df
    return df.assign(error=df["error"].fillna("").str.replace(r"[\r\n|]+", " ", regex=True).str.slice(0, 300))


def _bar(df: pd.DataFrame, x: str, ys: list[str], title: str, path: Path) -> None:
    from tasks.reporting import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(max(5, 0.8 * len(df) + 2), 3.5))
    df.set_index(x)[ys].plot.bar(ax=ax, rot=30)
    ax.set_title(title)
    ax.set_xlabel("")
    fig.tight_layout()
    save_figure(fig, path)


def write_summary(scene: str, cfg: PipelineConfig, ctx: RunContext, catalog: Catalog) -> Path:
    """Write the scene's summary and figures; publish the markdown as a Prefect artifact when run inside a
    flow. Returns the markdown file's path."""
    from tasks.subsample import subsample_summary, write_subsample_report

    out = cfg.storage.reports_dir / scene
    out.mkdir(parents=True, exist_ok=True)
    con = connect(catalog)
    params = {"run": ctx.run_id}
    counts = con.execute(STAGE_COUNTS, {**params, "scene": scene}).df()
    rejections = con.execute(REJECTIONS, params).df()
    media_failures = con.execute(MEDIA_FAILURES, params).df()
    failed_inputs = con.execute(FAILED_INPUTS, {**params, "scene": scene}).df()
    dist = con.execute(DISTRIBUTION, params).df()
    con.close()

    figures = []
    if len(rejections):
        _bar(rejections, "rule", ["clips"], f"{scene}: face-filter outcome per rule", out / "rejections.png")
        figures.append("rejections.png")
    if len(dist):
        _bar(
            dist, "label", ["scored", "selected"], f"{scene}: predicted expressions", out / "expressions.png"
        )
        figures.append("expressions.png")
    sub = subsample_summary(catalog, cfg.subsample)
    sub = sub[sub["scene"] == scene] if len(sub) else sub
    if len(sub):
        write_subsample_report(sub, out)
        figures += ["subsample_target_vs_achieved.png", "subsample_divergence.png"]

    text = (
        f"# build-candidates: {scene}\n\nrun `{ctx.run_id}`, config hash `{ctx.config_hash}`, "
        f"target {cfg.subsample.target_for(scene)} clips (face filter keeps "
        f"{cfg.face_filter.budget_factor:g}x, subsampling {cfg.subsample.factor:g}x)\n\n"
        "## Counts per stage\n\n" + _md(counts)
        + "\n## Face filter: first failed rule per clip\n\n" + _md(rejections)
        + "\n## Unreadable videos\n\n" + _md(media_failures)
        + "\n## Failed inputs\n\n" + _md(_one_line(failed_inputs))
        + "\n## Predicted expressions (FER refiner) and the selection\n\n" + _md(dist)
        + ("\n## Target vs achieved (prior-matched subsampling)\n\n" + _md(sub) if len(sub) else "")
        + "\n" + "".join(f"![{f}]({f})\n" for f in figures)
    )  # fmt: skip
    path = out / "summary.md"
    atomic_write_bytes(path, text.encode())
    _publish(scene, text)
    return path


def _publish(scene: str, markdown: str) -> None:
    """A Prefect markdown artifact when inside a flow run; nothing otherwise."""
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:
        return
    from prefect.artifacts import create_markdown_artifact

    key = "build-candidates-" + "".join(c if c.isalnum() else "-" for c in scene.lower())
    create_markdown_artifact(key=key, markdown=markdown, description=f"build-candidates summary for {scene}")
