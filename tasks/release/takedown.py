"""Takedown: remove a source video and everything derived from it, and keep it out of later crawls.

A person in the footage (or its owner) asks for a video to be removed. :func:`takedown` finds the video by
id or URL and removes, in this order, so that a killed takedown started again finds what is left:

1. records the takedown as ``pending`` in the ``takedowns`` manifest (hashes only): crawls skip the source
   from this moment on;
2. marks benchmark ``results`` whose setups held one of its clips ``stale`` (reason ``source_taken_down``);
3. removes its entries from every export under the storage root (clip folders, split-file lines,
   provenance rows; the card and Croissant file are rebuilt) and reports that mention it;
4. deletes its files under the storage root (the downloaded media, clip mp4s, face crops, scene frames,
   and anything else named after the video or one of its clips, such as packed frames) and its line in
   the download archive;
5. deletes its rows from every manifest, those keyed by clip first and ``clips``, ``media``, ``videos``
   last (they are how the clips are found);
6. records the takedown as ``done`` with what was removed.

Every step is idempotent, so the whole is atomic per video in the sense that matters: rerun until ``done``.
Files outside the storage root (a ``local:`` source folder) are the user's and are not deleted; they are
counted as ``outside_storage_kept``.

    >>> result = takedown(Catalog(root / "catalog"), "youtube-abc123", requested_by="legal@example.org")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from data_catalog.formats.ferv39k_release import FACE_DIR, PROVENANCE_FILES, SCENE_DIR, SETUPS_DIR
from data_catalog.formats.labels import current_labels
from data_catalog.io import Catalog, atomic_write_bytes, read_parquet
from data_catalog.lineage import RunContext
from data_catalog.schemas import get_manifest
from data_catalog.takedowns import MANIFEST, PARTITION, source_hash
from tasks.crawl.download import glob_escape

#: Manifests keyed (or partly keyed) by clip, cleaned before the manifests that identify the clips.
CLIP_MANIFESTS = (
    "faces",
    "fer_scores",
    "selections",
    "answers",
    "annotation_tasks",
    "labels",
    "splits",
    "simulated_truth",
    "candidates",
    "clips",
)
VIDEO_MANIFESTS = ("media", "videos")
STALE = "stale"
STALE_REASON = "source_taken_down"
#: Report files that may name clips; one that does is removed (rerun ``ferv report``).
REPORT_SUFFIXES = (".md", ".csv", ".json", ".txt", ".html")


@dataclass
class TakedownResult:
    """What a takedown removed: rows per manifest, files per kind, results marked stale."""

    takedown_id: str
    found: bool  # the reference matched a video of the catalog
    n_clips: int
    removed: dict[str, int] = field(default_factory=dict)
    n_stale_results: int = 0
    exports: list[Path] = field(default_factory=list)
    #: Original files of ``local:`` sources: the user's, never deleted (the crawl skips them from now on).
    kept_sources: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class _Target:
    video_ids: frozenset[str]
    urls: frozenset[str]
    source_hash: str
    url_hash: str | None
    found: bool


def _resolve(catalog: Catalog, ref: str) -> _Target:
    """The video(s) ``ref`` names: a video id or a source URL of the ``videos`` manifest; with no match,
    the reference itself (so a source never crawled is still kept out of later crawls)."""
    ref = ref.strip()
    if not ref:
        raise ValueError("takedown: empty video id or URL")
    videos = catalog.read("videos", latest=True)
    hit = videos[(videos["video_id"] == ref) | (videos["url"] == ref)]
    if hit.empty:
        media = catalog.read("media")  # a video whose crawl row is gone but whose media remain
        found = bool((media["video_id"] == ref).any())
        urls = frozenset([ref]) if "://" in ref else frozenset()
        return _Target(frozenset([ref]), urls, source_hash(ref), None, found)
    video_id = str(hit["video_id"].iloc[0])
    urls = frozenset(str(u) for u in hit["url"])
    return _Target(
        frozenset(hit["video_id"].astype(str)),
        urls,
        source_hash(video_id),
        source_hash(sorted(urls)[0]),
        True,
    )


def _record(catalog: Catalog, row: dict) -> None:
    table = pa.Table.from_pylist([row], schema=get_manifest(MANIFEST).schema)
    catalog.write(MANIFEST, table, scene=PARTITION, run_id=row["takedown_id"], part="0000")


def _filter_parts(catalog: Catalog, manifest: str, drop: Callable[[pd.DataFrame], pd.Series]) -> int:
    """Rewrite each part of ``manifest`` without the rows ``drop`` selects (atomically; a part left empty is
    deleted). Returns the number of rows removed."""
    removed = 0
    for path in catalog.part_files(manifest):
        table = read_parquet(path)
        frame = table.select([c for c in table.column_names if c in ("clip_id", "video_id")]).to_pandas()
        mask = drop(frame).to_numpy(dtype=bool)
        if not mask.any():
            continue
        removed += int(mask.sum())
        if mask.all():
            path.unlink()
            continue
        kept = table.filter(pa.array(~mask))
        sink = pa.BufferOutputStream()
        pq.write_table(kept, sink, compression="zstd")
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
    return removed


def _remove_path(catalog: Catalog, stored: object, kind: str, removed: Counter) -> None:
    path = catalog.resolve_path(stored)
    if path is None or not (path.exists() or path.is_symlink()):
        return
    try:
        path.resolve().relative_to(catalog.storage_root.resolve())
    except ValueError:
        removed["outside_storage_kept"] += 1
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    removed[kind] += 1
    # A clip's folder (crops/<scene>/<clip>/face) is named after it: drop folders the removal left empty,
    # up to the storage root's own folders (crops/, media/, clips/).
    root, parent = catalog.storage_root.resolve(), path.parent.resolve()
    while parent.parent != root and parent != root and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _mark_stale(catalog: Catalog, setups: set[str]) -> int:
    """Set ``status='stale'`` on ok results whose train or test setup held a removed clip."""
    n = 0
    schema = get_manifest("results").schema
    for path in catalog.part_files("results"):
        frame = read_parquet(path).to_pandas()
        hit = (frame["status"] == "ok") & (
            frame["train_setup"].isin(setups) | frame["test_setup"].isin(setups)
        )
        if not hit.any():
            continue
        frame.loc[hit, "status"] = STALE
        frame.loc[hit, "reason"] = STALE_REASON
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), sink)
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
        n += int(hit.sum())
    return n


def find_exports(storage_root: Path) -> list[Path]:
    """Release folders (holding ``2_ClipsforFaceCrop/``) anywhere under the storage root."""
    return sorted(p.parent for p in storage_root.rglob(FACE_DIR) if p.is_dir())


def _clean_export(release: Path, clip_ids: set[str], layout_rels: set[str], removed: Counter) -> bool:
    """Remove the clips from one export: folders, split-file lines, provenance rows. True if it changed."""
    rels: set[str] = set()
    prov_csv = release / PROVENANCE_FILES[1]
    prov = pd.read_csv(prov_csv, dtype=str, keep_default_na=False) if prov_csv.is_file() else None
    if prov is not None:
        rels |= set(prov.loc[prov["clip_id"].isin(clip_ids), "path"])
    for folder in (release / FACE_DIR).glob("*/*/*"):  # an export without provenance: by folder name
        rel = folder.relative_to(release / FACE_DIR).as_posix()
        if folder.name in clip_ids or (prov is None and rel in layout_rels):
            rels.add(rel)
    if not rels:
        return False
    for base in (FACE_DIR, SCENE_DIR):
        for rel in rels:
            if (release / base / rel).is_dir():
                shutil.rmtree(release / base / rel)
                removed["export_folders"] += 1
    for split_file in (release / SETUPS_DIR).rglob("*"):
        if not split_file.is_file():
            continue
        lines = split_file.read_text(encoding="utf-8").splitlines()
        kept = [ln for ln in lines if not _names_clip(ln, rels)]
        if len(kept) != len(lines):
            atomic_write_bytes(split_file, "".join(f"{ln}\n" for ln in kept).encode())
            removed["export_split_lines"] += len(lines) - len(kept)
    if prov is not None:
        from data_catalog.formats.ferv39k_release import write_table_files

        table = pq.read_table(release / PROVENANCE_FILES[0]).to_pandas()
        table = table[~table["clip_id"].isin(clip_ids)].reset_index(drop=True)
        write_table_files(table, release / PROVENANCE_FILES[0], prov_csv)
        removed["export_provenance_rows"] += len(prov) - len(table)
    return True


def _names_clip(line: str, rels: set[str]) -> bool:
    first = line.split(" ", 1)[0].rstrip("/")
    return any(first == rel or first.endswith(f"/{rel}") for rel in rels)


def _clean_reports(reports: Path, needles: set[str], removed: Counter) -> None:
    if not reports.is_dir() or not needles:
        return
    for path in reports.rglob("*"):
        if path.is_file() and path.suffix in REPORT_SUFFIXES:
            text = path.read_text(encoding="utf-8", errors="replace")
            if any(n in text for n in needles):
                path.unlink()
                removed["report_files"] += 1


def takedown(
    catalog: Catalog,
    ref: str,
    *,
    requested_by: str,
    note: str | None = None,
    rebuild_card: Callable[[Path, pd.DataFrame], None] | None = None,
    exports: Iterable[str | os.PathLike] = (),
) -> TakedownResult:
    """Remove the source video ``ref`` (video id or URL) and everything derived from it (module
    docstring). ``rebuild_card(release_dir, provenance)`` rewrites an export's card and Croissant file
    from its remaining provenance rows; ``exports`` are release folders outside the storage root to clean
    as well. Running it again resumes or, once done, finds nothing to remove."""
    extra = [Path(e) for e in exports]
    missing = [str(e) for e in extra if not (e / FACE_DIR).is_dir()]
    if missing:
        raise ValueError(f"takedown: not export folders (no {FACE_DIR}/ inside): {', '.join(missing)}")
    if not requested_by.strip():
        raise ValueError("takedown: say who asked for it (requested_by is empty)")
    with catalog.lock("takedown"):
        target = _resolve(catalog, ref)
        earlier = catalog.read(MANIFEST, latest=True)
        if not target.found:  # taken down before (by id or URL): resume or repeat that takedown
            again = earlier[
                (earlier["source_hash"] == target.source_hash) | (earlier["url_hash"] == target.source_hash)
            ]
            if len(again):
                row = again.iloc[0]
                target = _Target(target.video_ids, target.urls, row["source_hash"], row["url_hash"], False)
        takedown_id = f"td-{target.source_hash[:16]}"
        ctx = RunContext.create({"takedown": takedown_id}, run_id=takedown_id)
        earlier = earlier[earlier["takedown_id"] == takedown_id]
        requested_at = (
            earlier["requested_at"].iloc[0].to_pydatetime() if len(earlier) else datetime.now(timezone.utc)
        )
        record = {
            "takedown_id": takedown_id,
            "source_hash": target.source_hash,
            "url_hash": target.url_hash,
            "requested_by": requested_by,
            "requested_at": requested_at,
            "note": note,
            "status": "pending",
            **ctx.lineage("takedown"),
        }
        _record(catalog, record)  # from here on, crawls skip the source

        vids = target.video_ids
        clips = catalog.read("clips")
        cand = catalog.read("candidates")
        clip_ids = set(clips.loc[clips["video_id"].isin(vids), "clip_id"]) | set(
            cand.loc[cand["video_id"].isin(vids), "clip_id"]
        )
        # '<Scene>/<Emotion>/<name>' of clips that kept a release's own folder name (an imported release):
        # how an export without a provenance table names them.
        named = clips[clips["clip_id"].isin(clip_ids) & clips["name"].notna()].set_index("clip_id")["name"]
        labels = current_labels(catalog).frame.set_index("clip_id")
        layout_rels = {
            f"{labels.at[c, 'scene']}/{labels.at[c, 'label']}/{n}"
            for c, n in named.items()
            if c in labels.index
        }
        removed: Counter[str] = Counter()

        splits = catalog.read("splits")
        n_stale = _mark_stale(catalog, set(splits.loc[splits["clip_id"].isin(clip_ids), "setup"]))

        exports = [
            r
            for r in dict.fromkeys([*find_exports(catalog.storage_root), *extra])
            if _clean_export(r, clip_ids, layout_rels, removed)
        ]
        if rebuild_card is not None:
            for release in exports:
                prov = release / PROVENANCE_FILES[0]
                if (release / "card.md").is_file() and prov.is_file():
                    rebuild_card(release, pq.read_table(prov).to_pandas())
        _clean_reports(catalog.storage_root / "reports", clip_ids | set(vids), removed)

        for manifest, column, kind in (
            ("candidates", "face_dir", "face_crop_dirs"),
            ("candidates", "scene_dir", "scene_frame_dirs"),
            ("clips", "clip_path", "clip_files"),
            ("selections", "clip_path", "clip_files"),
            ("annotation_tasks", "clip_path", "clip_files"),
        ):
            frame = catalog.read(manifest)
            for stored in set(frame.loc[frame["clip_id"].isin(clip_ids), column].dropna()):
                _remove_path(catalog, stored, kind, removed)
        videos = catalog.read("videos")
        media = catalog.read("media")
        for stored in set(videos.loc[videos["video_id"].isin(vids), "local_path"].dropna()) | set(
            media.loc[media["video_id"].isin(vids), "path"].dropna()
        ):
            _remove_path(catalog, stored, "media_files", removed)
        # Downloads are named '<media>/<scene>/<video_id>.<ext>' (and '.part' while unfinished): found by
        # name too, so a storage folder that moved, or a download the manifest never recorded, goes as well.
        for video_id in vids:
            for path in (catalog.storage_root / "media").glob(f"*/{glob_escape(video_id)}.*"):
                _remove_path(catalog, str(path), "media_files", removed)
        _forget_downloads(catalog, videos[videos["video_id"].isin(vids)], removed)
        _sweep_named(catalog, clip_ids | set(vids), removed)
        kept_sources = [
            Path(url2pathname(urlparse(u).path))
            for u in target.urls
            if u.startswith("file://") and Path(url2pathname(urlparse(u).path)).exists()
        ]

        for manifest in CLIP_MANIFESTS:
            removed[manifest] += _filter_parts(catalog, manifest, lambda f: f["clip_id"].isin(clip_ids))
        with catalog.lock("videos"):  # a crawl records videos under this lock
            for manifest in VIDEO_MANIFESTS:
                removed[manifest] += _filter_parts(catalog, manifest, lambda f: f["video_id"].isin(vids))
        removed = Counter({k: v for k, v in removed.items() if v})
        done = {
            **record,
            "status": "done",
            "removed": sorted(removed.items()),
            "n_stale_results": n_stale,
            "completed_at": datetime.now(timezone.utc),
            **ctx.lineage("takedown"),
        }
        _record(catalog, done)
    return TakedownResult(
        takedown_id,
        target.found or bool(clip_ids),
        len(clip_ids),
        dict(removed),
        n_stale,
        exports,
        kept_sources,
    )


def _named_after(name: str, names: set[str]) -> bool:
    """``name`` is one of ``names``, or one of them followed by extensions (``<id>.npy``, ``<id>.mp4.part``)."""
    parts = name.split(".")
    return any(".".join(parts[:i]) in names for i in range(1, len(parts) + 1))


def _sweep_named(catalog: Catalog, names: set[str], removed: Counter) -> None:
    """Delete whatever else under the storage root is named after one of the clips or the video
    (``<id>`` or ``<id>.<ext>``: packed frames, caches, stray copies), outside the catalog itself."""
    if not names:
        return
    root = catalog.storage_root
    skip = {catalog.root.resolve(), (root / ".locks").resolve()}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        for d in list(dirs):
            path = here / d
            if path.resolve() in skip:
                dirs.remove(d)
            elif _named_after(d, names):
                shutil.rmtree(path)
                dirs.remove(d)
                removed["named_files"] += 1
        for f in files:
            if _named_after(f, names):
                (here / f).unlink()
                removed["named_files"] += 1


def _forget_downloads(catalog: Catalog, videos: pd.DataFrame, removed: Counter) -> None:
    """Drop the videos' lines from yt-dlp's download archives under the storage root."""
    # yt-dlp's archive lines are '<extractor> <id>'; a local file or direct link is the 'generic' one.
    entries = {
        f"{extractor} {source_id}"
        for engine, source_id in zip(videos["engine"], videos["source_id"], strict=True)
        for extractor in (str(engine).lower(), "generic")
    }
    if not entries:
        return
    for archive in catalog.storage_root.rglob("download-archive.txt"):
        lines = archive.read_text(encoding="utf-8").splitlines()
        kept = [ln for ln in lines if ln.strip() not in entries]
        if len(kept) != len(lines):
            atomic_write_bytes(archive, "".join(f"{ln}\n" for ln in kept).encode())
            removed["download_archive_lines"] += len(lines) - len(kept)
