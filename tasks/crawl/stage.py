"""Stage 1, the crawl, as plain functions: discover -> dedupe -> balance -> record, then download.

Paper, section 3.2: metadata of candidate videos from several engines via the scene keywords, then "sort
and randomly remove some of the videos" so each scene gets a balanced share of hours, then download.

Every video has exactly one part in the ``videos`` manifest, named by its ``video_id`` under the
partition of the run that discovered it; a later step (download, retry) replaces that part atomically.
So a crawl killed at any point and started again duplicates nothing: discovered videos are skipped by
(engine, id) and URL, selected ones not yet downloaded are downloaded by the next run, and yt-dlp resumes
or discards its ``.part`` file.

    >>> plan = plan_crawl(catalog, ["Terror"], cfg.crawl, ctx)                # doctest: +SKIP
    >>> summary = download_selected(catalog, cfg.storage.media_dir, cfg.crawl, ctx, ["Terror"])
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from data_catalog.takedowns import blocklist
from keywords.taxonomy import Scene, Taxonomy, load_taxonomy
from tasks.crawl.balance import SceneBalance, available_hours, balance, report, scene_targets
from tasks.crawl.config import CrawlConfig
from tasks.crawl.sources import Candidate, Source, SourceFailure, discover, parse_source

STAGE = "crawl"
MANIFEST = "videos"


class CrawlError(ValueError):
    """The crawl as a whole cannot proceed (every source failed); nothing was written."""


@dataclass
class CrawlPlan:
    run_id: str
    balance: list[SceneBalance]
    n_new: int  # new rows written (selected, not selected or failed)
    n_duplicates: int  # candidates already in the catalog or found twice
    failures: list[SourceFailure] = field(default_factory=list)
    n_taken_down: int = 0  # candidates skipped because their source was taken down


@dataclass
class DownloadSummary:
    attempted: int = 0
    downloaded: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class CrawlResult:
    plan: CrawlPlan
    downloads: DownloadSummary


def scene_sources(scene: Scene, cfg: CrawlConfig, override: list[str] | None = None) -> list[Source]:
    """The sources a scene is crawled from: the override, else the scene's ``engines``, else the config's."""
    specs = override or list(scene.engines or ()) or cfg.engines
    return [parse_source(s) for s in specs]


def _progress(iterable, progress: bool, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not progress, **kwargs)


def _read_videos(catalog: Catalog) -> pd.DataFrame:
    return catalog.read(MANIFEST, latest=True)


def _dedupe(
    candidates: list[Candidate], known_ids: set[str], known_urls: set[str]
) -> tuple[list[Candidate], int]:
    """Candidates not yet in the catalog nor earlier in this list, by (engine, id) and by URL."""
    fresh, dupes = [], 0
    for c in candidates:
        if c.video_id in known_ids or c.url in known_urls:
            dupes += 1
            continue
        known_ids.add(c.video_id)
        known_urls.add(c.url)
        fresh.append(c)
    return fresh, dupes


def _committed_hours(earlier: pd.DataFrame, scenes: list[str]) -> dict[str, float]:
    if earlier.empty:
        return {}
    rows = earlier[earlier["selected"] & earlier["status"].isin(["selected", "downloaded"])]
    rows = rows[rows["scene"].isin(scenes)]
    return (rows.groupby("scene")["duration"].sum() / 3600).to_dict()


def _write(catalog: Catalog, row: dict[str, Any]) -> None:
    catalog.write(MANIFEST, [row], scene=row["scene"], run_id=row["crawl_run_id"], part=row["video_id"])


def plan_crawl(
    catalog: Catalog,
    scenes: list[str],
    cfg: CrawlConfig,
    ctx: RunContext,
    sources: list[str] | None = None,
    taxonomy: Taxonomy | None = None,
    progress: bool = False,
) -> CrawlPlan:
    """Discover candidates for ``scenes``, drop ones the catalog already has, balance hours per scene and
    record every new candidate (selected, not selected or failed). Nothing is written when every source
    fails (:class:`CrawlError`) or an input is invalid (unknown scene, bad source spec)."""
    tax = taxonomy or load_taxonomy()
    chosen = [tax.scene(s) for s in dict.fromkeys(scenes)]  # UnknownSceneError lists the valid ones
    if not chosen:
        raise ValueError("no scene to crawl; name at least one scene")
    plans = {s.name: scene_sources(s, cfg, sources) for s in chosen}  # bad specs fail before any request

    earlier = _read_videos(catalog)
    known_ids = set(earlier["video_id"]) if not earlier.empty else set()
    known_urls = set(earlier["url"]) if not earlier.empty else set()
    found: dict[str, list[Candidate]] = {}
    failures: list[SourceFailure] = []
    n_dupes = n_seen = n_taken_down = 0
    blocked = blocklist(catalog)  # sources taken down on request never come back
    steps = [(scene, src) for scene in chosen for src in plans[scene.name]]
    for scene, src in _progress(steps, progress, desc="discover", unit="source"):
        d = discover(src, scene.all_keywords(cfg.languages or None), cfg, known_urls)
        failures += d.failures
        n_seen += len(d.candidates)
        allowed = [c for c in d.candidates if not blocked.blocks(c.video_id, c.url)]
        n_taken_down += len(d.candidates) - len(allowed)
        fresh, dupes = _dedupe(allowed, known_ids, known_urls)
        found.setdefault(scene.name, []).extend(fresh)
        n_dupes += dupes
    if failures and n_seen == 0:
        raise CrawlError(
            "every source failed, nothing was crawled:\n" + "\n".join(f"  {f}" for f in failures)
        )

    # Deciding and recording is one step per catalog: a crawl running at the same time (another scene)
    # may have recorded some of these videos since discovery began; a video belongs to one scene.
    with catalog.lock(MANIFEST):
        earlier = _read_videos(catalog)  # with its current statuses: the committed hours count them
        ids, urls = set(earlier["video_id"]), set(earlier["url"])
        for name, cands in found.items():
            found[name] = [c for c in cands if c.video_id not in ids and c.url not in urls]
            n_dupes += len(cands) - len(found[name])
        scenario_of = {s.name: s.scenario for s in chosen}
        frame = pd.DataFrame(
            [
                {
                    "video_id": c.video_id,
                    "scene": scene,
                    "duration": c.duration,
                    "failed": c.reason is not None,
                }
                for scene, cands in found.items()
                for c in cands
            ],
            columns=["video_id", "scene", "duration", "failed"],
        ).astype({"duration": "float64", "failed": bool})
        ok = frame[~frame["failed"]]
        committed = _committed_hours(earlier, list(scenario_of))
        available = available_hours(ok, committed, cfg)
        available = {s: available.get(s, 0.0) for s in scenario_of}
        targets = scene_targets(available, scenario_of, cfg)
        balanced = balance(ok, committed, targets, cfg).set_index("video_id")

        rows = []
        for scene in chosen:
            for c in found.get(scene.name, []):
                if c.reason is not None:
                    status, selected, reason, error = "failed", False, c.reason, c.error
                else:
                    b = balanced.loc[c.video_id]
                    selected = bool(b["selected"])
                    status = "selected" if selected else "not_selected"
                    reason, error = (None if pd.isna(b["reason"]) else b["reason"]), None
                rows.append(_new_row(c, scene, status, selected, reason, error, ctx))
        for row in _progress(rows, progress, desc="record", unit="video"):
            _write(catalog, row)
    return CrawlPlan(
        run_id=ctx.run_id,
        balance=report(balanced.reset_index(), committed, available, targets, scenario_of),
        n_new=len(rows),
        n_duplicates=n_dupes,
        failures=failures,
        n_taken_down=n_taken_down,
    )


def _new_row(
    c: Candidate,
    scene: Scene,
    status: str,
    selected: bool,
    reason: str | None,
    error: str | None,
    ctx: RunContext,
) -> dict[str, Any]:
    fields = asdict(c)
    del fields["reason"], fields["error"]
    return {
        **fields,
        "video_id": c.video_id,
        "scene": scene.name,
        "scenario": scene.scenario,
        "status": status,
        "selected": selected,
        "reason": reason,
        "error": error,
        "crawl_run_id": ctx.run_id,
        **ctx.lineage(STAGE),
    }


def pending_downloads(catalog: Catalog, scenes: list[str] | None, retry_failed: bool = False) -> list[dict]:
    """Rows to download: selected and not yet downloaded, plus failed ones when ``retry_failed``."""
    table = catalog.read_table(MANIFEST, scene=scenes, latest=True)
    wanted = {"selected", "failed"} if retry_failed else {"selected"}
    return [r for r in table.to_pylist() if r["status"] in wanted]


def download_selected(
    catalog: Catalog,
    media_dir: Path,
    cfg: CrawlConfig,
    ctx: RunContext,
    scenes: list[str] | None = None,
    retry_failed: bool = False,
    progress: bool = False,
) -> DownloadSummary:
    """Download every pending video (see :func:`pending_downloads`); each outcome replaces the video's
    part at once, so an interrupted run loses at most the video in flight."""
    from tasks.crawl.download import download_video

    summary = DownloadSummary()
    reasons: Counter[str] = Counter()
    todo = pending_downloads(catalog, scenes, retry_failed)
    for i, row in enumerate(_progress(todo, progress, desc="download", unit="video")):
        if i and cfg.sleep_between_s:
            time.sleep(cfg.sleep_between_s)
        out = download_video(row["url"], row["video_id"], Path(media_dir) / row["scene"], cfg)
        summary.attempted += 1
        ok = out.status == "downloaded"
        row.update(
            status=out.status,
            reason=out.reason,
            error=out.error,
            local_path=str(Path(out.local_path).resolve()) if out.local_path else None,
            bytes=out.n_bytes,
            sha256=out.sha256,
            duration=row["duration"] or out.duration,
            selected=row["selected"] or ok,
            **ctx.lineage(STAGE),
        )
        _write(catalog, row)
        if ok:
            summary.downloaded += 1
        else:
            summary.failed += 1
            reasons[out.reason or "unknown"] += 1
    summary.reasons = dict(reasons)
    return summary


def crawl(
    catalog: Catalog,
    media_dir: Path,
    scenes: list[str],
    cfg: CrawlConfig,
    ctx: RunContext,
    sources: list[str] | None = None,
    retry_failed: bool = False,
    progress: bool = False,
) -> CrawlResult:
    """Plan, then download what is pending for these scenes (this run's selection and unfinished work of
    earlier runs)."""
    plan = plan_crawl(catalog, scenes, cfg, ctx, sources=sources, progress=progress)
    downloads = download_selected(catalog, media_dir, cfg, ctx, scenes, retry_failed, progress)
    return CrawlResult(plan, downloads)


def format_report(result: CrawlResult) -> str:
    """The balance report (target vs achieved hours per scene) and the download counts, as text."""
    lines = [
        f"{'scenario':<8} {'scene':<16} {'target_h':>9} {'achieved_h':>10} {'available_h':>11} {'selected':>8}"
    ]
    for b in result.plan.balance:
        unknown = f" (+{b.n_unknown_duration} of unknown duration)" if b.n_unknown_duration else ""
        lines.append(
            f"{b.scenario:<8} {b.scene:<16} {b.target_hours:>9.3f} {b.achieved_hours:>10.3f} "
            f"{b.available_hours:>11.3f} {b.n_selected:>8}{unknown}"
        )
    p, d = result.plan, result.downloads
    lines.append(f"run {p.run_id}: {p.n_new} new videos recorded, {p.n_duplicates} already known")
    if p.n_taken_down:
        lines.append(f"skipped {p.n_taken_down} taken-down sources")
    lines.append(f"downloads: {d.downloaded} downloaded, {d.failed} failed of {d.attempted} attempted")
    lines += [f"  failed {n} x {reason}" for reason, n in sorted(d.reasons.items())]
    lines += [f"warning: {f}" for f in p.failures]
    return "\n".join(lines)
