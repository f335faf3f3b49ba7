"""The crawl stage's configuration section (paper, section 3.2: metadata, balancing, download).

Every knob of stage 1 lives here: which sources a scene is crawled from, how many candidates per keyword,
the per-scene duration targets of the balancing step, and the download policy (format cap, filters,
retries, rate limit, cookies, proxy).

    >>> CrawlConfig(engines=["ytsearch", "bilisearch"], max_per_keyword=20).max_height
    720
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from data_catalog.section import Section


class CrawlConfig(Section):
    """Stage 1: discover candidate videos per scene, balance hours per scene, download the selection."""

    #: Default sources for every scene (``scenes.yaml`` may set ``engines`` per scene). Each entry is a
    #: source spec: a yt-dlp search prefix (``ytsearch``, ``bilisearch``, ...), a feed or playlist URL,
    #: ``urls:<file of URLs>`` or ``local:<directory of videos>`` (see tasks/crawl/sources.py).
    engines: list[str] = Field(default_factory=lambda: ["ytsearch"], min_length=1)
    #: Candidates requested per keyword from a search engine (the M of ``ytsearchM:``).
    max_per_keyword: int = Field(default=50, ge=1)
    #: Keyword languages to search (ISO 639-1 codes of scenes.yaml); all languages when empty.
    languages: list[str] = Field(default_factory=list)

    # Balancing: "sort and randomly remove some of the videos ... balanced time distribution of scenes".
    #: Hours of video to keep per scene. None: equal hours per scene within a scenario, as many as the
    #: scenario's least-covered crawled scene has.
    target_hours: float | None = Field(default=None, gt=0)
    #: Per-scene targets that override ``target_hours`` (scene name -> hours).
    scene_target_hours: dict[str, float] = Field(default_factory=dict)
    seed: int = 0
    min_duration_s: float = Field(default=10.0, ge=0)
    max_duration_s: float = Field(default=3 * 3600.0, gt=0)
    #: What to do with candidates whose duration the source does not report (and a probe cannot find):
    #: select them (their hours count once measured after download) or leave them out.
    unknown_duration: Literal["select", "skip"] = "select"
    #: Read the duration of direct media links from the file header when the source gives none.
    probe_direct_links: bool = True

    # Download policy.
    max_height: int = Field(default=720, ge=144)
    max_filesize_mb: float | None = Field(default=1024.0, gt=0)
    socket_timeout_s: float = Field(default=20.0, gt=0)
    retries: int = Field(default=3, ge=0)
    #: First retry waits this long; each further retry waits twice as long.
    backoff_s: float = Field(default=2.0, ge=0)
    #: Download rate cap in bytes per second (None: no cap).
    rate_limit_bytes: int | None = Field(default=None, gt=0)
    #: Pause between two downloads, to be polite to the sites.
    sleep_between_s: float = Field(default=0.0, ge=0)
    cookies: Path | None = None
    proxy: str | None = None

    @field_validator("engines")
    @classmethod
    def _no_blank_engines(cls, value: list[str]) -> list[str]:
        if any(not e.strip() for e in value):
            raise ValueError("empty source spec in engines")
        return value

    @model_validator(mode="after")
    def _duration_range(self) -> CrawlConfig:
        if self.min_duration_s >= self.max_duration_s:
            raise ValueError(
                f"min_duration_s ({self.min_duration_s}) must be below max_duration_s ({self.max_duration_s})"
            )
        bad = {s: h for s, h in self.scene_target_hours.items() if h <= 0}
        if bad:
            raise ValueError(f"scene_target_hours must be positive: {bad}")
        return self
