"""Provenance per clip: where each clip comes from, under which licence, and which run made it.

One row per clip, joined from the manifests: the clip's time span in its source (``clips``), the source
video's URL, uploader, upload date and licence as crawled (``videos``), and the runs that made the clip and
crawled its source (lineage). A release ships this table (Parquet and CSV) so every clip can be traced, and
an export leaves out clips whose licence is unknown or not allowed (:func:`licence_filter`).

    >>> prov = provenance(catalog, clip_ids=["local-a_0-25"])                   # doctest: +SKIP
    >>> kept, left_out = licence_filter(prov, ["CC BY 4.0"], include_unlicensed=False)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from data_catalog.io import Catalog

#: The provenance table's columns, in order.
PROVENANCE_COLUMNS = [
    "clip_id",
    "scene",
    "video_id",
    "source_url",
    "engine",
    "source_id",
    "title",
    "uploader",
    "upload_date",
    "licence",
    "start_time",
    "end_time",
    "start_frame",
    "end_frame",
    "fps",
    "clip_run_id",
    "crawl_run_id",
    "config_hash",
]
#: Why a clip is left out of an export by the licence filter.
LICENCE_UNKNOWN = "licence_unknown"
LICENCE_NOT_ALLOWED = "licence_not_allowed"


def normalise_licence(text: object) -> str | None:
    """A licence string compared case- and spacing-insensitively; None (unknown) for a missing or blank
    value."""
    if not isinstance(text, str) or not text.strip():
        return None
    return re.sub(r"\s+", " ", text.strip()).lower()


def provenance(catalog: Catalog, clip_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """The provenance of ``clip_ids`` (default: every clip of the ``clips`` manifest), one row each in
    :data:`PROVENANCE_COLUMNS`. A clip without a ``clips`` row or whose source video is not in ``videos``
    (an imported release) keeps its id and nulls where the catalog knows nothing."""
    clips = catalog.read("clips", latest=True)
    videos = catalog.read("videos", latest=True)
    wanted = (
        pd.DataFrame({"clip_id": list(dict.fromkeys(clip_ids))})
        if clip_ids is not None
        else clips[["clip_id"]]
    )
    clip_cols = clips[
        ["clip_id", "scene", "video_id", "start_time", "end_time", "start_frame", "end_frame", "fps"]
        + ["run_id", "config_hash"]
    ].rename(columns={"run_id": "clip_run_id"})
    video_cols = videos[
        ["video_id", "url", "engine", "source_id", "title", "uploader", "upload_date", "license"]
        + ["crawl_run_id"]
    ].rename(columns={"url": "source_url", "license": "licence"})
    out = wanted.merge(clip_cols, on="clip_id", how="left").merge(video_cols, on="video_id", how="left")
    return out[PROVENANCE_COLUMNS].reset_index(drop=True)


@dataclass(frozen=True)
class LicenceDecision:
    """The clips an export may ship and those it leaves out, with the reason per clip
    (:data:`LICENCE_UNKNOWN` or :data:`LICENCE_NOT_ALLOWED`)."""

    kept: pd.DataFrame
    left_out: pd.DataFrame  # the provenance rows, plus 'reason'

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.left_out["reason"].value_counts().sort_index().items()}


def licence_filter(
    prov: pd.DataFrame, allowed: Iterable[str], *, include_unlicensed: bool = False
) -> LicenceDecision:
    """Split provenance rows by licence: a clip whose source licence (as crawled) is one of ``allowed``
    (compared by :func:`normalise_licence`) is kept; one with an unknown licence, or a licence not in the
    list, is left out unless ``include_unlicensed`` (the user's explicit opt-in)."""
    allowed_set = {normalise_licence(a) for a in allowed} - {None}
    licence = prov["licence"].map(normalise_licence)
    reason = pd.Series(None, index=prov.index, dtype=object)
    reason[licence.isna()] = LICENCE_UNKNOWN
    reason[licence.notna() & ~licence.isin(allowed_set)] = LICENCE_NOT_ALLOWED
    out = reason.notna() & (not include_unlicensed)
    return LicenceDecision(
        kept=prov[~out].reset_index(drop=True),
        left_out=prov[out].assign(reason=reason[out]).reset_index(drop=True),
    )
